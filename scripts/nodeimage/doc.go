// Package nodeimage holds the tests of scripts/node-image.sh that need no Docker engine, no root
// and no network: it refuses to start without DOCKER_HOST, and a warm cache builds nothing. The
// builds themselves and the image with kind (scripts/kind-node-smoke.sh) are proven by hand
// against scripts/local-engine.sh's engine (see the scripts).
package nodeimage
