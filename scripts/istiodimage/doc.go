// Package istiodimage holds the tests of scripts/istiod-image.sh that need no Docker engine, no
// root and no network: it refuses to start without DOCKER_HOST, builds the branches
// internal/istiosrc pins, one failing branch does not stop the others, and a warm cache builds
// nothing and imports each image as <ISTIO_HUB>/pilot:<version>. The builds themselves are proven
// by hand against scripts/local-engine.sh's engine (see the script).
package istiodimage
