package catalog

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAmbient(t *testing.T) {
	for _, tc := range []struct {
		cell string
		want Ambient
	}{
		{"same: plain client exit 56. source: baseline_test.go:865",
			Ambient{Verdict: AmbientSame, Expected: "plain client exit 56.", Source: "baseline_test.go:865"}},
		{"differs: a reset, not `403`; source: ztunnel src/rbac.rs:100, istio.io snips",
			Ambient{Verdict: AmbientDiffers, Expected: "a reset, not `403`", Source: "ztunnel src/rbac.rs:100, istio.io snips"}},
		{"same, needs waypoint: `403` `RBAC: access denied` via a waypoint (`from.source:x` is code) source: snips.sh",
			Ambient{Verdict: AmbientSame, NeedsWaypoint: true, Expected: "`403` `RBAC: access denied` via a waypoint (`from.source:x` is code)", Source: "snips.sh"}},
		{"differs, needs waypoint: XFCC `By=` the waypoint; source: listener_waypoint.go:98",
			Ambient{Verdict: AmbientDiffers, NeedsWaypoint: true, Expected: "XFCC `By=` the waypoint", Source: "listener_waypoint.go:98"}},
		{"left out: an ambient pod has no proxy container",
			Ambient{Verdict: AmbientLeftOut, Reason: "an ambient pod has no proxy container"}},
	} {
		got, err := ParseAmbient(tc.cell)
		if err != nil || got != tc.want {
			t.Errorf("ParseAmbient(%q) = %+v, %v\nwant %+v", tc.cell, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ cell, want string }{
		{"", "empty: write `same: <outcome> source: <citation>`"},
		{"—", "empty"},
		{"works the same", `"works the same" has no verdict`},
		{"maybe: who knows source: x", `verdict "maybe" is none of same, differs, left out`},
		{"same, via waypoint: 403 source: x", `verdict "same, via waypoint": "via waypoint" is not "needs waypoint"`},
		{"same: 200 as for the sidecar", "same outcome has no citation: end it with `source: <file:line, Istio test or doc>`"},
		{"same: 200, from.source:principal only", "has no citation"},
		{"same: source: x", "same: no outcome before \"source:\""},
		{"differs: 200 source:  ", "differs: nothing after \"source:\""},
		{"differs: 200 source: a source: b", `"source:" appears twice`},
		{"left out:", "left out without a reason"},
		{"left out, needs waypoint: no", "a behaviour left out needs no waypoint"},
	} {
		_, err := ParseAmbient(tc.cell)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAmbient(%q): %v\nwant an error containing %q", tc.cell, err, tc.want)
		}
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		a    Ambient
		want string
	}{
		{Ambient{Verdict: AmbientSame}, "sidecar, ambient"},
		{Ambient{Verdict: AmbientSame, NeedsWaypoint: true}, "sidecar, ambient (waypoint)"},
		{Ambient{Verdict: AmbientDiffers}, "sidecar, ambient (differs)"},
		{Ambient{Verdict: AmbientDiffers, NeedsWaypoint: true}, "sidecar, ambient (differs, waypoint)"},
		{Ambient{Verdict: AmbientLeftOut, Reason: "no proxy"}, "sidecar"},
	} {
		if got := (Behavior{Ambient: tc.a}).Modes(); got != tc.want {
			t.Errorf("Modes() of %+v = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// Until the suites drive an ambient data plane, an ambient run judges exactly the control
// plane's behaviours whose ambient outcome is the sidecar's; every other is left out with why.
func TestNotJudgedInAmbient(t *testing.T) {
	var judged []string
	for _, b := range All() {
		why := b.NotJudgedInAmbient()
		if why == "" {
			judged = append(judged, b.ID)
			continue
		}
		if b.Ambient.LeftOut() && !strings.Contains(why, b.Ambient.Reason) {
			t.Errorf("%s: %q does not give the catalog's reason", b.ID, why)
		}
	}
	want := []string{"CERT-003", "CERT-005", "CP-001", "CP-002", "CP-003", "VALID-001"}
	if !slices.Equal(judged, want) {
		t.Errorf("judged in ambient: %v, want %v", judged, want)
	}
	for _, id := range []string{"MTLS-002", "CERT-006", "POSTURE-004"} {
		if MustLookup(id).NotJudgedInAmbient() == "" {
			t.Errorf("%s would be judged the sidecar way in an ambient run", id)
		}
	}
}
