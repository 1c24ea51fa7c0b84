package catalog

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// rowID is a table row that starts with a behaviour ID (`| MTLS-001 | …`).
var rowID = regexp.MustCompile(`^\|\s*([A-Z]+-\d{3})\s*\|`)

func TestCatalogShape(t *testing.T) {
	seen := map[string]bool{}
	known := []string{LabelSlow, LabelDisruptive, LabelDataPlane, LabelAgent}
	for _, b := range All() {
		if seen[b.ID] {
			t.Errorf("duplicate ID %s", b.ID)
		}
		seen[b.ID] = true
		if b.Title == "" || b.Expected == "" || b.Source == "" || b.Area == "" {
			t.Errorf("%s: empty field in %+v", b.ID, b)
		}
		for _, l := range b.Labels {
			if !slices.Contains(known, l) {
				t.Errorf("%s: unknown label %q (known: %v)", b.ID, l, known)
			}
		}
		for _, e := range b.Expectations {
			if _, ok := LookupExpectation(e.Name); !ok {
				t.Errorf("%s: expectation %q is not in Expectations()", b.ID, e.Name)
			}
		}
	}
	if b := MustLookup("MTLS-012"); !b.HasLabel(LabelSlow) {
		t.Errorf("MTLS-012 labels %v, want %q", b.Labels, LabelSlow)
	}
	// What istiod alone decides runs without a data plane; every traffic probe needs one.
	for id, want := range map[string]bool{"CERT-003": false, "CP-001": false, "POSTURE-004": false, "MTLS-001": true, "CERT-001": true, "PROBE-001": true, "INGRESS-001": true} {
		if got := MustLookup(id).HasLabel(LabelDataPlane); got != want {
			t.Errorf("%s labelled %q: %t, want %t", id, LabelDataPlane, got, want)
		}
	}
	// What needs pilot-agent but no Envoy runs where an agent image is given, data plane or not.
	for _, id := range []string{"CERT-006", "CERT-007"} {
		if b := MustLookup(id); !b.HasLabel(LabelAgent) || b.HasLabel(LabelDataPlane) {
			t.Errorf("%s labels %v, want %q and not %q", id, b.Labels, LabelAgent, LabelDataPlane)
		}
	}
	if b := MustLookup("MTLS-007"); !b.HasLabel(LabelDisruptive) || b.GinkgoLabels()[0] != "MTLS-007" {
		t.Errorf("MTLS-007 labels %v / ginkgo %v, want %q after the ID", b.Labels, b.GinkgoLabels(), LabelDisruptive)
	}
	if b := MustLookup("MTLS-008"); len(b.Expectations) != 1 || b.Expectations[0].Name != DisableVsStrict.Name {
		t.Errorf("MTLS-008 expectations %v, want DisableVsStrict", b.Expectations)
	}
	if _, ok := Lookup("MTLS-999"); ok {
		t.Error("Lookup(MTLS-999) found something")
	}
	want := []Area{AreaMTLS, AreaIdentity, AreaAuthz, AreaJWT, AreaEgress, AreaProbes, AreaControlPlane, AreaIngress, AreaPosture}
	if got := Areas(); !slices.Equal(got, want) {
		t.Errorf("Areas() = %v, want %v", got, want)
	}
	authz := InArea(AreaAuthz)
	if len(authz) < 5 || authz[0].ID != "AUTHZ-001" {
		t.Errorf("InArea(authz) = %d behaviours starting %v, want AUTHZ-001 first and at least 5", len(authz), authz)
	}
	for _, b := range authz {
		if b.Area != AreaAuthz {
			t.Errorf("InArea(authz) holds %s of area %s", b.ID, b.Area)
		}
	}

	// Every behaviour states its ambient outcome with a citation, or why it has none.
	for _, b := range All() {
		a := b.Ambient
		switch {
		case a.Verdict == "":
			t.Errorf("%s has no ambient verdict", b.ID)
		case a.LeftOut() && a.Reason == "":
			t.Errorf("%s is left out of ambient without a reason", b.ID)
		case !a.LeftOut() && (a.Expected == "" || a.Source == ""):
			t.Errorf("%s: ambient %s without an outcome or a citation: %+v", b.ID, a.Verdict, a)
		}
	}
	// Issue 22's facts, pinned: no ambient meaning without a proxy container or a rewrite to
	// turn off; L7 outcomes need a waypoint; the sidecar-only knobs are inert in ambient.
	for id, want := range map[string]string{
		"MTLS-002": "sidecar, ambient", "MTLS-003": "sidecar", "PROBE-002": "sidecar",
		"AUTHZ-002": "sidecar, ambient (waypoint)", "AUTHZ-006": "sidecar, ambient (waypoint)",
		"JWT-001": "sidecar, ambient (waypoint)", "CERT-001": "sidecar, ambient (differs, waypoint)",
		"MTLS-008": "sidecar, ambient (differs)", "MTLS-010": "sidecar, ambient (differs)",
		"AUTHZ-001": "sidecar, ambient (differs)", "PROBE-001": "sidecar, ambient (differs)",
		"CERT-004": "sidecar, ambient (differs)", "EGRESS-001": "sidecar",
	} {
		if got := MustLookup(id).sidecarAmbientModes(); got != want {
			t.Errorf("%s runs in %q, want %q", id, got, want)
		}
	}
	if a := MustLookup("AUTHZ-006").Ambient; !strings.Contains(a.Expected, "never matches") || !strings.Contains(a.Expected, "istio/istio#61126") {
		t.Errorf("AUTHZ-006's ambient cell must say that an HTTP-only DENY never matches at ztunnel (istio/istio#61126): %q", a.Expected)
	}

	// All returns copies: a caller appending labels must not change the catalog.
	all := All()
	all[0].Labels = append(all[0].Labels, "mutated")
	if b := MustLookup(all[0].ID); b.HasLabel("mutated") {
		t.Error("All() leaked the catalog's Labels slice")
	}
}

