package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"meshconform"
	"meshconform/framework/report"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from what the commands print now")

// The fixtures (testdata/ginkgo: real Ginkgo JSON and JUnit from ginkgo-fixture/gen.sh;
// testdata/*.json|yaml: conformance reports built from them; testdata/runs: four matrix cells
// in every format) cover, base → candidate:
//
//	MTLS-001 pass/documented unchanged        MTLS-007 fail/deviation → pass/documented (better)
//	MTLS-002 pass/documented → fail/deviation MTLS-008 pass/equivalent → pass/documented (better)
//	MTLS-003 documented → equivalent          MTLS-009 skip → pass (better)
//	MTLS-004 pass/equivalent → fail/deviation MTLS-010 skip → fail
//	MTLS-005 pass → skip                      MTLS-011 fail → skip (better)
//	MTLS-006 missing from the candidate       CERT-002 new in the candidate
//	AUTHZ-002 two specs, one fails            AUTHZ-001/005 one spec, classified per ID
//	PROBE-001 fails in both                   CERT-001 pass, nothing to classify
var goldenCases = []struct {
	name string
	args []string
	exit int
}{
	// merge
	{"merge-runs-markdown", []string{"report", "merge", "testdata/runs"}, 0},
	{"merge-runs-html", []string{"report", "merge", "-markdown", "", "-html", "$TMP/matrix.html", "testdata/runs"}, 0},
	{"merge-flags-after-args", []string{"report", "merge", "testdata/runs", "-markdown", "", "-json", "-"}, 0},
	{"merge-mixed-formats", []string{"report", "merge", "testdata/base.yaml", "testdata/ginkgo/candidate.junit.xml", "testdata/improved.json"}, 0},
	{"merge-same-column-combined", []string{"report", "merge", "testdata/candidate.json", "testdata/ginkgo/candidate.junit.xml", "testdata/runs/reports-istio-1.31.1-k8s-1.37.0"}, 0},
	{"merge-no-args", []string{"report", "merge"}, 2},
	{"merge-unreadable", []string{"report", "merge", "testdata/runs", "testdata/bad/truncated.json"}, 2},
	{"merge-empty-dir", []string{"report", "merge", "testdata/ginkgo-fixture"}, 2},
	// a run that measured its time beside one that did not: run times, and each cell's time
	{"merge-durations", []string{"report", "merge", "-durations", "testdata/timed", "testdata/runs/reports-istio-1.31.1-k8s-1.37.0"}, 0},

	// diff: every format on either side
	{"diff-json-json", []string{"report", "diff", "testdata/base.json", "testdata/candidate.json"}, 1},
	{"diff-junit-junit", []string{"report", "diff", "testdata/ginkgo/base.junit.xml", "testdata/ginkgo/candidate.junit.xml"}, 1},
	{"diff-yaml-junit", []string{"report", "diff", "testdata/base.yaml", "testdata/ginkgo/candidate.junit.xml"}, 1},
	{"diff-junit-ginkgojson-markdown", []string{"report", "diff", "-format", "markdown", "testdata/ginkgo/base.junit.xml", "testdata/ginkgo/candidate.json"}, 1},
	{"diff-json-output", []string{"report", "diff", "-format", "json", "testdata/base.json", "testdata/candidate.yaml"}, 1},
	{"diff-reversed", []string{"report", "diff", "testdata/candidate.json", "testdata/base.json"}, 1},
	{"diff-improvements-only", []string{"report", "diff", "testdata/base.json", "testdata/improved.json"}, 0},
	{"diff-same-run-json-vs-junit", []string{"report", "diff", "testdata/base.json", "testdata/ginkgo/base.junit.xml"}, 0},
	{"diff-directory", []string{"report", "diff", "testdata/runs/reports-istio-1.30.5-k8s-1.37.0", "testdata/runs/reports-istio-1.31.1-k8s-1.37.0"}, 1},
	{"diff-directory-of-one-run-in-two-suites", []string{"report", "diff", "testdata/base.json", "testdata/split-run"}, 1},
	{"diff-summary-file", []string{"report", "diff", "-summary", "$TMP/summary.md", "testdata/base.json", "testdata/improved.json"}, 0},

	// diff: unreadable input
	{"diff-not-found", []string{"report", "diff", "testdata/nope.json", "testdata/candidate.json"}, 2},
	{"diff-candidate-not-found", []string{"report", "diff", "testdata/base.json", "testdata/nope.xml"}, 2},
	{"diff-empty", []string{"report", "diff", "testdata/bad/empty.json", "testdata/base.json"}, 2},
	{"diff-truncated-json", []string{"report", "diff", "testdata/base.json", "testdata/bad/truncated.json"}, 2},
	{"diff-not-a-report", []string{"report", "diff", "testdata/bad/not-a-report.txt", "testdata/base.json"}, 2},
	{"diff-wrong-kind", []string{"report", "diff", "testdata/bad/wrong-kind.yaml", "testdata/base.json"}, 2},
	{"diff-xml-not-junit", []string{"report", "diff", "testdata/base.json", "testdata/bad/not-junit.html"}, 2},
	{"diff-no-ids", []string{"report", "diff", "testdata/base.json", "testdata/bad/no-ids.junit.xml"}, 2},
	{"diff-bad-result", []string{"report", "diff", "testdata/bad/bad-result.json", "testdata/base.json"}, 2},
	// two data-plane modes are refused, never compared as one; a report without a mode ran sidecars
	{"diff-two-modes", []string{"report", "diff", "testdata/base.json", "testdata/ambient.json"}, 2},
	{"diff-no-mode-is-sidecar", []string{"report", "diff", "testdata/no-mode.json", "testdata/candidate.json"}, 1},
	{"diff-dir-with-many-runs", []string{"report", "diff", "testdata/runs", "testdata/base.json"}, 2},

	// check: the expectations hold, do not hold (each mismatch with what was seen), are malformed
	{"check-holds", []string{"report", "check", "testdata/candidate.json", "MTLS-001=pass/documented", "MTLS-003=pass", "CERT-001=pass", "MTLS-005=skip"}, 0},
	{"check-mismatches", []string{"report", "check", "testdata/candidate.json", "MTLS-002=pass", "MTLS-003=pass/documented", "MTLS-006=pass", "baseline=passed", "*=pass"}, 1},
	{"check-bad-want", []string{"report", "check", "testdata/candidate.json", "MTLS-001=passed"}, 2},
	{"check-no-want", []string{"report", "check", "testdata/candidate.json"}, 2},
	{"check-unreadable", []string{"report", "check", "testdata/nope.json", "*=pass"}, 2},
	{"check-help", []string{"report", "check", "-h"}, 0},
	// timings change nothing a check decides
	{"check-timed", []string{"report", "check", "testdata/timed/conformance.json", "MTLS-002=pass", "MTLS-007=fail", "MTLS-009=left-out"}, 0},

	// usage
	{"diff-one-arg", []string{"report", "diff", "testdata/base.json"}, 2},
	{"diff-bad-flag", []string{"report", "diff", "-colour", "testdata/base.json", "testdata/candidate.json"}, 2},
	{"diff-bad-format", []string{"report", "diff", "-format", "xml", "testdata/base.json", "testdata/candidate.json"}, 2},
	{"diff-help", []string{"report", "diff", "-h"}, 0},
	{"merge-help", []string{"report", "merge", "--help"}, 0},
	{"build-help", []string{"report", "build", "-h"}, 0},
	{"versions-help", []string{"versions", "-h"}, 0},
	{"report-unknown", []string{"report", "frobnicate"}, 2},
	{"unknown-command", []string{"frobnicate"}, 2},
	{"no-command", nil, 2},
	{"help", []string{"-h"}, 0},
	{"build-bad-cluster", []string{"report", "build", "-cluster", "mine", "testdata/ginkgo/base.json"}, 2},
	{"build-version-conflict", []string{"report", "build", "-o", "$TMP/out", "-istio-version", "1.2.3", "testdata/ginkgo/base.json"}, 2},

	// versions, from a fixture file so that changing versions.yaml does not churn goldens
	{"versions-all", []string{"versions", "-file", "testdata/versions.yaml"}, 0},
	{"versions-matrix", []string{"versions", "-file", "testdata/versions.yaml", "matrix"}, 0},
	{"versions-upgrades", []string{"versions", "-file", "testdata/versions.yaml", "upgrades"}, 0},
	{"versions-default-istio", []string{"versions", "-file", "testdata/versions.yaml", "default-istio"}, 0},
	{"versions-default-node-image", []string{"versions", "default-node-image", "-file", "testdata/versions.yaml"}, 0},
	{"versions-kind-node-image", []string{"versions", "-file", "testdata/versions.yaml", "kind-node-image"}, 0},
	{"versions-unknown-fact", []string{"versions", "-file", "testdata/versions.yaml", "colours"}, 2},
	{"versions-bad-file", []string{"versions", "-file", "testdata/bad/wrong-kind.yaml", "matrix"}, 2},
	{"versions-bad-flag", []string{"versions", "-files", "x"}, 2},
}

