package report

import (
	"strings"
	"testing"
)

// Three runs' timings side by side: each phase's min, median and max over the runs that
// measured it, the total, and each spec's whole time and parts; a spec without timings (left
// out) and a phase one run lacks do not count as zeros.
func TestTimingSpreads(t *testing.T) {
	run := func(cluster float64, withCluster bool, total float64, spec float64, setup float64) Report {
		ph := []Phase{{Name: PhasePreflight, DurationSeconds: 1}}
		if withCluster {
			ph = append(ph, Phase{Name: PhaseCluster, DurationSeconds: cluster})
		}
		return Report{
			Timings: &Timings{Phases: ph, TotalSeconds: &total},
			Behaviors: []Behavior{
				{ID: "CERT-003", Specs: []SpecResult{{Name: "cert CERT-003", DurationSeconds: spec, Timings: &SpecTimings{SetupSeconds: &setup}}}},
				{ID: "MTLS-002", Specs: []SpecResult{{Name: "mtls MTLS-002", Result: LeftOut, DurationSeconds: 0.001}}},
			},
		}
	}
	rows := TimingSpreads([]Report{run(40, true, 100, 3, 1), run(0, false, 80, 5, 2), run(30, true, 90, 4, 1.5)})
	got := map[string]Spread{}
	var names []string
	for _, r := range rows {
		got[r.Name] = r
		names = append(names, r.Name)
	}
	want := map[string]Spread{
		"phase preflight":            {N: 3, Min: 1, Median: 1, Max: 1},
		"phase cluster":              {N: 2, Min: 30, Median: 35, Max: 40},
		"total":                      {N: 3, Min: 80, Median: 90, Max: 100},
		"spec cert CERT-003":         {N: 3, Min: 3, Median: 4, Max: 5},
		"spec cert CERT-003 · setup": {N: 3, Min: 1, Median: 1.5, Max: 2},
	}
	for name, w := range want {
		w.Name = name
		if got[name] != w {
			t.Errorf("%s: got %+v, want %+v", name, got[name], w)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("rows %q, want only %d (no row for the left-out spec)", names, len(want))
	}
	var b strings.Builder
	WriteSpreads(&b, 3, rows)
	if !strings.Contains(b.String(), "   2    30.000    35.000    40.000  phase cluster") {
		t.Errorf("table:\n%s", b.String())
	}
}
