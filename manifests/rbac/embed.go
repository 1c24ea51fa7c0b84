// Package rbac holds the RBAC manifests meshconform ships, embedded so that the code that
// needs a permission and the YAML that grants it are one file (go:embed cannot reach across
// directories, hence this small package next to the YAML).
package rbac

import _ "embed"

// PostureClusterRole is posture-clusterrole.yaml: the read-only ClusterRole that
// `meshconform posture` needs, and the list of permissions it checks before it starts.
//
//go:embed posture-clusterrole.yaml
var PostureClusterRole []byte

// SuiteClusterRole is suite-clusterrole.yaml: what `make e2e` needs on an existing cluster,
// checked before the run starts.
//
//go:embed suite-clusterrole.yaml
var SuiteClusterRole []byte
