package report

import (
	"strings"
	"testing"
)

// A candidate whose cluster failed its baseline proves nothing: the gate must not pass on it,
// whatever the base said; and a read report keeps the not-judged result.
func TestDiffTreatsNotJudgedAsARegression(t *testing.T) {
	base := Report{Behaviors: []Behavior{{ID: "MTLS-001", Result: Pass, Classification: Documented}, {ID: "MTLS-002", Result: Fail}}}
	cand := Report{Baseline: &Baseline{Status: BaselineFailed, Verdict: ClusterAtFault},
		Behaviors: []Behavior{{ID: "MTLS-001", Result: NotJudged}, {ID: "MTLS-002", Result: NotJudged}}}
	d := Diff(base, cand)
	if n := len(d.Regressions()); n != 2 {
		t.Fatalf("%d regressions, want both behaviours: %+v", n, d.Changes)
	}
	if why := strings.Join(d.Changes[0].Why, ""); !strings.Contains(why, "pass → not-judged (the candidate's cluster baseline failed)") {
		t.Errorf("why = %q", why)
	}
	j, err := cand.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(j)
	if err != nil {
		t.Fatalf("a report with not-judged behaviours does not read back: %v", err)
	}
	if back.Summary.NotJudged != 2 || !back.Baseline.Failed() {
		t.Errorf("read back: summary %+v, baseline %+v", back.Summary, back.Baseline)
	}
}

// The matrix tells a behaviour not judged (the cluster failed its baseline) from a skip.
func TestMatrixShowsNotJudged(t *testing.T) {
	rep := Report{Run: Run{IstioVersion: "1.31.1", KubernetesVersion: "1.37.2"}, Baseline: &Baseline{Status: BaselineFailed},
		Behaviors: []Behavior{{ID: "MTLS-001", Result: NotJudged}, {ID: "MTLS-002", Result: Skip}}}
	rep.finish()
	m := Merge(rep)
	var md strings.Builder
	if err := m.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| MTLS-001 |") || !strings.Contains(md.String(), "not judged") || !strings.Contains(md.String(), "⬜ skip") {
		t.Errorf("markdown does not tell not judged from skip:\n%s", md.String())
	}
	if got := m.Rows[0].Cells[0].Text(); got != "not judged" {
		t.Errorf("cell text %q, want not judged", got)
	}
}

// A behaviour the candidate left out on purpose proves nothing there: pass → left-out gates,
// left out in both is unchanged; the report reads back with the reasons counted, and the
// matrix and the run's description say what was left out.
func TestLeftOut(t *testing.T) {
	why := "needs a running data plane (sidecar, gateway or ztunnel); this run has none (DATAPLANE=0)"
	left := func(id string) Behavior {
		return Behavior{ID: id, Result: LeftOut, Specs: []SpecResult{{Name: id, Result: LeftOut, Message: LeftOutValue{Reason: why}.String()}}}
	}
	base := Report{Behaviors: []Behavior{{ID: "MTLS-001", Result: Pass, Classification: Documented}, left("MTLS-002")}}
	cand := Report{Run: Run{IstioVersion: "1.31.0-dev.20260827124520", KubernetesVersion: "1.37.2", NoDataPlane: true},
		Behaviors: []Behavior{left("MTLS-001"), left("MTLS-002")}}
	cand.finish()
	d := Diff(base, cand)
	if r := d.Regressions(); len(r) != 1 || r[0].ID != "MTLS-001" || !strings.Contains(strings.Join(r[0].Why, ""), "pass → left-out") {
		t.Errorf("regressions %+v: want MTLS-001 only, pass → left-out", r)
	}
	j, err := cand.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(j)
	if err != nil {
		t.Fatalf("a report with left-out behaviours does not read back: %v", err)
	}
	if back.Summary.LeftOut != 2 || back.Summary.LeftOutWhy[why] != 2 || back.Summary.Skipped != 0 || !back.Run.NoDataPlane {
		t.Errorf("read back: summary %+v, run %+v", back.Summary, back.Run)
	}
	if s := back.SummaryText(); !strings.Contains(s, "2 left out on purpose\n  left out: 2: "+why) {
		t.Errorf("closing summary:\n%s", s)
	}
	if s := back.Run.Describe(); !strings.Contains(s, "no data plane (DATAPLANE=0)") {
		t.Errorf("run described as %q", s)
	}
	m := Merge(back)
	if got := m.Rows[0].Cells[0].Text(); got != "left out" {
		t.Errorf("cell text %q, want left out", got)
	}
	// A behaviour the run judged only in part is not a pass: its specs say which part passed.
	for _, pair := range [][2]Result{{Pass, LeftOut}, {LeftOut, Pass}, {Skip, LeftOut}} {
		if got := combineResults(pair[0], pair[1]); got != LeftOut {
			t.Errorf("%s + %s = %s, want left-out", pair[0], pair[1], got)
		}
	}
	if got := combineResults(Fail, LeftOut); got != Fail {
		t.Errorf("fail + left-out = %s, want fail", got)
	}
	var md strings.Builder
	if err := m.Markdown(&md); err != nil || !strings.Contains(md.String(), "⬜ left out") {
		t.Errorf("markdown (%v) does not say left out:\n%s", err, md.String())
	}
}
