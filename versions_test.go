package meshconform

import (
	"regexp"
	"strings"
	"testing"
)

func TestVersionsFile(t *testing.T) {
	v, err := ParseVersions(versionsYAML)
	if err != nil {
		t.Fatal(err)
	}
	semver := regexp.MustCompile(`^1\.[0-9]+\.[0-9]+$`)
	for _, iv := range v.Istio {
		if !semver.MatchString(iv) {
			t.Errorf("istio version %q is not a release like 1.31.1", iv)
		}
	}
	for _, n := range v.Kubernetes {
		if !strings.HasPrefix(n.Image, "kindest/node:v"+n.Version+"@sha256:") {
			t.Errorf("node image %q must be kindest/node:v%s pinned by @sha256 digest", n.Image, n.Version)
		}
	}
	known := map[string]bool{}
	for _, iv := range v.Istio {
		known[iv] = true
	}
	for _, p := range v.Upgrades {
		if !known[p.From] || !known[p.To] || p.From == p.To {
			t.Errorf("upgrade pair %s -> %s must join two different supported istio versions", p.From, p.To)
		}
	}
}

func TestParseVersionsRejectsUnknownFieldsAndEmptyLists(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field": "istio: [\"1.31.1\"]\nkubernetes: [{version: \"1.37.0\", image: x}]\nistoi: []\n",
		"no istio":      "kubernetes: [{version: \"1.37.0\", image: x}]\n",
		"no image":      "istio: [\"1.31.1\"]\nkubernetes: [{version: \"1.37.0\"}]\n",
	} {
		if _, err := ParseVersions([]byte(in)); err == nil {
			t.Errorf("%s: ParseVersions accepted %q", name, in)
		}
	}
}
