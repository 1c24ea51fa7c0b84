// Package localengine holds the tests of scripts/local-engine.sh that need no Docker engine, no
// root and no network: what the script does (nothing) on a machine whose Docker already answers,
// and its status and stop when no engine of its own runs. Its start, stop and the runc shim
// against a real dockerd are proven by hand on a machine without Docker (see the script).
package localengine
