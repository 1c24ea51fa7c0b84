// Package meshconform holds the project's supported versions, read from versions.yaml so that
// the Go defaults, the Makefile and the CI workflows never disagree.
package meshconform

import (
	_ "embed"
	"fmt"

	"sigs.k8s.io/yaml"
)

//go:embed versions.yaml
var versionsYAML []byte

// NodeImage is a kind node image and the Kubernetes version it runs.
type NodeImage struct {
	Version string `json:"version"`
	Image   string `json:"image"`
}

// UpgradePair is one from -> to pair of the upgrade gate.
type UpgradePair struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Versions is the content of versions.yaml.
type Versions struct {
	Istio      []string      `json:"istio"`
	Kubernetes []NodeImage   `json:"kubernetes"`
	Upgrades   []UpgradePair `json:"upgrades"`
}

// DefaultIstio is the newest supported Istio release.
func (v Versions) DefaultIstio() string { return v.Istio[0] }

// DefaultNodeImage is the default kind node image.
func (v Versions) DefaultNodeImage() NodeImage { return v.Kubernetes[0] }

// ParseVersions reads a versions file and checks that it has what the defaults need.
func ParseVersions(data []byte) (Versions, error) {
	var v Versions
	if err := yaml.UnmarshalStrict(data, &v); err != nil {
		return v, fmt.Errorf("versions.yaml: %w", err)
	}
	if len(v.Istio) == 0 || len(v.Kubernetes) == 0 {
		return v, fmt.Errorf("versions.yaml: needs at least one istio version and one kubernetes node image")
	}
	for _, n := range v.Kubernetes {
		if n.Version == "" || n.Image == "" {
			return v, fmt.Errorf("versions.yaml: kubernetes entry %+v needs both version and image", n)
		}
	}
	return v, nil
}

// SupportedVersions returns the embedded versions.yaml. It panics only if the file committed
// with the binary is malformed, which versions_test.go rules out.
func SupportedVersions() Versions {
	v, err := ParseVersions(versionsYAML)
	if err != nil {
		panic(err)
	}
	return v
}
