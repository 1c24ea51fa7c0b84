package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"meshconform"
	"meshconform/framework/mesh"
	"meshconform/framework/settings"
	"meshconform/internal/charttest"
)

// checkFixture is a versions file like the real one: 1.31.4 the newest, 1.30 ending in
// November 2026 (as a month: past from 2026-12-01), no end of life for 1.31.
const checkFixture = `istio:
  - "1.31.4"
  - "1.30.8"
istioKubernetes:
  "1.31": {min: "1.32", max: "1.36"}
  "1.30": {min: "1.32", max: "1.36"}
istioEndOfLife:
  "1.30": "2026-11"
kubernetes:
  - version: "1.36.4"
    image: "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"
upgrades:
  - from: "1.30.8"
    to: "1.31.4"
`

func writeFixture(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "versions.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// check runs `meshconform versions -file FILE check ARGS…` with the chart-source variables of
// the environment cleared (a test sets them with t.Setenv after calling clearChartEnv).
func check(t *testing.T, file string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"versions", "-file", file, "check"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// clearChartEnv keeps the machine's own ISTIO_CHART_REPO / ISTIO_CHART_DIR out of a test.
func clearChartEnv(t *testing.T) {
	t.Helper()
	for _, k := range checkVariables {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// releases the sources of these tests hold: 1.31.5 and 1.32.0 are new; 1.33.0-beta.0 is a
// pre-release (not reported); 1.32.1 has no gateway chart, so make e2e could not install it
// (not reported).
var newCharts = map[string][]string{
	"base":    {"1.30.8", "1.31.4", "1.31.5", "1.32.0", "1.32.1", "1.33.0-beta.0"},
	"istiod":  {"1.30.8", "1.31.4", "1.31.5", "1.32.0", "1.32.1", "1.33.0-beta.0"},
	"gateway": {"1.30.8", "1.31.4", "1.31.5", "1.32.0", "1.33.0-beta.0"},
}

const wantNew = `read: $SOURCE (the releases holding base, istiod and gateway charts, as make e2e installs them)
versions.yaml's newest Istio: 1.31.4; the newest release there: 1.32.0
new releases: 1.32.0, 1.31.5 (newer than 1.31.4)
paste at the top of versions.yaml's istio: list (newest first, one release per minor):
  - "1.32.0"
  - "1.31.5"
then, in the same change (TestVersionsFile, TestUpgradePairsAreEachMinorToTheNext and TestGoModFollowsVersions check it):
  - add istioKubernetes "1.32" (and istioEndOfLife "1.32" when the table gives one) from Istio 1.32's announcement and Istio's support table
  - remove "1.31.4" from istio: (1.31.5 replaces it)
  - set upgrades: to each listed minor to the next
  - set go.mod's istio.io/api and istio.io/client-go to v1.32.0 (go get istio.io/api@v1.32.0 istio.io/client-go@v1.32.0)
end of life: no listed release is past it
versions check: 2 new, 0 past end of life: exit 1
`

// The lines printed for pasting are versions.yaml's own format: pasted at the top of the
// istio: list (with the steps printed after them done), the file parses and its newest Istio
// is the newest release.
func assertPasteable(t *testing.T, stdout string) {
	t.Helper()
	var paste []string
	in := false
	for _, l := range strings.Split(stdout, "\n") {
		switch {
		case strings.HasPrefix(l, "paste at the top"):
			in = true
		case in && strings.HasPrefix(l, "  - \""):
			paste = append(paste, l)
		default:
			in = false
		}
	}
	if len(paste) == 0 {
		t.Fatalf("no lines to paste in:\n%s", stdout)
	}
	edited := strings.Replace(checkFixture, "istio:\n", "istio:\n"+strings.Join(paste, "\n")+"\n", 1)
	edited = strings.Replace(edited, "  - \"1.31.4\"\n", "", 1)
	edited = strings.Replace(edited, "istioKubernetes:\n", "istioKubernetes:\n  \"1.32\": {min: \"1.33\", max: \"1.36\"}\n", 1)
	edited = strings.Replace(edited, "upgrades:\n  - from: \"1.30.8\"\n    to: \"1.31.4\"\n",
		"upgrades:\n  - from: \"1.30.8\"\n    to: \"1.31.5\"\n  - from: \"1.31.5\"\n    to: \"1.32.0\"\n", 1)
	v, err := meshconform.ParseVersions([]byte(edited))
	if err != nil {
		t.Fatalf("versions.yaml with the pasted lines does not parse: %v\n%s", err, edited)
	}
	if got := strings.Join(v.Istio, " "); got != "1.32.0 1.31.5 1.30.8" {
		t.Errorf("istio after pasting = %s, want 1.32.0 1.31.5 1.30.8", got)
	}
}

// A Helm repository on loopback that holds newer releases: each is reported, with the lines
// to paste, and the exit code is 1; the end of life of 1.30 (November 2026) is not yet reached
// on 2026-10-01.
func TestVersionsCheckNewReleasesHTTP(t *testing.T) {
	clearChartEnv(t)
	r := charttest.Serve(t, newCharts)
	t.Setenv("ISTIO_CHART_REPO", r.URL)
	code, stdout, stderr := check(t, writeFixture(t, checkFixture), "-on", "2026-10-01")
	if want := strings.ReplaceAll(wantNew, "$SOURCE", "chart repository "+r.URL); code != exitFinding || stdout != want || stderr != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 1 and:\n%s", code, stderr, stdout, want)
	}
	assertPasteable(t, stdout)
}

// The same from an OCI registry (its tags, through Helm's registry client), named with a flag.
func TestVersionsCheckNewReleasesOCI(t *testing.T) {
	clearChartEnv(t)
	r := charttest.ServeOCI(t, newCharts)
	code, stdout, stderr := check(t, writeFixture(t, checkFixture), "-on", "2026-10-01", "-istio-chart-repo", r.URL)
	if want := strings.ReplaceAll(wantNew, "$SOURCE", "OCI chart repository "+r.URL); code != exitFinding || stdout != want || stderr != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 1 and:\n%s", code, stderr, stdout, want)
	}
	assertPasteable(t, stdout)
}

// holdsNothingNew: the newest release is the one versions.yaml lists; a pre-release is newer,
// and a release of 1.32 lacks its gateway chart.
var holdsNothingNew = map[string][]string{
	"base":    {"1.30.7", "1.30.8", "1.31.3", "1.31.4", "1.32.0-rc.0", "1.32.0"},
	"istiod":  {"1.30.7", "1.30.8", "1.31.3", "1.31.4", "1.32.0-rc.0", "1.32.0"},
	"gateway": {"1.30.7", "1.30.8", "1.31.3", "1.31.4", "1.32.0-rc.0"},
}

// Nothing newer than versions.yaml's newest, nothing past end of life: exit 0. On 2026-12-01
// (the day after "2026-11") 1.30.8 is past its end of life: exit 1; the day before, not.
func TestVersionsCheckNothingNewAndEndOfLife(t *testing.T) {
	clearChartEnv(t)
	file := writeFixture(t, checkFixture)
	for name, url := range map[string]string{
		"chart repository":     charttest.Serve(t, holdsNothingNew).URL,
		"OCI chart repository": charttest.ServeOCI(t, holdsNothingNew).URL,
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("ISTIO_CHART_REPO", url)
			head := "read: " + name + " " + url + " (the releases holding base, istiod and gateway charts, as make e2e installs them)\n" +
				"versions.yaml's newest Istio: 1.31.4; the newest release there: 1.31.4\n" +
				"new releases: none newer than 1.31.4\n"

			code, stdout, stderr := check(t, file, "-on", "2026-11-30")
			if want := head + "end of life: no listed release is past it\nversions check: 0 new, 0 past end of life: exit 0\n"; code != exitOK || stdout != want || stderr != "" {
				t.Errorf("on 2026-11-30: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and:\n%s", code, stderr, stdout, want)
			}

			code, stdout, stderr = check(t, file, "-on", "2026-12-01")
			want := head + `end of life: Istio 1.30.8 is past it (istioEndOfLife "1.30": "2026-11", from Istio's support table): drop "1.30.8" from istio:, with its istioKubernetes, istioEndOfLife and upgrade pair` + "\n" +
				"versions check: 0 new, 1 past end of life: exit 1\n"
			if code != exitFinding || stdout != want || stderr != "" {
				t.Errorf("on 2026-12-01: exit %d, stderr %q, stdout:\n%s\nwant exit 1 and:\n%s", code, stderr, stdout, want)
			}
		})
	}
}

