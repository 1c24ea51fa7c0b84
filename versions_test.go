package meshconform

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
	kinddefaults "sigs.k8s.io/kind/pkg/apis/config/defaults"
)

func TestVersionsFile(t *testing.T) {
	v, err := ParseVersions(versionsYAML)
	if err != nil {
		t.Fatal(err)
	}
	release := regexp.MustCompile(`^1\.[0-9]+\.[0-9]+$`)
	for _, iv := range v.Istio {
		if !release.MatchString(iv) {
			t.Errorf("istio version %q is not a release like 1.31.1", iv)
		}
	}
	if !slices.IsSortedFunc(v.Istio, func(a, b string) int { return semver.Compare("v"+b, "v"+a) }) {
		t.Errorf("istio versions %v are not newest first: the first is the default", v.Istio)
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
	// A range or an end of life for a minor nobody lists is a leftover.
	for m := range v.IstioKubernetes {
		if !slices.ContainsFunc(v.Istio, func(i string) bool { return minor(i) == m }) {
			t.Errorf("istioKubernetes has %q, but no istio release of that minor is listed", m)
		}
	}
	for m := range v.IstioEndOfLife {
		if !slices.ContainsFunc(v.Istio, func(i string) bool { return minor(i) == m }) {
			t.Errorf("istioEndOfLife has %q, but no istio release of that minor is listed", m)
		}
	}
}

// An end of life is past from the day after the day written, or from the first day of the
// month after the month written (Istio's table often gives only "about November 2026").
func TestPastEndOfLife(t *testing.T) {
	v, err := ParseVersions([]byte(rangesFixture + "istioEndOfLife: {\"1.30\": \"2026-11\", \"1.31\": \"2027-02-24\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for on, want := range map[string]string{
		"2026-10-01": "",
		"2026-11-30": "",
		"2026-12-01": "1.30.8",
		"2027-02-24": "1.30.8",
		"2027-02-25": "1.31.4 1.30.8",
	} {
		if got := strings.Join(v.PastEndOfLife(day(on)), " "); got != want {
			t.Errorf("PastEndOfLife(%s) = %q, want %q", on, got, want)
		}
	}
	// A nanosecond before midnight UTC ending the month is not past it.
	if got := v.PastEndOfLife(day("2026-12-01").Add(-time.Nanosecond)); len(got) != 0 {
		t.Errorf("a nanosecond before December: %v", got)
	}
	if date, _, ok := v.EndOfLife("1.30.1"); !ok || date != "2026-11" {
		t.Errorf("EndOfLife(1.30.1) = %q, %v", date, ok)
	}
	if _, _, ok := v.EndOfLife("1.29.9"); ok {
		t.Error("EndOfLife(1.29.9) found a date versions.yaml does not give")
	}
}

func TestParseVersionsRejectsBadEndOfLife(t *testing.T) {
	for _, eol := range []string{`{"1.30": "Nov 2026"}`, `{"1.30": "2026-13"}`, `{"1.30": "2026-11-31"}`, `{"1.30": "~2026-11"}`, `{"1.30.8": "2026-11"}`, `{"x": "2026-11"}`} {
		if _, err := ParseVersions([]byte(rangesFixture + "istioEndOfLife: " + eol + "\n")); err == nil || !strings.Contains(err.Error(), "istioEndOfLife") {
			t.Errorf("istioEndOfLife %s: ParseVersions = %v, want an error naming istioEndOfLife", eol, err)
		}
	}
}

// The upgrade gate runs each supported minor to the next one, and nothing else.
func TestUpgradePairsAreEachMinorToTheNext(t *testing.T) {
	v := SupportedVersions()
	var want []UpgradePair
	for i := len(v.Istio) - 1; i > 0; i-- {
		want = append(want, UpgradePair{From: v.Istio[i], To: v.Istio[i-1]})
	}
	got := slices.Clone(v.Upgrades)
	slices.SortFunc(got, func(a, b UpgradePair) int { return semver.Compare("v"+a.From, "v"+b.From) })
	if !slices.Equal(got, want) {
		t.Errorf("upgrade pairs %v, want each minor to the next: %v", v.Upgrades, want)
	}
}

// versions.yaml's first node image is the default of the kind library pinned in go.mod, so a
// default run uses the image that kind release was built and tested with.
func TestFirstNodeImageIsKindsDefault(t *testing.T) {
	if got := SupportedVersions().DefaultNodeImage().Image; got != kinddefaults.Image {
		t.Errorf("versions.yaml's first node image is %s; the pinned kind's default (defaults.Image) is %s", got, kinddefaults.Image)
	}
}

// go.mod's Istio API modules follow the newest Istio of versions.yaml, and go.mod names the
// Go toolchain CI builds with (setup-go reads the toolchain line).
func TestGoModFollowsVersions(t *testing.T) {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "v" + SupportedVersions().DefaultIstio()
	for _, path := range []string{"istio.io/api", "istio.io/client-go"} {
		i := slices.IndexFunc(f.Require, func(r *modfile.Require) bool { return r.Mod.Path == path })
		switch {
		case i < 0:
			t.Errorf("go.mod does not require %s", path)
		case f.Require[i].Mod.Version != want:
			t.Errorf("go.mod requires %s %s; versions.yaml's newest Istio is %s", path, f.Require[i].Mod.Version, want)
		}
	}
	if f.Toolchain == nil {
		t.Fatal("go.mod has no toolchain line: CI would build with the go line's 1.N.0")
	}
	if !regexp.MustCompile(`^go1\.[0-9]+\.[0-9]+$`).MatchString(f.Toolchain.Name) {
		t.Errorf("go.mod toolchain %q is not a Go release like go1.26.11", f.Toolchain.Name)
	}
	if f.Go == nil || semver.Compare("v"+strings.TrimPrefix(f.Toolchain.Name, "go"), "v"+f.Go.Version) < 0 {
		t.Errorf("go.mod toolchain %s is older than its go line %v", f.Toolchain.Name, f.Go)
	}
}

const rangesFixture = `
istio: ["1.31.4", "1.30.8"]
istioKubernetes:
  "1.31": {min: "1.33", max: "1.37"}
  "1.30": {min: "1.32", max: "1.36"}
kubernetes:
  - {version: "1.37.0", image: k37}
  - {version: "1.36.4", image: k36}
  - {version: "1.32.9", image: k32}
  - {version: "1.31.2", image: k31}
upgrades: [{from: "1.30.8", to: "1.31.4"}]
`

func TestSupports(t *testing.T) {
	v, err := ParseVersions([]byte(rangesFixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		istio, k8s string
		want       bool
	}{
		{"1.30.8", "1.37.0", false}, // the red nightly cell of issue 9: outside 1.30's range
		{"1.30.8", "1.36.4", true},  // upper end, included
		{"1.30.8", "1.32.9", true},  // lower end, included
		{"1.30.8", "1.31.2", false},
		{"1.31.4", "1.37.0", true},
		{"1.31.4", "1.32.9", false},
		{"1.29.1", "1.33.0", false}, // no range for 1.29
		{"1.30.8", "v1.33.1", true},
		{"1.30.8", "x", false},
	} {
		if got := v.Supports(c.istio, c.k8s); got != c.want {
			t.Errorf("Supports(%s, %s) = %v, want %v", c.istio, c.k8s, got, c.want)
		}
	}
	got := fmt.Sprint(v.NodeImagesFor("1.30.8", "1.31.4"))
	if want := "[{1.36.4 k36}]"; got != want {
		t.Errorf("NodeImagesFor(1.30.8, 1.31.4) = %s, want %s", got, want)
	}
}

func TestParseVersionsRejectsUnknownFieldsAndEmptyLists(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field": "istio: [\"1.31.1\"]\nkubernetes: [{version: \"1.37.0\", image: x}]\nistoi: []\n",
		"no istio":      "kubernetes: [{version: \"1.37.0\", image: x}]\n",
		"no image":      "istio: [\"1.31.1\"]\nkubernetes: [{version: \"1.37.0\"}]\n",
		"no range":      "istio: [\"1.31.1\"]\nkubernetes: [{version: \"1.37.0\", image: x}]\n",
		"range upside down": "istio: [\"1.31.1\"]\nistioKubernetes: {\"1.31\": {min: \"1.37\", max: \"1.33\"}}\n" +
			"kubernetes: [{version: \"1.35.0\", image: x}]\n",
		"range not minors": "istio: [\"1.31.1\"]\nistioKubernetes: {\"1.31\": {min: \"1.33.0\", max: \"1.37\"}}\n" +
			"kubernetes: [{version: \"1.35.0\", image: x}]\n",
		"no image in range": "istio: [\"1.30.1\"]\nistioKubernetes: {\"1.30\": {min: \"1.32\", max: \"1.36\"}}\n" +
			"kubernetes: [{version: \"1.37.0\", image: x}]\n",
		"upgrade with no common image": "istio: [\"1.31.1\", \"1.30.1\"]\n" +
			"istioKubernetes: {\"1.31\": {min: \"1.37\", max: \"1.38\"}, \"1.30\": {min: \"1.35\", max: \"1.36\"}}\n" +
			"kubernetes: [{version: \"1.37.0\", image: x}, {version: \"1.36.0\", image: y}]\n" +
			"upgrades: [{from: \"1.30.1\", to: \"1.31.1\"}]\n",
	} {
		if _, err := ParseVersions([]byte(in)); err == nil {
			t.Errorf("%s: ParseVersions accepted %q", name, in)
		}
	}
}

// make e2e's default node image is the newest one the Istio release supports, not kind's own
// default when that is outside the range; a release without a known range gets kind's default.
func TestDefaultNodeImageFor(t *testing.T) {
	v := SupportedVersions()
	for _, istio := range v.Istio {
		d := v.DefaultNodeImageFor(istio)
		if !v.Supports(istio, d.Version) {
			t.Errorf("DefaultNodeImageFor(%s) = %s, outside its range", istio, d.Version)
		}
		if in := v.NodeImagesFor(istio); d != in[0] {
			t.Errorf("DefaultNodeImageFor(%s) = %s, want the newest in range %s", istio, d.Version, in[0].Version)
		}
	}
	if d := v.DefaultNodeImageFor("1.20.0"); d != v.DefaultNodeImage() {
		t.Errorf("DefaultNodeImageFor(1.20.0) = %s, want kind's default %s", d.Version, v.DefaultNodeImage().Version)
	}
}