// TestGolden runs each command in process and compares its exit code, stdout, stderr and the
// files it wrote with testdata/golden/NAME.golden. go test ./cmd/meshconform -update rewrites them.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "$TMP", tmp)
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			var got strings.Builder
			fmt.Fprintf(&got, "$ meshconform %s\nexit: %d\n--- stdout\n%s--- stderr\n%s", strings.Join(tc.args, " "), code, stdout.String(), stderr.String())
			files, _ := filepath.Glob(filepath.Join(tmp, "*"))
			for _, f := range files {
				if st, err := os.Stat(f); err == nil && !st.IsDir() {
					data, _ := os.ReadFile(f)
					fmt.Fprintf(&got, "--- file %s\n%s", strings.TrimPrefix(f, tmp+"/"), data)
				}
			}
			text := strings.ReplaceAll(got.String(), tmp, "$TMP")
			golden := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/meshconform -run TestGolden -update to create it)", err)
			}
			if text != string(want) {
				t.Errorf("output differs from %s (rerun with -update if the change is intended):\n%s", golden, lineDiff(string(want), text))
			}
			if code != tc.exit {
				t.Errorf("exit code %d, want %d", code, tc.exit)
			}
		})
	}
}

// lineDiff shows the first lines where want and got part.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 12; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

