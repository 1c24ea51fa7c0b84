package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// sectionAreas maps the catalog's "## " headings (by prefix) to areas; a section with rows
// that maps to none is an error, so a new area is added here and as an Area constant.
var sectionAreas = []struct {
	prefix string
	area   Area
}{
	{"mTLS", AreaMTLS},
	{"Identity", AreaIdentity},
	{"Authorization", AreaAuthz},
	{"Request authentication", AreaJWT},
	{"Egress", AreaEgress},
	{"Health probes", AreaProbes},
	{"Control plane", AreaControlPlane},
	{"Ingress", AreaIngress},
	{"Security posture", AreaPosture},
}

// knownLabels are the labels a row may carry.
var knownLabels = []string{LabelSlow, LabelDisruptive, LabelDataPlane, LabelAgent}

var rowRE = regexp.MustCompile(`^\|\s*[A-Z]+-[0-9]{3}\s*\|`)

// columns of a table, by the header's cell text.
const (
	colID       = "ID"
	colTitle    = "behaviour"
	colCheck    = "check"
	colSetup    = "setup"
	colExpected = "expected"
	colPassWhen = "pass when"
	colSource   = "source"
	colLabels   = "labels"
	colOutcomes = "outcomes"
	colAmbient  = "ambient"
	// The proxyless section's columns (| ID | proxyless | outcomes | source |).
	colProxyless = "proxyless"
)

// proxylessSection is the "## " heading (by prefix) of the proxyless data plane's table: its
// rows add each behaviour's proxyless verdict (proxyless.go), they are no behaviours of their own.
const proxylessSection = "Proxyless"