// Sources that cannot answer: each is exit 2 with a message naming the source read (or the
// setting) and the fix.
func TestVersionsCheckErrors(t *testing.T) {
	clearChartEnv(t)
	file := writeFixture(t, checkFixture)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there now
	empty := t.TempDir()
	for name, c := range map[string]struct {
		env   map[string]string
		args  []string
		wants []string
	}{
		"unreachable repository": {map[string]string{"ISTIO_CHART_REPO": "http://" + closed + "/charts"}, nil,
			[]string{"reading chart repository http://" + closed + "/charts", "index.yaml", "ISTIO_CHART_REPO", "ISTIO_CHART_DIR"}},
		"unreachable registry": {nil, []string{"-istio-chart-repo", "oci://" + closed + "/istio/charts", "-timeout", "20s"},
			[]string{"reading OCI chart repository oci://" + closed + "/istio/charts", "ISTIO_CHART_REPO", "ISTIO_CHART_DIR"}},
		"not a URL": {map[string]string{"ISTIO_CHART_REPO": "istio-release.example/charts"}, nil,
			[]string{`ISTIO_CHART_REPO="istio-release.example/charts" is not an http(s):// URL or an oci:// reference`, "use a Helm repository URL", mesh.OCIChartRepo}},
		"an OCI reference with a tag": {nil, []string{"-istio-chart-repo", "oci://ghcr.io/istio/release/charts/istiod:1.31.4"},
			[]string{`--istio-chart-repo="oci://ghcr.io/istio/release/charts/istiod:1.31.4"`, "no tag"}},
		"repository and directory": {map[string]string{"ISTIO_CHART_REPO": "http://" + closed + "/charts", "ISTIO_CHART_DIR": empty}, nil,
			[]string{"ISTIO_CHART_REPO and ISTIO_CHART_DIR are both set: set only one"}},
		"no Istio charts there": {map[string]string{"ISTIO_CHART_DIR": empty}, nil,
			[]string{"chart directory " + empty + " holds no Istio release", "ISTIO_CHART_REPO"}},
		"bad day": {nil, []string{"-on", "1 December"}, []string{`-on "1 December" is not a day like 2026-12-01`}},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := check(t, file, c.args...)
			t.Logf("exit %d, stderr:\n%s", code, stderr)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing on stdout", code, stdout)
			}
			for _, w := range c.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// A stale mirror (or the retired storage.googleapis.com repository) holds nothing from 1.31:
// it cannot say that nothing is new, so the check fails naming Istio's own repositories.
func TestVersionsCheckStaleMirror(t *testing.T) {
	clearChartEnv(t)
	r := charttest.Serve(t, charttest.All("1.29.3", "1.30.8"))
	code, stdout, stderr := check(t, writeFixture(t, checkFixture), "-istio-chart-repo", r.URL)
	for _, w := range []string{"chart repository " + r.URL + " does not hold Istio 1.31.4", "its newest release is 1.30.8", "stale mirror", mesh.DefaultChartRepo, mesh.OCIChartRepo} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if code != exitUsage || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 2", code, stdout)
	}
}

