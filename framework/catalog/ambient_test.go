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

// An ambient run judges the behaviours whose ambient cell is `same` (the control plane's and the
// data plane's), and the `differs` ones whose outcome AmbientExpectation states; the `same,
// needs waypoint` ones pass here and wait for a waypoint through their requirement. Every other
// is left out with why.
func TestNotJudgedInAmbient(t *testing.T) {
	var judged, waypoint []string
	for _, b := range All() {
		why := b.NotJudgedInAmbient()
		if why == "" {
			if b.Ambient.NeedsWaypoint {
				waypoint = append(waypoint, b.ID)
			} else {
				judged = append(judged, b.ID)
			}
			continue
		}
		if b.Ambient.LeftOut() && !strings.Contains(why, b.Ambient.Reason) {
			t.Errorf("%s: %q does not give the catalog's reason", b.ID, why)
		}
		if b.Ambient.Verdict == AmbientDiffers && !strings.Contains(why, abbreviateCell(b.Ambient.Expected)) {
			t.Errorf("%s: %q does not give the catalog's ambient outcome", b.ID, why)
		}
	}
	want := []string{"MTLS-001", "MTLS-002", "MTLS-004", "MTLS-005", "MTLS-006", "MTLS-007", "MTLS-008", "MTLS-009",
		"MTLS-011", "MTLS-013", "MTLS-014", "MTLS-015", "CERT-003", "CERT-005", "AUTHZ-005", "AUTHZ-009",
		"PROBE-003", "CP-001", "CP-002", "CP-003", "VALID-001", "INGRESS-001", "INGRESS-002"}
	if !slices.Equal(judged, want) {
		t.Errorf("judged in ambient: %v, want %v", judged, want)
	}
	wantWaypoint := []string{"AUTHZ-002", "AUTHZ-003", "AUTHZ-006", "AUTHZ-007", "AUTHZ-011", "JWT-001", "JWT-002"}
	if !slices.Equal(waypoint, wantWaypoint) {
		t.Errorf("judged in ambient through a waypoint: %v, want %v", waypoint, wantWaypoint)
	}
	for _, id := range []string{"MTLS-003", "MTLS-010", "CERT-001", "CERT-006", "AUTHZ-001", "AUTHZ-004", "POSTURE-004", "PROBE-001"} {
		if MustLookup(id).NotJudgedInAmbient() == "" {
			t.Errorf("%s would be judged in an ambient run against shapes that are not ambient's", id)
		}
	}
	// A mapped differs behaviour: every expectation of its row has an ambient shape of its own.
	for id := range ambientMapped {
		b := MustLookup(id)
		if b.Ambient.Verdict != AmbientDiffers {
			t.Errorf("%s: mapped, and its ambient cell is %q", id, b.Ambient.Verdict)
		}
		for _, e := range b.Expectations {
			if !AmbientWithoutWaypoint(e) {
				t.Errorf("%s: mapped, and %s has no ambient shape without a waypoint", id, e.Name)
			}
		}
	}
}

// The ambient shapes, as Istio's ambient tests and the catalog's cells give them.
func TestAmbientExpectation(t *testing.T) {
	for _, tc := range []struct {
		e                 Expectation
		code, exit        int
		errLine           string
		documented, match bool
	}{
		// ztunnel's reset (CheckDeny's ztunnel arm), documented; an empty reply, equivalent.
		{PlaintextRejected, 0, 56, "curl: (56) " + TextConnectionReset, true, true},
		{PlaintextRejected, 0, 52, "curl: (52) Empty reply from server", false, true},
		{PlaintextRejected, 0, 35, "curl: (35) TLS connect error", false, false},
		{PlaintextRejected, 0, 7, "curl: (7) Failed to connect", false, false},
		{TCPForbidden, 0, 56, "curl: (56) " + TextConnectionReset, true, true},
		{TCPForbidden, 0, 52, "curl: (52) Empty reply from server", false, true},
		// MTLS-008: the DestinationRule cannot make the ambient client send plaintext.
		{DisableVsStrict, 200, 0, "", true, true},
		{DisableVsStrict, 503, 0, "", false, false},
		{Allowed, 200, 0, "", true, true},
		{HTTPSRedirect, 301, 0, "", true, true},
		{UntrustedCertificate, 0, 60, "", true, true},
	} {
		a := AmbientExpectation(tc.e)
		if a.Name != tc.e.Name {
			t.Errorf("%s: ambient name %q, want the catalog's", tc.e.Name, a.Name)
		}
		doc := a.Documented.Matches(tc.code, tc.exit, tc.errLine, "")
		any := doc || slices.ContainsFunc(a.Equivalents, func(s Shape) bool { return s.Matches(tc.code, tc.exit, tc.errLine, "") })
		if doc != tc.documented || any != tc.match {
			t.Errorf("%s in ambient, http %d exit %d: documented %t matches %t, want %t %t (%s)", tc.e.Name, tc.code, tc.exit, doc, any, tc.documented, tc.match, a)
		}
	}
	for _, e := range Expectations() {
		if !AmbientWithoutWaypoint(e) && AmbientExpectation(e).String() != e.String() {
			t.Errorf("%s: no ambient shape without a waypoint, and mapped to %s", e.Name, AmbientExpectation(e))
		}
	}
	for _, e := range []Expectation{RBACDenied, Denied403, JWTRejected, UpstreamConnectError, BlackHole} {
		if AmbientWithoutWaypoint(e) {
			t.Errorf("%s: only an L7 proxy (or none in ambient) gives it, and it is said to hold without a waypoint", e.Name)
		}
	}
}
