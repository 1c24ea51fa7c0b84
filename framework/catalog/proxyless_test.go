package catalog

import (
	"slices"
	"strings"
	"testing"
)

// TestProxylessTable pins what a proxyless run judges: the analogues, the predicted deviations,
// and that every behaviour needing the data plane without a row is left out, saying so, while the
// control plane's run as written.
func TestProxylessTable(t *testing.T) {
	var analogues, deviations, leftOut []string
	for _, b := range All() {
		switch b.Proxyless.Verdict {
		case ProxylessAnalogue:
			analogues = append(analogues, b.ID)
		case ProxylessDeviation:
			deviations = append(deviations, b.ID)
		case ProxylessLeftOut:
			leftOut = append(leftOut, b.ID)
		}
		why := b.NotJudgedInProxyless()
		switch {
		case b.Proxyless.Judged() && why != "":
			t.Errorf("%s: judged in the table, left out: %s", b.ID, why)
		case b.Proxyless.Verdict == ProxylessLeftOut && !strings.Contains(why, b.Proxyless.Reason):
			t.Errorf("%s: left out without the table's reason: %q", b.ID, why)
		case b.Proxyless.Verdict == "" && (b.HasLabel(LabelDataPlane) || b.HasLabel(LabelAgent)) && !strings.Contains(why, "no proxyless analogue"):
			t.Errorf("%s: needs the data plane, has no row, and is not left out: %q", b.ID, why)
		}
		for _, e := range b.Proxyless.Expectations {
			if e.Documented.GRPCCode == "" {
				t.Errorf("%s: proxyless outcome %s is no gRPC shape", b.ID, e.Name)
			}
		}
	}
	if want := []string{"AUTHZ-002", "AUTHZ-004", "AUTHZ-005", "AUTHZ-006", "MTLS-001", "MTLS-002", "MTLS-005", "MTLS-011"}; !slices.Equal(sorted(analogues), want) {
		t.Errorf("analogues %v, want %v", analogues, want)
	}
	if want := []string{"AUTHZ-001", "JWT-002"}; !slices.Equal(sorted(deviations), want) {
		t.Errorf("deviations %v, want %v", deviations, want)
	}
	if len(leftOut) < 10 {
		t.Errorf("left out %v", leftOut)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

// TestParseProxyless: each malformed cell is refused with what is wrong.
func TestParseProxyless(t *testing.T) {
	for _, tc := range []struct{ cell, outcomes, source, want string }{
		{"same: x", "GRPCAllowed", "lds.go:1", "unknown verdict"},
		{"analogue", "GRPCAllowed", "lds.go:1", "want `analogue: …`"},
		{"analogue: x", "Allowed", "lds.go:1", `unknown proxyless outcome "Allowed"`},
		{"analogue: x", "—", "lds.go:1", "needs its outcomes and a source"},
		{"deviation: x", "GRPCAllowed", "—", "needs its outcomes and a source"},
		{"left out: no TCP", "GRPCAllowed", "—", "left out, yet it names outcomes"},
	} {
		if _, err := ParseProxyless(tc.cell, tc.outcomes, tc.source); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q %q: %v, want %q", tc.cell, tc.outcomes, tc.source, err, tc.want)
		}
	}
	p, err := ParseProxyless("deviation: fails open", "GRPCNoAllowMatch", "lds.go:194")
	if err != nil || p.Verdict != ProxylessDeviation || !p.Judged() || p.Expectations[0].Name != "GRPCNoAllowMatch" {
		t.Errorf("%+v %v", p, err)
	}
	// A row for an ID without a behaviour row is an error.
	doc := "## mTLS\n\n| ID | behaviour | setup | expected | source | labels | outcomes | ambient |\n|---|---|---|---|---|---|---|---|\n" +
		"| MTLS-001 | t | s | e | 001 | dataplane | Allowed | left out: x |\n\n## Proxyless data plane\n\n| ID | proxyless | outcomes | source |\n|---|---|---|---|\n" +
		"| MTLS-009 | left out: x | — | — |\n"
	if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "MTLS-009 has a proxyless row and no behaviour row") {
		t.Errorf("orphan proxyless row: %v", err)
	}
}