// Parse reads a catalog in docs/behaviors.md's form: "## " headings name the area (by
// prefix), each table's header row (`| ID | behaviour | setup | expected | source | labels |
// outcomes | ambient |`, or for checks `| ID | check | pass when | source | labels | ambient
// |`) names its columns, and each row `| MTLS-001 | … |` is one behaviour. Cells are kept
// verbatim (Markdown included); the `ambient` cell, which every table must have, is read by
// ParseAmbient. Every problem is an error naming the line.
func Parse(data []byte) ([]Behavior, error) {
	var (
		out     []Behavior
		errs    []string
		area    Area
		section string
		header  []string
	)
	bad := func(n int, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: %s", n, fmt.Sprintf(format, args...)))
	}
	seen := map[string]int{}
	proxyless := map[string]Proxyless{}
	proxylessLine := map[string]int{}
	inProxyless := false
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section, area, header = h, "", nil
			inProxyless = strings.HasPrefix(h, proxylessSection)
			for _, s := range sectionAreas {
				if strings.HasPrefix(h, s.prefix) {
					area = s.area
				}
			}
			continue
		}
		cells := splitRow(line)
		if inProxyless {
			if len(cells) > 0 && cells[0] == colID {
				header = cells
				if !slices.Equal(header, proxylessHeader) {
					bad(n, "the proxyless table's header is | %s |, want | %s |", strings.Join(header, " | "), strings.Join(proxylessHeader, " | "))
					header = nil
				}
				continue
			}
			if !rowRE.MatchString(line) {
				continue
			}
			if header == nil || len(cells) != len(proxylessHeader) {
				bad(n, "%s: a proxyless row needs the table's header and %d cells", cells[0], len(proxylessHeader))
				continue
			}
			px, err := ParseProxyless(cells[1], cells[2], cells[3])
			if err != nil {
				bad(n, "%s: proxyless row: %v", cells[0], err)
			}
			if prev, dup := proxylessLine[cells[0]]; dup {
				bad(n, "%s's proxyless row is already on line %d", cells[0], prev)
			}
			proxyless[cells[0]], proxylessLine[cells[0]] = px, n
			continue
		}
		if len(cells) > 0 && cells[0] == colID {
			header = cells
			if err := checkHeader(header); err != nil {
				bad(n, "%v", err)
				header = nil
			}
			continue
		}
		if !rowRE.MatchString(line) {
			continue
		}
		switch {
		case area == "":
			bad(n, "%s is in section %q, which maps to no area (sections start with %s)", cells[0], section, sectionPrefixes())
			continue
		case header == nil:
			bad(n, "%s comes before its table's header row (| ID | … |)", cells[0])
			continue
		case len(cells) != len(header):
			bad(n, "%s has %d cells, its table's header %d (%s)", cells[0], len(cells), len(header), strings.Join(header, ", "))
			continue
		}
		b := Behavior{Area: area}
		for j, col := range header {
			v := cells[j]
			switch col {
			case colID:
				b.ID = v
			case colTitle, colCheck:
				b.Title = v
			case colSetup:
				b.Setup = v
			case colExpected, colPassWhen:
				b.Expected = v
			case colSource:
				b.Source = v
			case colLabels:
				for _, l := range list(v) {
					if !slices.Contains(knownLabels, l) {
						bad(n, "%s: unknown label %q (known: %s)", b.ID, l, strings.Join(knownLabels, ", "))
					}
					b.Labels = append(b.Labels, l)
				}
			case colOutcomes:
				for _, name := range list(v) {
					e, ok := LookupExpectation(name)
					if !ok {
						bad(n, "%s: unknown outcome %q (known: %s)", b.ID, name, expectationNames())
					}
					b.Expectations = append(b.Expectations, e)
				}
			case colAmbient:
				a, err := ParseAmbient(v)
				if err != nil {
					bad(n, "%s: ambient cell: %v", b.ID, err)
				}
				b.Ambient = a
			}
		}
		if b.Title == "" || b.Expected == "" || b.Source == "" {
			bad(n, "%s: empty title, expected or source", b.ID)
		}
		if prev, dup := seen[b.ID]; dup {
			bad(n, "%s is already on line %d", b.ID, prev)
		}
		seen[b.ID] = n
		out = append(out, b)
	}
	for id, n := range proxylessLine {
		if _, ok := seen[id]; !ok {
			bad(n, "%s has a proxyless row and no behaviour row", id)
		}
	}
	for i := range out {
		out[i].Proxyless = proxyless[out[i].ID]
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, "no behaviour rows (rows look like | MTLS-001 | … |)")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("catalog: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// splitRow returns a table row's cells, trimmed; nil for a line that is not a row.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") || len(line) < 2 {
		return nil
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

func checkHeader(h []string) error {
	known := []string{colID, colTitle, colCheck, colSetup, colExpected, colPassWhen, colSource, colLabels, colOutcomes, colAmbient}
	for _, c := range h {
		if !slices.Contains(known, c) {
			return fmt.Errorf("unknown column %q (known: %s)", c, strings.Join(known, ", "))
		}
	}
	has := func(cs ...string) bool {
		return slices.ContainsFunc(h, func(c string) bool { return slices.Contains(cs, c) })
	}
	if !has(colTitle, colCheck) || !has(colExpected, colPassWhen) || !has(colSource) {
		return fmt.Errorf("header %s lacks a title (behaviour or check), expected (or pass when) or source column", strings.Join(h, " | "))
	}
	if !has(colAmbient) {
		return fmt.Errorf("header %s lacks the %s column (each behaviour's outcome in ambient mode, or why it has none)", strings.Join(h, " | "), colAmbient)
	}
	return nil
}

// list splits a comma-separated cell; empty and "—" are no items.
func list(cell string) []string {
	var out []string
	for _, s := range strings.Split(cell, ",") {
		if s = strings.TrimSpace(s); s != "" && s != "—" {
			out = append(out, s)
		}
	}
	return out
}

func sectionPrefixes() string {
	var ps []string
	for _, s := range sectionAreas {
		ps = append(ps, fmt.Sprintf("%q", s.prefix))
	}
	return strings.Join(ps, ", ")
}

func expectationNames() string {
	var ns []string
	for _, e := range Expectations() {
		ns = append(ns, e.Name)
	}
	return strings.Join(ns, ", ")
}
