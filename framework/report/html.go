package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed matrix.html.tmpl
var matrixTemplate string

var matrixPage = template.Must(template.New("matrix").Parse(matrixTemplate))

// The colours of the cells, also asserted by the browser test through computed styles.
const (
	ColorPass       = "rgb(26, 127, 55)"   // green: pass with the documented outcome
	ColorEquivalent = "rgb(227, 179, 65)"  // amber: pass with an equivalent outcome
	ColorFail       = "rgb(207, 34, 46)"   // red: fail, or a deviation
	ColorSkip       = "rgb(175, 184, 193)" // grey: skipped
	ColorMissing    = "rgb(246, 248, 250)" // near white: the run does not have the behaviour
)

type htmlGroup struct {
	Istio string
	Span  int
}

type htmlCell struct {
	Col                 int
	Status, Text, Hover string
	Key                 string
	// Duration is shown beside the text when durations are on (CSS, not text: the cell's
	// text stays its result word).
	Duration string
}

type htmlRow struct {
	ID, Title, Area string
	Notable         bool // fails, deviates or is equivalent somewhere
	Cells           []htmlCell
}

type htmlRun struct {
	Column, Run, Date, NodeImage, Cluster, Mode, Sources, SuiteFailures string
}

// cellDetail is what the details panel shows for one cell; the page carries them as JSON.
type cellDetail struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Column   string `json:"column"`
	Status   string `json:"status"`
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	Seen     string `json:"seen,omitempty"`
	Duration string `json:"duration,omitempty"`
	Evidence string `json:"evidence,omitempty"`
}

type htmlPage struct {
	Versions, Summary string
	Areas             []htmlArea
	Groups            []htmlGroup
	Columns           []Column
	Rows              []htmlRow
	Runs              []htmlRun
	Details           map[string]cellDetail
	// ShowDurations ticks the durations box from the start; RunTimes is each column's run
	// time ("—" when not measured), shown when any is (HasRunTimes).
	ShowDurations bool
	HasRunTimes   bool
	RunTimes      []string
}

type htmlArea struct {
	Name  string
	Count int
}

// HTML writes the matrix as one self-contained page (inline CSS and script, no external
// assets): cells coloured by result and classification, the evidence in each cell's tooltip
// and, on click, in a details panel; filters by area and for rows that need a look.
func (m Matrix) HTML(w io.Writer) error {
	p := htmlPage{
		Versions: m.Versions(),
		Summary:  m.Summary.Line(),
		Columns:  m.Columns,
		Details:  map[string]cellDetail{},

		ShowDurations: m.Durations,
		HasRunTimes:   m.HasRunTimes(),
	}
	for _, c := range m.Columns {
		p.RunTimes = append(p.RunTimes, cmpOr(c.RunTime(), "—"))
		if n := len(p.Groups); n > 0 && p.Groups[n-1].Istio == c.Istio() {
			p.Groups[n-1].Span++
		} else {
			p.Groups = append(p.Groups, htmlGroup{Istio: c.Istio(), Span: 1})
		}
		for _, r := range c.Runs {
			p.Runs = append(p.Runs, htmlRun{
				Column: c.Label(), Run: cmpOr(r.ID, "—"), Date: formatDate(r.Date), NodeImage: cmpOr(r.NodeImage, "—"),
				Cluster: cmpOr(r.Cluster, "—"), Mode: runMode(r), Sources: cmpOr(r.Source, "—"),
				SuiteFailures: strings.Join(r.SuiteFailures, "; "),
			})
		}
	}
	for _, a := range m.Areas {
		n := 0
		for _, r := range m.Rows {
			if r.Area == a {
				n++
			}
		}
		p.Areas = append(p.Areas, htmlArea{Name: a, Count: n})
	}
	for _, r := range m.Rows {
		hr := htmlRow{ID: r.ID, Title: r.Title, Area: r.Area}
		for i, c := range r.Cells {
			key := fmt.Sprintf("%s|%d", r.ID, i)
			st := c.Status()
			if st == "fail" || st == "deviation" || st == "equivalent" {
				hr.Notable = true
			}
			hover := r.ID + " on " + m.Columns[i].Label() + ": not run"
			if c.Present {
				hover = r.ID + " on " + m.Columns[i].Label() + ": " + c.State()
				if seen := c.Seen(); seen != "" {
					hover += "\nseen: " + seen
				}
				hover += "\n(click for the evidence)"
				p.Details[key] = cellDetail{
					ID: r.ID, Title: r.Title, Column: m.Columns[i].Label(), Status: st, State: c.State(),
					Reason: c.Reason, Seen: c.Seen(), Duration: fmt.Sprintf("%.3fs", c.DurationSeconds),
					Evidence: cellEvidenceText(c),
				}
			}
			hr.Cells = append(hr.Cells, htmlCell{Col: i, Status: st, Text: c.Text(), Hover: hover, Key: key, Duration: c.Duration()})
		}
		p.Rows = append(p.Rows, hr)
	}
	var buf bytes.Buffer
	if err := matrixPage.Execute(&buf, p); err != nil {
		return err
	}
	return writeAll(w, buf.Bytes())
}

func runMode(r Run) string {
	s := RunMode(r)
	if r.Strict {
		return s + ", strict"
	}
	if r.DryRun {
		s += ", dry run"
	}
	return s + ", default"
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