// envoyRetriedTLS is the 503 body a sidecar returns after mTLS to a plaintext port, as reported
// from Istio 1.21/1.22 in istio/istio#53368.
const envoyRetriedTLS = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end:TLS_error_end"

func TestShapeMatches(t *testing.T) {
	cases := []struct {
		shape         Shape
		code, exit    int
		errLine, body string
		want          bool
	}{
		{PlaintextRejected.Documented, 0, 56, "curl: (56) Recv failure: Connection reset by peer", "", true},
		{PlaintextRejected.Documented, 0, 56, "curl: (56) OpenSSL SSL_read: error", "", false},
		{PlaintextRejected.Documented, 0, 52, "curl: (52) Empty reply from server", "", false},
		{Allowed.Documented, 200, 0, "", "hello", true},
		{Allowed.Documented, 200, 28, "", "", false},
		{RBACDenied.Documented, 403, 0, "", "RBAC: access denied", true},
		{RBACDenied.Documented, 403, 0, "", "forbidden", false},
		{Denied403.Documented, 403, 0, "", "forbidden", true},
		{DisableVsStrict.Documented, 503, 0, "", TextConnectionTermReset, true},
		{DisableVsStrict.Documented, 503, 0, "", TextUpstreamConnect + ". reset reason: remote reset", false},
		{Shape{HTTPCode: Any, CurlExit: Any}, 418, 3, "", "", true},
		// "…" stands for the reset reason Envoy writes between its fixed words.
		{UpstreamConnectError.Documented, 503, 0, "", envoyRetriedTLS, true},
		{UpstreamConnectError.Documented, 503, 0, "", TextUpstreamConnect + ". reset reason: remote connection failure, transport failure reason: TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end", false},
		{UpstreamConnectError.Documented, 503, 0, "", TextUpstreamConnect + ". retried and the latest reset reason: connection termination", false},
		{Shape{BodyContains: "TLS_error…retried"}, 503, 0, "", envoyRetriedTLS, false},
	}
	for _, c := range cases {
		if got := c.shape.Matches(c.code, c.exit, c.errLine, c.body); got != c.want {
			t.Errorf("{%s}.Matches(%03d, %d, %q, %q) = %v, want %v", c.shape, c.code, c.exit, c.errLine, c.body, got, c.want)
		}
	}
	got := PlaintextRejected.String()
	for _, want := range []string{`documented {reset: http_code=000 exit=56 error~"Recv failure: Connection reset by peer"}`, "exit=52", "exit=35", "exit=16", "exit=7"} {
		if !strings.Contains(got, want) {
			t.Errorf("PlaintextRejected.String() = %s\nwant it to contain %s", got, want)
		}
	}
}

// TestReadmeListsEveryBehaviour: the README's behaviour table has a row for every catalog ID,
// with the catalog's title and the modes it has a meaning in (sidecar, and ambient as the
// catalog's ambient column says), so a new behaviour, or a change of its ambient verdict,
// cannot be left out of what users read first.
func TestReadmeListsEveryBehaviour(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ title, modes string }
	rows := map[string]row{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) == 5 && rowID.MatchString("| "+strings.TrimSpace(cells[1])+" |") {
			rows[strings.TrimSpace(cells[1])] = row{strings.TrimSpace(cells[2]), strings.TrimSpace(cells[4])}
		}
	}
	for _, b := range All() {
		r, ok := rows[b.ID]
		switch {
		case !ok:
			t.Errorf("README.md's behaviour table has no row for %s (%s) with five cells (area, ID, behaviour, labels, modes)", b.ID, b.Title)
		case r.title != b.Title:
			t.Errorf("README.md lists %s as %q; the catalog says %q", b.ID, r.title, b.Title)
		case r.modes != b.Modes():
			t.Errorf("README.md gives %s the modes %q; the catalog's ambient column says %q", b.ID, r.modes, b.Modes())
		}
	}
}