// The goldens would hide a wrong golden; these say what the gate must decide, in words.
func TestDiffGateDecisions(t *testing.T) {
	base, err := report.Read("testdata/base.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, cand := range []string{"testdata/candidate.json", "testdata/candidate.yaml", "testdata/ginkgo/candidate.junit.xml", "testdata/ginkgo/candidate.json"} {
		c, err := report.Read(cand)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]report.ChangeKind{}
		for _, ch := range report.Diff(base, c).Changes {
			kinds[ch.ID] = ch.Kind
		}
		want := map[string]report.ChangeKind{
			"MTLS-001": report.Unchanged, "MTLS-002": report.Regression, "MTLS-003": report.Regression,
			"MTLS-004": report.Regression, "MTLS-005": report.Regression, "MTLS-006": report.Regression,
			"MTLS-007": report.Improvement, "MTLS-008": report.Improvement, "MTLS-009": report.Improvement,
			"MTLS-010": report.Regression, "MTLS-011": report.Improvement, "CERT-001": report.Unchanged,
			"CERT-002": report.Added, "AUTHZ-001": report.Unchanged, "AUTHZ-002": report.Regression,
			"AUTHZ-005": report.Regression, "PROBE-001": report.Unchanged,
		}
		for id, k := range want {
			if kinds[id] != k {
				t.Errorf("%s: %s is %q, want %q", cand, id, kinds[id], k)
			}
		}
		if len(kinds) != len(want) {
			t.Errorf("%s: %d behaviours compared, want %d: %v", cand, len(kinds), len(want), kinds)
		}
	}
}

