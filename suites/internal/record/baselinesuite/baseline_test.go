package baselinesuite_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"meshconform/framework/report"
)

// runSuite runs this binary again as the baseline suite with the scenario and extra Ginkgo
// flags, and returns its conformance report, closing summary, behaviour bodies that ran, and
// output.
func runSuite(t *testing.T, scenario string, flags ...string) (rep report.Report, summary, bodies string, out []byte, exitErr error) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"-test.run=^TestBaselineSuite$", "-ginkgo.no-color"}, flags...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envDir+"="+dir, envScenario+"="+scenario)
	out, exitErr = cmd.CombinedOutput()
	rep, err := report.Read(filepath.Join(dir, report.FileJSON))
	if err != nil {
		t.Fatalf("the suite wrote no readable conformance report: %v\n%s", err, out)
	}
	s, _ := os.ReadFile(filepath.Join(dir, "summary.txt"))
	b, _ := os.ReadFile(filepath.Join(dir, bodyMarker))
	return rep, string(s), string(b), out, exitErr
}

func TestBaselineRecorded(t *testing.T) {
	t.Run("working cluster", func(t *testing.T) {
		t.Parallel()
		rep, summary, bodies, out, err := runSuite(t, "working")
		if err != nil {
			t.Fatalf("a run whose baseline and behaviours pass exits non-zero: %v\n%s", err, out)
		}
		b := rep.Baseline
		if b == nil || b.Status != report.BaselinePassed || len(b.Probes) != 3 {
			t.Fatalf("baseline section %+v, want passed with three probes\n%s", b, out)
		}
		want := map[string]int{"plain client to plain server": 0, "plain client to a closed port": 7, "plain client to a slow server": 28}
		for _, p := range b.Probes {
			ev := p.Evidence
			if p.Result != report.Pass || ev.CurlExit == nil || *ev.CurlExit != want[p.Name] || ev.Attempts < 3 || len(ev.History) == 0 {
				t.Errorf("baseline probe %s: %s, evidence %+v; want pass, curl exit %d, its convergence", p.Name, p.Result, ev, want[p.Name])
			}
		}
		for _, id := range []string{"MTLS-001", "AUTHZ-001", "PROBE-001"} {
			if bh, _ := rep.Behavior(id); bh.State() != "pass/documented" {
				t.Errorf("%s: %s, want pass/documented", id, bh.State())
			}
		}
		if rep.Summary.NotJudged != 0 || rep.Summary.LeftOut != 0 || len(rep.Run.SuiteFailures) != 0 {
			t.Errorf("summary %+v, suite failures %v: want none not judged or left out", rep.Summary, rep.Run.SuiteFailures)
		}
		if got := sortedLines(bodies); got != "AUTHZ-001\nMTLS-001\nPROBE-001\nPROBE-001 BeforeAll" {
			t.Errorf("behaviour bodies that ran: %q, want all three and the BeforeAll", got)
		}
		if !strings.HasPrefix(summary, "baseline: passed") {
			t.Errorf("closing summary does not start with the passed baseline:\n%s", summary)
		}
	})

	for _, tc := range []struct{ name, filter string }{{"broken cluster", ""}, {"broken cluster, one behaviour selected", "MTLS-001"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var flags []string
			if tc.filter != "" {
				flags = append(flags, "-ginkgo.label-filter="+tc.filter)
			}
			rep, summary, bodies, out, err := runSuite(t, "broken", flags...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("a run whose baseline failed must exit non-zero; got %v\n%s", err, out)
			}
			b := rep.Baseline
			if !b.Failed() || !strings.HasPrefix(b.Verdict, "cluster at fault: no behaviour was judged") || !strings.Contains(b.Verdict, "plain client to a closed port") {
				t.Fatalf("baseline section %+v: want failed, the cluster at fault, naming the closed-port probe\n%s", b, out)
			}
			for _, p := range b.Probes {
				if p.Name != "plain client to a closed port" {
					continue
				}
				ev := p.Evidence
				if p.Result != report.Fail || ev.CurlExit == nil || *ev.CurlExit != 28 || !strings.Contains(ev.ErrorLine, "Timeout was reached") ||
					!strings.Contains(p.Reason, "did not converge") || len(ev.History) == 0 {
					t.Errorf("closed-port probe: %s %q, evidence %+v; want fail with the exit 28 it saw and its history", p.Result, p.Reason, ev)
				}
			}
			ids := []string{"MTLS-001", "AUTHZ-001", "PROBE-001"}
			if tc.filter != "" {
				ids = ids[:1]
			}
			for _, id := range ids {
				bh, _ := rep.Behavior(id)
				if bh.Result != report.NotJudged || bh.Classification != "" || len(bh.Evidence) != 0 {
					t.Errorf("%s: %s with %d evidence, want not-judged and nothing recorded", id, bh.State(), len(bh.Evidence))
				}
				if len(bh.Specs) != 1 || !strings.Contains(bh.Specs[0].Message, "the cluster baseline failed") {
					t.Errorf("%s: specs %+v, want one saying the cluster baseline failed", id, bh.Specs)
				}
			}
			if rep.Summary.NotJudged != len(ids) || rep.Summary.Failed != 0 || rep.Summary.Deviation != 0 {
				t.Errorf("summary %+v: want %d not judged, none failed, no deviation blamed on the mesh", rep.Summary, len(ids))
			}
			if bodies != "" {
				t.Errorf("behaviour bodies ran after a failed baseline: %q", bodies)
			}
			if !strings.HasPrefix(summary, "BASELINE FAILED: cluster at fault: no behaviour was judged") || !strings.Contains(summary, "not judged (the baseline failed)") {
				t.Errorf("closing summary does not say the cluster is at fault:\n%s", summary)
			}
			if !strings.Contains(string(out), "the run fails because its baseline failed") {
				t.Errorf("the console does not say why the run failed:\n%s", out)
			}
		})
	}
}

