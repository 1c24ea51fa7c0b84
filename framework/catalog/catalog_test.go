package catalog

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// behaviorsFile is where CI and the workspace keep the catalog: ../shared beside the repo root.
// MESHCONFORM_BEHAVIORS overrides it (a checkout elsewhere).
var behaviorsFile = func() string {
	if p := os.Getenv("MESHCONFORM_BEHAVIORS"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "..", "shared", "BEHAVIORS.md")
}()

var rowID = regexp.MustCompile(`^\|\s*([A-Z]+-\d{3})\s*\|`)

type fileRow struct {
	line                               int
	id, title, setup, expected, source string
	area                               Area
	section                            string
	hasSetup                           bool
}

// parseBehaviors reads the table rows of BEHAVIORS.md: five cells (ID, behaviour, setup,
// expected, source) or, for posture checks, three (ID, check, pass when).
func parseBehaviors(t *testing.T, path string, needArea bool) []fileRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var rows []fileRow
	var section string
	var area Area
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section, area = h, ""
			for _, s := range sectionAreas {
				if strings.HasPrefix(h, s.prefix) {
					area = s.area
				}
			}
			continue
		}
		if !rowID.MatchString(line) {
			continue
		}
		if area == "" && needArea {
			t.Fatalf("%s:%d: row in section %q, which maps to no area: add the section to sectionAreas and an Area constant", path, n, section)
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		r := fileRow{line: n, id: cells[0], area: area, section: section}
		switch len(cells) {
		case 5:
			r.title, r.setup, r.expected, r.source, r.hasSetup = cells[1], cells[2], cells[3], cells[4], true
		case 3:
			r.title, r.expected = cells[1], cells[2]
		default:
			t.Fatalf("%s:%d: %s has %d cells, want 5 (ID, behaviour, setup, expected, source) or 3 (ID, check, pass when)", path, n, cells[0], len(cells))
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return rows
}

// docsRow prints the row as docs/behaviors.md should hold it, so that the fix is a paste (the
// labels and outcomes columns are the catalog's own: fill them in).
func (r fileRow) docsRow() string {
	if !r.hasSetup {
		return fmt.Sprintf("| %s | %s | %s | 003 |  |", r.id, r.title, r.expected)
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s |  |  |", r.id, r.title, r.setup, r.expected, r.source)
}

// Every row of the workspace's BEHAVIORS.md is in the repository's catalog, in its area, with
// the same cells; the catalog may hold more rows (and adds labels and outcomes).
func TestCatalogHoldsBehaviorsFile(t *testing.T) {
	if _, err := os.Stat(behaviorsFile); err != nil {
		t.Skipf("BEHAVIORS.md not found at %s (the workspace keeps it in ../shared beside the repo root): %v", behaviorsFile, err)
	}
	rows := parseBehaviors(t, behaviorsFile, true)
	if len(rows) == 0 {
		t.Fatalf("%s: no behaviour rows found (rows look like `| MTLS-001 | ... |`)", behaviorsFile)
	}
	for _, r := range rows {
		b, ok := Lookup(r.id)
		if !ok {
			t.Errorf("%s:%d: %s is not in docs/behaviors.md; add it to the section %q:\n%s", behaviorsFile, r.line, r.id, r.section, r.docsRow())
			continue
		}
		var diffs []string
		check := func(field, got, want string) {
			if got != want {
				diffs = append(diffs, fmt.Sprintf("%s:\n\t  catalog: %s\n\t  file:    %s", field, got, want))
			}
		}
		check("Area", string(b.Area), string(r.area))
		check("Title", b.Title, r.title)
		check("Setup", b.Setup, r.setup)
		check("Expected", b.Expected, r.expected)
		if r.hasSetup {
			check("Source", b.Source, r.source)
		}
		if len(diffs) > 0 {
			t.Errorf("%s:%d: %s differs from docs/behaviors.md:\n\t%s\nits row there should read (labels and outcomes kept):\n%s",
				behaviorsFile, r.line, r.id, strings.Join(diffs, "\n\t"), r.docsRow())
		}
	}
}

// Every row of the workspace's BEHAVIORS-next.md (one table, no areas) that the catalog holds
// has the same cells there; a row not added yet is named, not failed.
func TestCatalogHoldsNextRowsVerbatim(t *testing.T) {
	next := filepath.Join(filepath.Dir(behaviorsFile), "BEHAVIORS-next.md")
	if _, err := os.Stat(next); err != nil {
		t.Skipf("BEHAVIORS-next.md not found at %s: %v", next, err)
	}
	var missing []string
	for _, r := range parseBehaviors(t, next, false) {
		b, ok := Lookup(r.id)
		if !ok {
			missing = append(missing, r.id)
			continue
		}
		for _, c := range []struct{ field, got, want string }{
			{"Title", b.Title, r.title}, {"Setup", b.Setup, r.setup}, {"Expected", b.Expected, r.expected}, {"Source", b.Source, r.source},
		} {
			if c.got != c.want {
				t.Errorf("%s:%d: %s's %s differs from docs/behaviors.md:\n\t  catalog: %s\n\t  file:    %s", next, r.line, r.id, c.field, c.got, c.want)
			}
		}
	}
	if len(missing) > 0 {
		t.Logf("not in the catalog yet: %v", missing)
	}
}

func TestCatalogShape(t *testing.T) {
	seen := map[string]bool{}
	known := []string{LabelSlow, LabelDisruptive, LabelDataPlane}
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

	// All returns copies: a caller appending labels must not change the catalog.
	all := All()
	all[0].Labels = append(all[0].Labels, "mutated")
	if b := MustLookup(all[0].ID); b.HasLabel("mutated") {
		t.Error("All() leaked the catalog's Labels slice")
	}
}

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
// with the catalog's title, so a new behaviour cannot be left out of what users read first.
func TestReadmeListsEveryBehaviour(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) == 4 && rowID.MatchString("| "+strings.TrimSpace(cells[1])+" |") {
			rows[strings.TrimSpace(cells[1])] = strings.TrimSpace(cells[2])
		}
	}
	for _, b := range All() {
		title, ok := rows[b.ID]
		switch {
		case !ok:
			t.Errorf("README.md's behaviour table has no row for %s (%s)", b.ID, b.Title)
		case title != b.Title:
			t.Errorf("README.md lists %s as %q; the catalog says %q", b.ID, title, b.Title)
		}
	}
}
