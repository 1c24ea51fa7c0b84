package cluster

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"meshconform", "a", "mc-1.31", "0abc", strings.Repeat("a", 50)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", n, err)
		}
	}
	bad := map[string]string{
		"":                      "empty",
		"Mesh":                  "not a kind cluster name",
		"mesh_conform":          "not a kind cluster name",
		"-mesh":                 "starting with a letter or digit",
		".mesh":                 "starting with a letter or digit",
		"mesh conform":          "not a kind cluster name",
		strings.Repeat("a", 51): "51 characters",
	}
	for n, want := range bad {
		err := ValidateName(n)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %v, want an error containing %q", n, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "like meshconform") && n != "" {
			t.Errorf("ValidateName(%q): the message gives no example: %v", n, err)
		}
	}
}

func TestParseImageRef(t *testing.T) {
	const dg = "sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
	tests := []struct {
		in                string
		name, tag, digest string
		full, canonical   string
		pinned            bool
	}{
		{"nginx", "nginx", "", "", "docker.io/library/nginx", "docker.io/library/nginx:latest", false},
		{"nginx:1.27", "nginx", "1.27", "", "docker.io/library/nginx", "docker.io/library/nginx:1.27", true},
		{"curlimages/curl:8.11.1", "curlimages/curl", "8.11.1", "", "docker.io/curlimages/curl", "docker.io/curlimages/curl:8.11.1", true},
		{"kindest/node:v1.37.0@" + dg, "kindest/node", "v1.37.0", dg, "docker.io/kindest/node", "docker.io/kindest/node:v1.37.0@" + dg, true},
		{"registry.example.com/istio/pilot:1.31.1", "registry.example.com/istio/pilot", "1.31.1", "", "registry.example.com/istio/pilot", "registry.example.com/istio/pilot:1.31.1", true},
		{"localhost:5000/x/y@" + dg, "localhost:5000/x/y", "", dg, "localhost:5000/x/y", "localhost:5000/x/y@" + dg, true},
		{"registry:5000/a:b", "registry:5000/a", "b", "", "registry:5000/a", "registry:5000/a:b", true},
		{"index.docker.io/istio/proxyv2:1.31.1", "index.docker.io/istio/proxyv2", "1.31.1", "", "docker.io/istio/proxyv2", "docker.io/istio/proxyv2:1.31.1", true},
	}
	for _, tc := range tests {
		r, err := ParseImageRef(tc.in)
		if err != nil {
			t.Errorf("ParseImageRef(%q): %v", tc.in, err)
			continue
		}
		if r.Name != tc.name || r.Tag != tc.tag || r.Digest != tc.digest {
			t.Errorf("ParseImageRef(%q) = %+v", tc.in, r)
		}
		if r.FullName() != tc.full || r.Canonical() != tc.canonical || r.Pinned() != tc.pinned || r.String() != tc.in {
			t.Errorf("%q: full %q canonical %q pinned %v string %q", tc.in, r.FullName(), r.Canonical(), r.Pinned(), r.String())
		}
	}
	for _, in := range []string{"", "Nginx/UPPER:1", "nginx:", "nginx@sha256:xyz", "nginx:bad tag", "a//b:1"} {
		if r, err := ParseImageRef(in); err == nil {
			t.Errorf("ParseImageRef(%q) = %+v, want an error", in, r)
		}
	}
}
