// Package kind holds meshconform's kind cluster configs, embedded so that the suite needs no
// files at run time. framework/cluster decodes and checks them.
package kind

import (
	"embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Default is the config used when KIND_CONFIG is not set.
const Default = "single"

// Names lists the embedded configs (file names without .yaml).
func Names() []string {
	entries, _ := files.ReadDir(".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// Config returns the embedded config called name.
func Config(name string) ([]byte, error) {
	data, err := files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no embedded kind config %q: use one of %s, or a file path", name, strings.Join(Names(), ", "))
	}
	return data, nil
}

// IngressHTTPNodePort and IngressHTTPSNodePort are the nodePorts the ingress gateway must use
// for the host port mappings of these configs to reach it (on 127.0.0.1, same numbers).
const (
	IngressHTTPNodePort  = 30080
	IngressHTTPSNodePort = 30443
)
