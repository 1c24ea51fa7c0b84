package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Column is one cell of the run matrix: an Istio version (and revision) on a Kubernetes
// version in a data-plane mode, strict or default. Runs that share all of these are combined
// into one column; runs of two modes never are.
type Column struct {
	Key               string `json:"key"`
	IstioVersion      string `json:"istioVersion,omitempty"`
	IstioRevision     string `json:"istioRevision,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	// Mode is the data-plane mode of the column's runs (RunMode: sidecar for reports from
	// before the mode was recorded).
	Mode string `json:"mode"`
	// IngressAPI is the column's runs' ingress API when not IngressIstio (RunIngress).
	IngressAPI string   `json:"ingressAPI,omitempty"`
	Strict     bool     `json:"strict,omitempty"`
	Runs       []Run    `json:"runs"`
	Sources    []string `json:"sources"`
	// TotalSeconds adds up the totals of the column's runs that measured one (Timings); Timed
	// counts them. Absent when none did (a report from before timings, or a run not ended by
	// make e2e).
	TotalSeconds *float64 `json:"totalSeconds,omitempty"`
	Timed        int      `json:"timedRuns,omitempty"`
}

// RunTime is the column's run time for people ("" when none was measured): "10m40s", with how
// many runs it adds up when not exactly one, or not all of the column's.
func (c Column) RunTime() string {
	if c.TotalSeconds == nil {
		return ""
	}
	s := human(*c.TotalSeconds)
	switch {
	case c.Timed < len(c.Runs):
		s += fmt.Sprintf(" (%d of %d runs)", c.Timed, len(c.Runs))
	case c.Timed > 1:
		s += fmt.Sprintf(" (%d runs)", c.Timed)
	}
	return s
}

// Istio is the column's Istio heading: "1.31.1", "1.31.1 rev canary", or the file it came from
// when the run recorded no version.
func (c Column) Istio() string {
	if c.IstioVersion == "" {
		return "unknown (" + strings.Join(c.Sources, ", ") + ")"
	}
	if c.IstioRevision != "" {
		return c.IstioVersion + " rev " + c.IstioRevision
	}
	return c.IstioVersion
}

// Kubernetes is the column's Kubernetes and mode heading: "k8s 1.37.0 sidecar", with " strict"
// for strict runs.
func (c Column) Kubernetes() string {
	s := "k8s " + cmp.Or(c.KubernetesVersion, "?") + " " + cmp.Or(c.Mode, ModeSidecar)
	if c.IngressAPI != "" {
		s += " " + c.IngressAPI + " ingress"
	}
	if c.Strict {
		s += " strict"
	}
	return s
}

// Label names the column on one line.
func (c Column) Label() string { return c.Istio() + " / " + c.Kubernetes() }

// Cell is one behaviour in one column.
type Cell struct {
	// Present is false when no run of the column has the behaviour.
	Present bool `json:"present"`
	Behavior
}

// Status is the cell's colour class: pass (documented, or nothing to classify), equivalent,
// deviation (a pass whose outcome is a deviation: only a lenient run lets that pass), fail,
// skip or missing.
func (c Cell) Status() string {
	switch {
	case !c.Present:
		return "missing"
	case c.Result == Fail:
		return "fail"
	case c.Result == Skip, c.Result == NotJudged, c.Result == LeftOut:
		return "skip" // not judged, left out: nothing was proven, as for a skip; Text says which

	case c.Classification == Deviation:
		return "deviation"
	case c.Classification == Equivalent:
		return "equivalent"
	default:
		return "pass"
	}
}

// Text is the short word shown in the cell.
func (c Cell) Text() string {
	switch c.Status() {
	case "missing":
		return "—"
	case "fail":
		return "FAIL"
	case "equivalent":
		return "pass ≈"
	case "skip":
		switch c.Result {
		case NotJudged:
			return "not judged"
		case LeftOut:
			return "left out"
		}
		return "skip"
	default:
		return c.Status()
	}
}

// Row is one behaviour across the columns.
type Row struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	Area  string `json:"area"`
	Cells []Cell `json:"cells"`
}

// Broken reports whether the row fails or deviates anywhere.
func (r Row) Broken() bool {
	return slices.ContainsFunc(r.Cells, func(c Cell) bool { s := c.Status(); return s == "fail" || s == "deviation" })
}

// MatrixSummary counts cells, and names the behaviours that broke and where.
type MatrixSummary struct {
	Behaviors  int      `json:"behaviors"`
	Runs       int      `json:"runs"`
	Pass       int      `json:"pass"`
	Equivalent int      `json:"equivalent"`
	Deviation  int      `json:"deviation"`
	Fail       int      `json:"fail"`
	Skip       int      `json:"skip"`
	Missing    int      `json:"missing"`
	Broken     []string `json:"broken"` // "MTLS-002 on 1.30.5 / k8s 1.35.8"
}

// Line is the summary as one sentence.
func (s MatrixSummary) Line() string {
	line := fmt.Sprintf("%d behaviours × %d runs: %d pass, %d pass with an equivalent outcome, %d deviation, %d fail, %d skip, %d not run.",
		s.Behaviors, s.Runs, s.Pass, s.Equivalent, s.Deviation, s.Fail, s.Skip, s.Missing)
	if len(s.Broken) == 0 {
		return line + " Nothing broke."
	}
	return line + " Broken: " + strings.Join(s.Broken, "; ") + "."
}

// Matrix is many runs side by side: behaviours down, Istio × Kubernetes versions across.
type Matrix struct {
	Columns []Column      `json:"columns"`
	Areas   []string      `json:"areas"`
	Rows    []Row         `json:"rows"`
	Summary MatrixSummary `json:"summary"`
	// Durations has the renderers show each cell's time beside it (Markdown; the HTML page
	// carries them always and shows them from the start): `report merge -durations`.
	Durations bool `json:"-"`
}

// HasRunTimes reports whether any column measured its run time (the matrix then ends with a
// run time row).
func (m Matrix) HasRunTimes() bool {
	return slices.ContainsFunc(m.Columns, func(c Column) bool { return c.TotalSeconds != nil })
}

// Duration is the cell's time for people: its behaviour's specs' durations added up (Ginkgo's
// run time of each, setup to cleanup); "" when it did not run (missing, skipped, left out, not
// judged: the milliseconds of a skip say nothing) or took no measurable time.
func (c Cell) Duration() string {
	if !c.Present || (c.Result != Pass && c.Result != Fail) || c.DurationSeconds <= 0 {
		return ""
	}
	return human(c.DurationSeconds)
}

// Merge lays runs out as a matrix. Columns are ordered newest Istio first, then newest
// Kubernetes, default before strict; rows in catalog order. The result depends only on the
// reports, never on the order they are given in.
func Merge(reports ...Report) Matrix {
	var m Matrix
	cols := map[string]int{}
	for _, r := range reports {
		key := columnKey(r.Run)
		if _, ok := cols[key]; !ok {
			cols[key] = len(m.Columns)
			m.Columns = append(m.Columns, Column{Key: key, IstioVersion: r.Run.IstioVersion, IstioRevision: r.Run.IstioRevision,
				KubernetesVersion: r.Run.KubernetesVersion, Mode: RunMode(r.Run), Strict: r.Run.Strict})
			if RunIngress(r.Run) != IngressIstio {
				m.Columns[len(m.Columns)-1].IngressAPI = RunIngress(r.Run)
			}
		}
		c := &m.Columns[cols[key]]
		c.Runs = append(c.Runs, r.Run)
		c.Sources = append(c.Sources, r.Run.Source)
		if r.Timings != nil && r.Timings.TotalSeconds != nil {
			c.TotalSeconds = new(roundSeconds(*r.Timings.TotalSeconds + deref(c.TotalSeconds)))
			c.Timed++
		}
	}
	slices.SortFunc(m.Columns, compareColumns)
	for i := range m.Columns {
		c := &m.Columns[i]
		cols[c.Key] = i
		slices.SortFunc(c.Runs, func(a, b Run) int { return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.ID, b.ID)) })
		slices.Sort(c.Sources)
	}

	rows := map[string]*Row{}
	var ids []string
	// Reports are folded in a fixed order so that combined cells do not depend on argument order.
	sorted := slices.Clone(reports)
	slices.SortStableFunc(sorted, func(a, b Report) int { return cmp.Compare(a.Run.Source, b.Run.Source) })
	for _, r := range sorted {
		ci := cols[columnKey(r.Run)]
		for _, b := range r.Behaviors {
			row, ok := rows[b.ID]
			if !ok {
				row = &Row{ID: b.ID, Title: b.Title, Area: b.Area, Cells: make([]Cell, len(m.Columns))}
				rows[b.ID] = row
				ids = append(ids, b.ID)
			}
			cell := &row.Cells[ci]
			if !cell.Present {
				cell.Present, cell.Behavior = true, b
				continue
			}
			cell.Behavior = mergeBehaviors(cell.Behavior, b)
		}
	}
	slices.SortFunc(ids, order)
	for _, id := range ids {
		m.Rows = append(m.Rows, *rows[id])
		if a := rows[id].Area; !slices.Contains(m.Areas, a) {
			m.Areas = append(m.Areas, a)
		}
	}
	m.summarize(len(reports))
	return m
}

func (m *Matrix) summarize(runs int) {
	s := MatrixSummary{Behaviors: len(m.Rows), Runs: runs, Broken: []string{}}
	for _, r := range m.Rows {
		var where []string
		for i, c := range r.Cells {
			switch c.Status() {
			case "pass":
				s.Pass++
			case "equivalent":
				s.Equivalent++
			case "deviation":
				s.Deviation++
				where = append(where, m.Columns[i].Label())
			case "fail":
				s.Fail++
				where = append(where, m.Columns[i].Label())
			case "skip":
				s.Skip++
			default:
				s.Missing++
			}
		}
		if len(where) > 0 {
			s.Broken = append(s.Broken, r.ID+" on "+strings.Join(where, ", "))
		}
	}
	m.Summary = s
}

// mergeBehaviors combines one behaviour from two runs of the same column: any failure wins,
// the classification is the worst.
func mergeBehaviors(a, b Behavior) Behavior {
	out := a
	out.Specs = append(slices.Clone(a.Specs), b.Specs...)
	out.Evidence = append(slices.Clone(a.Evidence), b.Evidence...)
	out.DurationSeconds = roundSeconds(a.DurationSeconds + b.DurationSeconds)
	out.Result = combineResults(a.Result, b.Result)
	if Worst(a.Classification, b.Classification) != a.Classification {
		out.Classification, out.Reason = b.Classification, b.Reason
	}
	return out
}

func columnKey(r Run) string {
	if r.IstioVersion == "" {
		return "source:" + r.Source
	}
	k := r.IstioVersion + "@" + r.IstioRevision + "/" + r.KubernetesVersion + "/" + RunMode(r)
	if RunIngress(r) != IngressIstio {
		// Its own column: INGRESS-001/002 of two ingress APIs are never one cell.
		k += "/ingress=" + RunIngress(r)
	}
	if r.Strict {
		k += "/strict"
	}
	return k
}

func compareColumns(a, b Column) int {
	// Runs without versions go last.
	if (a.IstioVersion == "") != (b.IstioVersion == "") {
		if a.IstioVersion == "" {
			return 1
		}
		return -1
	}
	if c := compareVersions(b.IstioVersion, a.IstioVersion); c != 0 {
		return c
	}
	if c := strings.Compare(a.IstioRevision, b.IstioRevision); c != 0 {
		return c
	}
	if c := compareVersions(b.KubernetesVersion, a.KubernetesVersion); c != 0 {
		return c
	}
	// Sidecar, the default mode, before ambient; any other mode after both, by name.
	if c := cmp.Or(cmp.Compare(modeRank(a.Mode), modeRank(b.Mode)), strings.Compare(a.Mode, b.Mode)); c != 0 {
		return c
	}
	if a.Strict != b.Strict {
		if a.Strict {
			return 1
		}
		return -1
	}
	return strings.Compare(a.Key, b.Key)
}

func modeRank(m string) int {
	switch m {
	case ModeSidecar, "":
		return 0
	case ModeAmbient:
		return 1
	case ModeProxyless:
		return 2
	}
	return 3
}

// compareVersions compares dotted versions numerically ("1.9.0" < "1.10.0"); parts that are
// not numbers compare as text.
func compareVersions(a, b string) int {
	pa := strings.FieldsFunc(strings.TrimPrefix(a, "v"), func(r rune) bool { return r == '.' || r == '-' })
	pb := strings.FieldsFunc(strings.TrimPrefix(b, "v"), func(r rune) bool { return r == '.' || r == '-' })
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(pa), len(pb))
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
