package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshconform/framework/baseline"
	"meshconform/framework/provision"
	"meshconform/framework/report"
)

// The run's phases before the specs: Up's, from the state, whoever ran it; then the compile
// phase, only when a driver said when it started go tool ginkgo, and only when that is a time
// before the suite began (never a negative or made-up duration).
func TestRunPhases(t *testing.T) {
	up := []report.Phase{report.Measured(report.PhasePreflight, time.Second, 0), report.Measured(report.PhaseCluster, 40*time.Second, 5*time.Second)}
	st := provision.State{Phases: up}
	began := time.Date(2026, 12, 1, 5, 0, 30, 0, time.UTC)
	names := func(ps []report.Phase) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	if got := runPhases(st, began, ""); len(got) != 2 || got[1].Name != report.PhaseCluster {
		t.Errorf("no driver: %q, want Up's phases alone", names(got))
	}
	got := runPhases(st, began, began.Add(-12500*time.Millisecond).Format(time.RFC3339Nano))
	if len(got) != 3 || got[2].Name != report.PhaseCompile || got[2].DurationSeconds != 12.5 || got[2].WaitSeconds != nil {
		t.Errorf("driven: %+v, want Up's phases and compile 12.5s, not metered", got)
	}
	for _, bad := range []string{"yesterday", began.Add(time.Second).Format(time.RFC3339Nano)} {
		if got := runPhases(st, began, bad); len(got) != 2 {
			t.Errorf("started %q: %q, want no compile phase", bad, names(got))
		}
	}
	if len(st.Phases) != 2 {
		t.Error("runPhases changed the state's phases")
	}
}

// A gate phase's behaviour suites take the upgrade suite's baseline from its report only when
// it passed; a failed one, or a report that cannot be read, makes the suite judge its own.
func TestReuseBaselineFromAReport(t *testing.T) {
	write := func(b report.Baseline) string {
		dir := t.TempDir()
		r := report.Report{APIVersion: report.APIVersion, Kind: report.Kind, Baseline: &b}
		if err := r.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, report.FileJSON)
	}
	passed := write(baseline.Judge([]report.BaselineProbe{{Name: "plain client to plain server", Result: report.Pass}}))
	b, ok := reuseBaseline(passed, time.Now().Add(30*time.Second))
	if !ok || b.Status != report.BaselinePassed || !strings.Contains(b.Verdict, "judged 30s earlier on the same cluster by the suite of "+passed) {
		t.Errorf("reuse of a passed baseline: ok %t, %+v", ok, b)
	}
	failed := write(baseline.Judge([]report.BaselineProbe{{Name: "plain client to plain server", Result: report.Fail, Reason: "exit 6"}}))
	for _, from := range []string{"", failed, filepath.Join(t.TempDir(), "missing.json")} {
		if b, ok := reuseBaseline(from, time.Now()); ok {
			t.Errorf("reuseBaseline(%q) reused %+v; want the suite to judge its own", from, b)
		}
	}
}
