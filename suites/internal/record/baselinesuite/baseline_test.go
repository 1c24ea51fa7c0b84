package baselinesuite_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
		for _, id := range []string{"MTLS-001", "AUTHZ-001"} {
			if bh, _ := rep.Behavior(id); bh.State() != "pass/documented" {
				t.Errorf("%s: %s, want pass/documented", id, bh.State())
			}
		}
		if rep.Summary.NotJudged != 0 || len(rep.Run.SuiteFailures) != 0 {
			t.Errorf("summary %+v, suite failures %v: want none not judged", rep.Summary, rep.Run.SuiteFailures)
		}
		if bodies != "MTLS-001\nAUTHZ-001\n" && bodies != "AUTHZ-001\nMTLS-001\n" {
			t.Errorf("behaviour bodies that ran: %q, want both", bodies)
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
			ids := []string{"MTLS-001", "AUTHZ-001"}
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