// report build from the Ginkgo JSON fixture gives exactly the conformance fixtures.
func TestBuildReproducesFixtures(t *testing.T) {
	for _, n := range []string{"base", "candidate"} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		if code := run([]string{"report", "build", "-o", out, "testdata/ginkgo/" + n + ".json"}, &stdout, &stderr); code != 0 {
			t.Fatalf("build %s: exit %d: %s", n, code, stderr.String())
		}
		for _, f := range []string{report.FileJSON, report.FileYAML} {
			got, _ := os.ReadFile(filepath.Join(out, f))
			want, _ := os.ReadFile(filepath.Join("testdata", n+filepath.Ext(f)))
			if !bytes.Equal(got, want) {
				t.Errorf("report build of testdata/ginkgo/%s.json wrote a %s different from testdata/%s%s (rerun ginkgo-fixture/gen.sh)", n, f, n, filepath.Ext(f))
			}
		}
	}
}

// Without -file the commands print the real versions.yaml: the matrix holds exactly the pairs
// inside each Istio minor's Kubernetes range.
func TestVersionsFromRepositoryFile(t *testing.T) {
	v := meshconform.SupportedVersions()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"versions", "matrix"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	inRange, skipped := 0, 0
	for _, i := range v.Istio {
		for _, k := range v.Kubernetes {
			cell := fmt.Sprintf(`{"istio":%q,"kubernetes":%q,"node_image":%q,"mode":"sidecar"}`, i, k.Version, k.Image)
			has := strings.Contains(stdout.String(), cell)
			// Each pair in range runs in both modes: the ambient cell beside the sidecar one.
			if ambient := strings.Replace(cell, `"mode":"sidecar"`, `"mode":"ambient"`, 1); has != strings.Contains(stdout.String(), ambient) {
				t.Errorf("matrix %s has %s but not %s (or the reverse): every pair runs in both modes", stdout.String(), cell, ambient)
			}
			switch {
			case v.Supports(i, k.Version) && !has:
				t.Errorf("matrix %s lacks %s, inside istio %s's range", stdout.String(), cell, i)
			case !v.Supports(i, k.Version) && has:
				t.Errorf("matrix has %s, outside istio %s's range", cell, i)
			case !v.Supports(i, k.Version) && !strings.Contains(stderr.String(), fmt.Sprintf("skipped: istio %s on kubernetes %s ", i, k.Version)):
				t.Errorf("stderr %q does not name the skipped pair %s × %s", stderr.String(), i, k.Version)
			}
			if v.Supports(i, k.Version) {
				inRange++
			} else {
				skipped++
			}
		}
	}
	if n := strings.Count(stdout.String(), `"istio"`); n != 2*inRange {
		t.Errorf("matrix has %d cells, want the %d pairs in range × 2 modes", n, inRange)
	}
	// Issue 9: the nightly ran Istio 1.30 on Kubernetes 1.37, which 1.30 does not support.
	if skipped == 0 || strings.Contains(stdout.String(), `{"istio":"1.30.8","kubernetes":"1.37.0"`) {
		t.Errorf("matrix skips nothing, or runs istio 1.30.8 on kubernetes 1.37.0 (outside 1.30's 1.32-1.36): %s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"versions", "default-istio"}, &stdout, &stderr); code != 0 || stdout.String() != v.DefaultIstio()+"\n" {
		t.Errorf("default-istio printed %q (exit %d), want %q", stdout.String(), code, v.DefaultIstio())
	}
	stdout.Reset()
	if code := run([]string{"versions", "upgrades"}, &stdout, &stderr); code != 0 {
		t.Fatalf("upgrades: exit %d: %s", code, stderr.String())
	}
	for _, u := range v.Upgrades {
		n := v.NodeImagesFor(u.From, u.To)[0]
		cell := fmt.Sprintf(`{"from":%q,"to":%q,"kubernetes":%q,"node_image":%q}`, u.From, u.To, n.Version, n.Image)
		if !strings.Contains(stdout.String(), cell) || !v.Supports(u.From, n.Version) || !v.Supports(u.To, n.Version) {
			t.Errorf("upgrades %s lacks %s, on a node image both ends support", stdout.String(), cell)
		}
	}
}
