package catalog

import (
	"strings"
	"testing"

	"meshconform"
)

// The embedded docs/behaviors.md parses, and is what the package serves.
func TestCatalogFile(t *testing.T) {
	bs, err := Parse(meshconform.BehaviorsFile())
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != len(All()) || bs[0].ID != "MTLS-001" {
		t.Errorf("parsed %d behaviours, the package serves %d", len(bs), len(All()))
	}
	b := MustLookup("MTLS-007")
	if b.Area != AreaMTLS || !b.HasLabel(LabelDisruptive) || !b.HasLabel(LabelDataPlane) ||
		len(b.Expectations) != 2 || b.Expectations[0].Name != PlaintextRejected.Name {
		t.Errorf("MTLS-007 read as %+v", b)
	}
	if p := MustLookup("POSTURE-004"); p.Area != AreaPosture || p.Setup != "" || p.Source != "003" || strings.Join(p.Labels, ",") != LabelDisruptive {
		t.Errorf("POSTURE-004 read as %+v", p)
	}
}

// Each way a row can be wrong is named with its line.
func TestParseErrors(t *testing.T) {
	const (
		head = "## mTLS (x)\n\n| ID | behaviour | setup | expected | source | labels | outcomes | ambient |\n|---|---|---|---|---|---|---|---|\n"
		amb  = " same: 200 source: B:1 |"
	)
	for _, tc := range []struct{ name, in, want string }{
		{"unknown label", head + "| MTLS-001 | t | s | e | 001 | fast | Allowed |" + amb + "\n", `line 5: MTLS-001: unknown label "fast"`},
		{"unknown outcome", head + "| MTLS-001 | t | s | e | 001 |  | Alowed |" + amb + "\n", `line 5: MTLS-001: unknown outcome "Alowed"`},
		{"cell count", head + "| MTLS-001 | t | s | e | 001 |\n", "line 5: MTLS-001 has 5 cells, its table's header 8"},
		{"empty cell", head + "| MTLS-001 |  | s | e | 001 |  |  |" + amb + "\n", "line 5: MTLS-001: empty title, expected or source"},
		{"duplicate", head + "| MTLS-001 | t | s | e | 001 |  |  |" + amb + "\n| MTLS-001 | t | s | e | 001 |  |  |" + amb + "\n", "line 6: MTLS-001 is already on line 5"},
		{"no area", "## Elsewhere\n\n| ID | behaviour | expected | source | ambient |\n| MTLS-001 | t | e | 001 |" + amb + "\n", `line 4: MTLS-001 is in section "Elsewhere", which maps to no area`},
		{"no header", "## mTLS\n\n| MTLS-001 | t | s | e | 001 |  |  |" + amb + "\n", "line 3: MTLS-001 comes before its table's header row"},
		{"unknown column", "## mTLS\n\n| ID | behaviour | colour | expected | source | ambient |\n", `line 3: unknown column "colour"`},
		{"no rows", "# nothing\n", "no behaviour rows"},
		{"bad ambient cell", "## mTLS\n\n| ID | behaviour | expected | source | ambient |\n|---|---|---|---|---|\n| MTLS-001 | t | e | 001 | same: 200 |\n",
			"line 5: MTLS-001: ambient cell: same outcome has no citation"},
		{"empty ambient cell", "## mTLS\n\n| ID | behaviour | expected | source | ambient |\n| MTLS-001 | t | e | 001 |  |\n",
			"line 4: MTLS-001: ambient cell: empty"},
		{"no ambient column", "## mTLS\n\n| ID | behaviour | expected | source |\n| MTLS-001 | t | e | 001 |\n",
			"line 3: header ID | behaviour | expected | source lacks the ambient column"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant an error containing %q", tc.name, err, tc.want)
		}
	}
	// A valid row with every column.
	bs, err := Parse([]byte(head + "| MTLS-001 | t | s | e | 001 | slow, dataplane | Allowed, RBACDenied |" + amb + "\n"))
	if err != nil || len(bs) != 1 || strings.Join(bs[0].Labels, ",") != "slow,dataplane" || len(bs[0].Expectations) != 2 ||
		bs[0].Ambient != (Ambient{Verdict: AmbientSame, Expected: "200", Source: "B:1"}) {
		t.Errorf("valid row: %+v, %v", bs, err)
	}
	// With an ambient column, the cell is read into Ambient.
	bs, err = Parse([]byte("## Security posture\n\n| ID | check | pass when | source | labels | ambient |\n|---|---|---|---|---|---|\n" +
		"| POSTURE-006 | c | p | 003 | disruptive | left out: no injected pods |\n"))
	if err != nil || len(bs) != 1 || !bs[0].Ambient.LeftOut() || bs[0].Ambient.Reason != "no injected pods" {
		t.Errorf("row with an ambient cell: %+v, %v", bs, err)
	}
}
