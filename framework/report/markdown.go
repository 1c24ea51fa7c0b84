package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// markdownIcon is a cell in Markdown, where colour is not available: a symbol and a word.
var markdownIcon = map[string]string{
	"pass":       "✅",
	"equivalent": "🟨 ≈",
	"deviation":  "🟥 dev",
	"fail":       "❌ FAIL",
	"skip":       "⬜ skip",
	"missing":    "—",
}

// IstioVersions are the distinct Istio versions of the columns, newest first.
func (m Matrix) IstioVersions() []string {
	return distinct(m.Columns, func(c Column) string { return c.IstioVersion })
}

// KubernetesVersions are the distinct Kubernetes versions of the columns, newest first.
func (m Matrix) KubernetesVersions() []string {
	var vs []string
	for _, c := range m.Columns {
		vs = append(vs, c.KubernetesVersion)
	}
	vs = distinct(vs, func(s string) string { return s })
	sortVersionsDesc(vs)
	return vs
}

func distinct[T any](xs []T, f func(T) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if v := f(x); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func sortVersionsDesc(vs []string) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && compareVersions(vs[j-1], vs[j]) < 0; j-- {
			vs[j-1], vs[j] = vs[j], vs[j-1]
		}
	}
}

// Modes are the distinct data-plane modes of the columns, sidecar first.
func (m Matrix) Modes() []string {
	ms := distinct(m.Columns, func(c Column) string { return cmpOr(c.Mode, ModeSidecar) })
	slices.SortFunc(ms, func(a, b string) int { return cmp.Or(cmp.Compare(modeRank(a), modeRank(b)), strings.Compare(a, b)) })
	return ms
}

// Versions is the header line: "Istio 1.31.1, 1.30.5 × Kubernetes 1.37.0, 1.35.8 × sidecar,
// ambient data plane".
func (m Matrix) Versions() string {
	is, ks := m.IstioVersions(), m.KubernetesVersions()
	if len(is) == 0 {
		is = []string{"unknown"}
	}
	if len(ks) == 0 {
		ks = []string{"unknown"}
	}
	ms := m.Modes()
	if len(ms) == 0 {
		ms = []string{ModeSidecar}
	}
	return "Istio " + strings.Join(is, ", ") + " × Kubernetes " + strings.Join(ks, ", ") + " × " + strings.Join(ms, ", ") + " data plane"
}

// Markdown writes the matrix for a CI job summary ($GITHUB_STEP_SUMMARY): the versions, the
// summary line, the table, a legend, then the evidence of every failure, deviation and
// equivalent outcome in collapsible sections.
func (m Matrix) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## meshconform conformance matrix\n\n%s\n\n**%s**\n\n", m.Versions(), m.Summary.Line())
	b.WriteString("| ID | Behaviour |")
	for _, c := range m.Columns {
		fmt.Fprintf(&b, " %s<br>%s |", mdEscape(c.Istio()), mdEscape(c.Kubernetes()))
	}
	b.WriteString("\n|---|---|")
	for range m.Columns {
		b.WriteString(":---:|")
	}
	b.WriteString("\n")
	for _, r := range m.Rows {
		fmt.Fprintf(&b, "| %s | %s |", r.ID, mdEscape(r.Title))
		for _, c := range r.Cells {
			icon := markdownIcon[c.Status()]
			switch {
			case c.Present && c.Result == NotJudged:
				icon = "⬜ not judged" // the run's baseline failed: the cluster, not the mesh
			case c.Present && c.Result == LeftOut:
				icon = "⬜ left out" // the run could not exercise it (no mesh, no data plane)
			}
			if d := c.Duration(); m.Durations && d != "" {
				icon += " " + d
			}
			fmt.Fprintf(&b, " %s |", icon)
		}
		b.WriteString("\n")
	}
	if m.HasRunTimes() {
		b.WriteString("| | **run time** |")
		for _, c := range m.Columns {
			fmt.Fprintf(&b, " %s |", cmpOr(c.RunTime(), "—"))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n✅ pass (documented outcome) · 🟨 pass with an equivalent outcome · 🟥 deviation · ❌ fail · ⬜ skip · — not run\n")
	if m.Durations {
		b.WriteString("\nBeside each cell: the time its specs took, setup to cleanup.\n")
	}
	if m.HasRunTimes() {
		b.WriteString("\nRun time: each column's run from the start of preflight to the end of cleanup, as the run measured it.\n")
	}

	var notes strings.Builder
	for _, r := range m.Rows {
		for i, c := range r.Cells {
			switch c.Status() {
			case "fail", "deviation", "equivalent":
			default:
				continue
			}
			fmt.Fprintf(&notes, "\n<details><summary>%s %s on %s: %s</summary>\n\n", markdownIcon[c.Status()], r.ID, htmlText(m.Columns[i].Label()), htmlText(c.State()))
			if c.Reason != "" {
				fmt.Fprintf(&notes, "Classification: %s\n\n", htmlText(c.Reason))
			}
			notes.WriteString(fence(cellEvidenceText(c)))
			notes.WriteString("\n</details>\n")
		}
	}
	if notes.Len() > 0 {
		b.WriteString("\n### Evidence of failures, deviations and equivalent outcomes\n")
		b.WriteString(notes.String())
	}
	return writeAll(w, []byte(b.String()))
}

// cellEvidenceText is everything a cell saw, as plain text: evidence, then spec messages.
func cellEvidenceText(c Cell) string {
	var b strings.Builder
	for _, e := range c.Evidence {
		fmt.Fprintf(&b, "%s\n", cmpOr(e.Spec, "evidence"))
		if s := e.Summary(); s != "" {
			fmt.Fprintf(&b, "  seen: %s\n", s)
		}
		if e.Expected != "" {
			fmt.Fprintf(&b, "  expected: %s\n", e.Expected)
		}
		if e.Text != "" && e.Text != e.Summary() {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(strings.TrimSpace(e.Text), "\n", "\n  "))
		}
		for _, k := range sortedKeys(e.Fields) {
			fmt.Fprintf(&b, "  %s: %s\n", k, e.Fields[k])
		}
		if len(e.History) > 0 {
			b.WriteString("  history (oldest first):\n")
			for _, l := range e.History {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	for _, s := range c.Specs {
		fmt.Fprintf(&b, "%s %s (%.3fs)\n", s.Result, s.Name, s.DurationSeconds)
		if s.Timings != nil {
			if p := s.Timings.parts(); len(p) > 0 {
				fmt.Fprintf(&b, "  time: %s\n", strings.Join(p, ", "))
			}
		}
		if s.Message != "" {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(strings.TrimSpace(s.Message), "\n", "\n  "))
		}
	}
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fence puts text in a code block whose fence is longer than any backtick run inside.
func fence(text string) string {
	f := "```"
	for strings.Contains(text, f) {
		f += "`"
	}
	return f + "text\n" + strings.TrimRight(text, "\n") + "\n" + f + "\n"
}

// mdEscape keeps a table cell one cell: pipes and newlines would break the row.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// htmlText escapes text used inside the HTML tags GitHub's Markdown allows (<summary>).
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
