// Package workloadimages holds the tests of scripts/workload-images.sh that need no Docker
// engine, no root and no network: it refuses to start without DOCKER_HOST, it reads the image
// names from manifests/workloads, and a warm cache with the images in the engine builds nothing.
// The builds themselves are proven by hand against scripts/local-engine.sh's engine.
package workloadimages
