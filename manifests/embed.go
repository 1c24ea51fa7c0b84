// Package manifests holds the YAML the suite applies, embedded so that a test binary or the
// CLI carries it wherever it runs. Each subdirectory has its own embed variable, so that
// adding one (kind/, rbac/, ...) touches nothing that is already here.
package manifests

import (
	"embed"
	"io/fs"
)

// workloads holds the sample workloads, one file per sample, named for the sample.
//
//go:embed workloads/*.yaml
var workloads embed.FS

// Workloads returns the sample workload manifests rooted at workloads/: "httpbin.yaml", ...
func Workloads() fs.FS {
	sub, err := fs.Sub(workloads, "workloads")
	if err != nil {
		panic(err) // unreachable: "workloads" is a valid path and is embedded
	}
	return sub
}