// The check reads the chart source as make e2e does (framework/settings): with nothing set, the
// run's default repository; and only the chart-source variables: a malformed setting the
// check does not use does not fail it.
func TestVersionsCheckReadsTheRunsSettings(t *testing.T) {
	clearChartEnv(t)
	s, err := settings.Load(func(string) (string, bool) { return "", false }, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.ChartRepo != mesh.DefaultChartRepo || s.ChartDir != "" {
		t.Errorf("default chart source %q / %q, want make e2e's %s", s.ChartRepo, s.ChartDir, mesh.DefaultChartRepo)
	}
	t.Setenv("KEEP_CLUSTER", "maybe")
	t.Setenv("ISTIO_VERSION", "1.31")
	dir := charttest.Dir(t, holdsNothingNew)
	t.Setenv("ISTIO_CHART_DIR", dir)
	code, stdout, stderr := check(t, writeFixture(t, checkFixture), "-on", "2026-10-01")
	if code != exitOK || !strings.Contains(stdout, "read: chart directory "+dir) || stderr != "" {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 0 reading %s", code, stderr, stdout, dir)
	}
}

// The other facts refuse the check's flags instead of ignoring them.
func TestVersionsCheckFlagsOnlyForCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"versions", "-on", "2026-12-01", "matrix"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "-on: only for versions check") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestNewerReleases(t *testing.T) {
	var avail []mesh.Version
	for _, s := range []string{"1.30.9", "1.31.4", "1.31.5", "1.31.5", "1.32.0-beta.1", "1.32.0", "1.32.2", "1.31.6", "2.0.0"} {
		v, err := mesh.ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		avail = append(avail, v)
	}
	listed := mesh.Version{Major: 1, Minor: 31, Patch: 4}
	got := newerReleases(listed, avail)
	if s := fmtVersions(got); s != "2.0.0 1.32.2 1.32.0 1.31.6 1.31.5" {
		t.Errorf("newerReleases = %s", s)
	}
	if lines := strings.Join(pasteLines(got), "\n"); lines != "  - \"2.0.0\"\n  - \"1.32.2\"\n  - \"1.31.6\"" {
		t.Errorf("pasteLines =\n%s", lines)
	}
	if n := newerReleases(mesh.Version{Major: 2}, avail); len(n) != 0 {
		t.Errorf("newer than 2.0.0: %v", n)
	}
}

func fmtVersions(vs []mesh.Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, " ")
}