// The run's settings leave specs out on purpose: each is reported as left out with the
// reason, its body (and its container's BeforeAll) never runs, the baseline still runs, and
// the run passes on what it did judge.
func TestLeftOutRecorded(t *testing.T) {
	for _, tc := range []struct {
		scenario, why string
		left          []string
	}{
		{"no-mesh", "needs Istio; this run has none (ISTIO_INSTALL=none)", []string{"AUTHZ-001", "MTLS-001", "PROBE-001"}},
		{"no-dataplane", "needs a running data plane (sidecar, gateway or ztunnel); this run has none (DATAPLANE=0)", []string{"PROBE-001"}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			rep, summary, bodies, out, err := runSuite(t, tc.scenario)
			if err != nil {
				t.Fatalf("a run that leaves specs out on purpose and passes the rest must exit 0; got %v\n%s", err, out)
			}
			if b := rep.Baseline; b == nil || b.Status != report.BaselinePassed {
				t.Errorf("baseline %+v: want it run and passed", b)
			}
			var ran []string
			for _, id := range []string{"AUTHZ-001", "MTLS-001", "PROBE-001"} {
				bh, _ := rep.Behavior(id)
				if !slices.Contains(tc.left, id) {
					ran = append(ran, id)
					if bh.State() != "pass/documented" {
						t.Errorf("%s: %s, want pass/documented", id, bh.State())
					}
					continue
				}
				if bh.Result != report.LeftOut || bh.Classification != "" || len(bh.Evidence) != 0 ||
					len(bh.Specs) != 1 || bh.Specs[0].Message != "left out: "+tc.why {
					t.Errorf("%s: %s, specs %+v; want left-out with the message %q and nothing recorded", id, bh.State(), bh.Specs, "left out: "+tc.why)
				}
			}
			if rep.Summary.LeftOut != len(tc.left) || rep.Summary.LeftOutWhy[tc.why] != len(tc.left) || rep.Summary.Skipped != 0 || rep.Summary.Failed != 0 {
				t.Errorf("summary %+v: want %d left out for %q, none skipped or failed", rep.Summary, len(tc.left), tc.why)
			}
			if want := strings.Join(ran, "\n"); sortedLines(bodies) != want {
				t.Errorf("bodies that ran: %q, want %q (a spec left out runs neither its body nor its BeforeAll)", sortedLines(bodies), want)
			}
			want := fmt.Sprintf("%d left out on purpose\n  left out: %d: %s\n", len(tc.left), len(tc.left), tc.why)
			if !strings.Contains(summary, want) {
				t.Errorf("closing summary lacks %q:\n%s", want, summary)
			}
		})
	}
}

func sortedLines(s string) string {
	lines := strings.Fields(strings.ReplaceAll(s, " BeforeAll", "_BeforeAll"))
	slices.Sort(lines)
	return strings.ReplaceAll(strings.Join(lines, "\n"), "_BeforeAll", " BeforeAll")
}
