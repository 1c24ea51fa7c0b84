package report

import (
	"strings"
	"testing"
)

// The live tier's own use: the baseline passed, the behaviours the cluster can exercise
// passed, the rest were left out; and each way that can be untrue is named with what was seen.
func TestCheck(t *testing.T) {
	why := LeftOutValue{Reason: "needs Istio; this run has none (ISTIO_INSTALL=none)"}.String()
	left := func(id string) Behavior {
		return Behavior{ID: id, Result: LeftOut, Specs: []SpecResult{{Name: id, Result: LeftOut, Message: why}}}
	}
	rep := Report{Baseline: &Baseline{Status: BaselinePassed, Verdict: "plain traffic ok"},
		Behaviors: []Behavior{{ID: "CERT-003", Result: Pass}, left("MTLS-001"), left("MTLS-002")}}
	parse := func(ss ...string) []Want {
		t.Helper()
		var ws []Want
		for _, s := range ss {
			w, err := ParseWant(s)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		return ws
	}
	if bad := rep.Check(parse("baseline=passed", "CERT-003=pass", "*=left-out")); len(bad) != 0 {
		t.Errorf("expectations that hold: %v", bad)
	}
	// A spec that ran where it should have been left out, and a skip instead of a left-out.
	rep.Behaviors[1] = Behavior{ID: "MTLS-001", Result: Skip, Specs: []SpecResult{{Name: "x", Result: Skip, Message: "skipped by hand"}}}
	rep.Baseline.Status = BaselineFailed
	bad := rep.Check(parse("baseline=passed", "CERT-003=pass/documented", "*=left-out", "AUTHZ-001=pass"))
	want := []string{
		"baseline=passed: baseline failed: baseline failed: plain traffic ok",
		"CERT-003=pass/documented: seen pass: ",
		"AUTHZ-001=pass: the report has no AUTHZ-001",
		"*=left-out: MTLS-001 seen skip: skipped by hand",
	}
	if strings.Join(bad, "\n") != strings.Join(want, "\n") {
		t.Errorf("mismatches:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
	if bad := rep.Check(parse("CERT-003=pass", "MTLS-001=skip", "MTLS-002=left-out", "*=pass")); len(bad) != 1 || !strings.Contains(bad[0], "no behaviour is left for it") {
		t.Errorf("a * with nothing left: %v", bad)
	}
	// A part of a behaviour: the spec a run without a data plane could judge.
	part := Report{Behaviors: []Behavior{{ID: "PROBE-001", Result: LeftOut, Specs: []SpecResult{
		{Name: "probes PROBE-001: HTTP probes keep working", Result: LeftOut, Message: "left out: no data plane"},
		{Name: "probes PROBE-001 injected spec: rewritten", Result: Pass}}}}}
	if bad := part.Check(parse("PROBE-001[injected spec]=pass", "*=left-out")); len(bad) != 0 {
		t.Errorf("a passing part of a left-out behaviour: %v", bad)
	}
	part.Behaviors[0].Specs[1].Result, part.Behaviors[0].Specs[1].Message = Fail, "pod has no /app-health probe\nmore"
	bad = part.Check(parse("PROBE-001[injected spec]=pass", "PROBE-001[nothing]=pass"))
	if len(bad) != 2 || !strings.Contains(bad[0], `spec "probes PROBE-001 injected spec: rewritten" seen fail: pod has no /app-health probe`) ||
		!strings.Contains(bad[1], `PROBE-001 has no spec whose name contains "nothing"`) {
		t.Errorf("a failing part, a part that is not there: %v", bad)
	}
	for _, s := range []string{"CERT-003", "=pass", "cert-3=pass", "CERT-003=passed", "CERT-003=pass/great", "baseline=ok",
		"*[x]=pass", "PROBE-001[]=pass", "PROBE-001[x]=pass/documented"} {
		if _, err := ParseWant(s); err == nil {
			t.Errorf("ParseWant(%q) accepted", s)
		}
	}
}
