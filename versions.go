// Package meshconform holds the project's supported versions, read from versions.yaml so that
// the Go defaults, the Makefile and the CI workflows never disagree.
package meshconform

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// KubernetesRange is the Kubernetes minors an Istio minor supports, both ends included
// ("1.32" to "1.36").
type KubernetesRange struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// Versions is the content of versions.yaml.
type Versions struct {
	Istio []string `json:"istio"`
	// IstioKubernetes maps an Istio minor ("1.31") to the Kubernetes range it supports.
	IstioKubernetes map[string]KubernetesRange `json:"istioKubernetes"`
	// IstioEndOfLife maps an Istio minor ("1.30") to its end of life from Istio's support
	// table: a month ("2026-11", when the table gives an approximate one) or a day
	// ("2026-11-17"). A minor without one has no published date.
	IstioEndOfLife map[string]string `json:"istioEndOfLife"`
	Kubernetes     []NodeImage       `json:"kubernetes"`
	Upgrades       []UpgradePair     `json:"upgrades"`
}

// DefaultIstio is the newest supported Istio release.
func (v Versions) DefaultIstio() string { return v.Istio[0] }

// DefaultNodeImage is the default kind node image: the first of versions.yaml, kind's own
// default. It may lie outside the default Istio's Kubernetes range (Supports says).
func (v Versions) DefaultNodeImage() NodeImage { return v.Kubernetes[0] }

// minor is "1.31" of "1.31.4" (or of "v1.31.4", or "1.31"); "" when there is none.
func minor(version string) string {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// parseMinor reads "1.31" as (1, 31).
func parseMinor(m string) (int, int, bool) {
	maj, mi, ok := strings.Cut(m, ".")
	if !ok {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mi)
	return a, b, err1 == nil && err2 == nil
}

// compareMinors orders two "1.N" minors (both valid).
func compareMinors(a, b string) int {
	a1, a2, _ := parseMinor(a)
	b1, b2, _ := parseMinor(b)
	if a1 != b1 {
		return a1 - b1
	}
	return a2 - b2
}

// endOfLifeAfter reads an end of life as versions.yaml writes it, "2026-11" or "2026-11-17",
// and returns the first moment (UTC) past it: the first day of the next month, or the next day.
// An approximate month ("about November 2026") is thus past only once the month is over.
func endOfLifeAfter(s string) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.AddDate(0, 0, 1), nil
	}
	if m, err := time.Parse("2006-01", s); err == nil {
		return m.AddDate(0, 1, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a month like \"2026-11\" or a day like \"2026-11-17\"", s)
}

// EndOfLife is the end of life of Istio release istio's minor as versions.yaml records it:
// the date as written and the first moment past it; ok is false when none is recorded.
func (v Versions) EndOfLife(istio string) (date string, after time.Time, ok bool) {
	date, ok = v.IstioEndOfLife[minor(istio)]
	if !ok {
		return "", time.Time{}, false
	}
	after, err := endOfLifeAfter(date)
	return date, after, err == nil
}

// PastEndOfLife lists the Istio releases of versions.yaml whose minor is past its end of life
// at now, in the file's order.
func (v Versions) PastEndOfLife(now time.Time) []string {
	var out []string
	for _, i := range v.Istio {
		if _, after, ok := v.EndOfLife(i); ok && !now.Before(after) {
			out = append(out, i)
		}
	}
	return out
}

// KubernetesRangeOf is the Kubernetes range of an Istio release's minor.
func (v Versions) KubernetesRangeOf(istio string) (KubernetesRange, bool) {
	r, ok := v.IstioKubernetes[minor(istio)]
	return r, ok
}

// Supports says whether Istio release istio supports Kubernetes version kubernetes (a
// release like 1.36.4): its minor lies inside the Istio minor's range.
func (v Versions) Supports(istio, kubernetes string) bool {
	r, ok := v.KubernetesRangeOf(istio)
	k := minor(kubernetes)
	if !ok || k == "" {
		return false
	}
	if _, _, valid := parseMinor(k); !valid {
		return false
	}
	return compareMinors(r.Min, k) <= 0 && compareMinors(k, r.Max) <= 0
}

// DefaultNodeImageFor is the node image a run of Istio release istio defaults to: the newest
// node image inside that release's supported Kubernetes range, so that a default run never
// tests a pair Istio does not support. A release versions.yaml gives no range (or none of whose
// range has an image) gets kind's own default; preflight says so.
func (v Versions) DefaultNodeImageFor(istio string) NodeImage {
	if imgs := v.NodeImagesFor(istio); len(imgs) > 0 {
		if _, known := v.KubernetesRangeOf(istio); known {
			return imgs[0]
		}
	}
	return v.DefaultNodeImage()
}

// NodeImagesFor are the node images every one of the Istio releases supports, in
// versions.yaml's order (newest first).
func (v Versions) NodeImagesFor(istio ...string) []NodeImage {
	var out []NodeImage
	for _, n := range v.Kubernetes {
		all := true
		for _, i := range istio {
			all = all && v.Supports(i, n.Version)
		}
		if all {
			out = append(out, n)
		}
	}
	return out
}

// ParseVersions reads a versions file and checks that it has what the defaults need, and that
// every Istio release has a Kubernetes range with at least one node image in it and every
// upgrade pair a node image both ends support.
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
	for m, r := range v.IstioKubernetes {
		_, _, okMin := parseMinor(r.Min)
		_, _, okMax := parseMinor(r.Max)
		if !okMin || !okMax || compareMinors(r.Min, r.Max) > 0 {
			return v, fmt.Errorf("versions.yaml: istioKubernetes %q: {min: %q, max: %q} is not a range of Kubernetes minors like {min: \"1.32\", max: \"1.36\"}", m, r.Min, r.Max)
		}
	}
	for m, d := range v.IstioEndOfLife {
		if _, _, ok := parseMinor(m); !ok {
			return v, fmt.Errorf("versions.yaml: istioEndOfLife %q is not an Istio minor like \"1.30\"", m)
		}
		if _, err := endOfLifeAfter(d); err != nil {
			return v, fmt.Errorf("versions.yaml: istioEndOfLife %q: %v, as Istio's support table gives it", m, err)
		}
	}
	for _, i := range v.Istio {
		if _, ok := v.KubernetesRangeOf(i); !ok {
			return v, fmt.Errorf("versions.yaml: istio %s has no Kubernetes range: add istioKubernetes %q from Istio's support table", i, minor(i))
		}
		if len(v.NodeImagesFor(i)) == 0 {
			r, _ := v.KubernetesRangeOf(i)
			return v, fmt.Errorf("versions.yaml: no kubernetes node image lies in istio %s's range %s-%s: nothing could test it", i, r.Min, r.Max)
		}
	}
	for _, p := range v.Upgrades {
		if len(v.NodeImagesFor(p.From, p.To)) == 0 {
			return v, fmt.Errorf("versions.yaml: upgrade %s -> %s: no kubernetes node image lies in both ranges", p.From, p.To)
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
