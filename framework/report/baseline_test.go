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
