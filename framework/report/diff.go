package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// ChangeKind sorts a behaviour's change between two runs. Only Regression gates.
type ChangeKind string

const (
	Regression  ChangeKind = "regression"  // got worse, or is missing from the candidate
	Improvement ChangeKind = "improvement" // got better
	Added       ChangeKind = "new"         // only in the candidate
	Unchanged   ChangeKind = "unchanged"
)

// Change is one behaviour compared between a base and a candidate run.
type Change struct {
	ID    string     `json:"id"`
	Title string     `json:"title,omitempty"`
	Kind  ChangeKind `json:"kind"`
	// Base and Candidate are "pass/documented"-style states; empty when absent.
	Base      string `json:"base,omitempty"`
	Candidate string `json:"candidate,omitempty"`
	// Why lists each step that made the change what it is: "pass → fail", "documented → deviation".
	Why []string `json:"why,omitempty"`
	// Seen is the candidate's evidence on one line (the base's when the candidate lacks it).
	Seen string `json:"seen,omitempty"`
}

// DiffResult is every behaviour of two runs, compared.
type DiffResult struct {
	Base      Run      `json:"base"`
	Candidate Run      `json:"candidate"`
	Changes   []Change `json:"changes"`
}

// Diff compares a candidate run with a base run, behaviour by behaviour. Worse is: pass → fail,
// pass → skip, skip → fail; documented → equivalent or deviation, equivalent → deviation (only
// when both runs classified the behaviour); a behaviour of the base missing from the
// candidate. A change that is worse in one respect is a regression whatever else improved.
func Diff(base, candidate Report) DiffResult {
	d := DiffResult{Base: base.Run, Candidate: candidate.Run}
	var ids []string
	for _, b := range base.Behaviors {
		ids = append(ids, b.ID)
	}
	for _, b := range candidate.Behaviors {
		if !slices.Contains(ids, b.ID) {
			ids = append(ids, b.ID)
		}
	}
	slices.SortFunc(ids, order)
	for _, id := range ids {
		b, inBase := base.Behavior(id)
		c, inCand := candidate.Behavior(id)
		ch := Change{ID: id, Title: cmpOr(c.Title, b.Title)}
		switch {
		case !inCand:
			ch.Kind, ch.Base, ch.Seen = Regression, b.State(), b.Seen()
			ch.Why = []string{"missing from the candidate"}
		case !inBase:
			ch.Kind, ch.Candidate, ch.Seen = Added, c.State(), c.Seen()
			ch.Why = []string{"new in the candidate"}
		default:
			ch.Base, ch.Candidate, ch.Seen = b.State(), c.State(), cmpOr(c.Seen(), b.Seen())
			ch.Kind, ch.Why = compare(b, c)
		}
		d.Changes = append(d.Changes, ch)
	}
	return d
}

func compare(b, c Behavior) (ChangeKind, []string) {
	var worse, better []string
	if c.Result == NotJudged && b.Result != NotJudged {
		// The candidate's cluster failed its baseline: nothing was proven, whatever the base
		// said, so the gate cannot pass on it.
		return Regression, []string{fmt.Sprintf("%s → not-judged (the candidate's cluster baseline failed)", b.Result)}
	}
	switch rb, rc := b.Result.rank(), c.Result.rank(); {
	case rc < rb:
		worse = append(worse, fmt.Sprintf("%s → %s", b.Result, c.Result))
	case rc > rb:
		better = append(better, fmt.Sprintf("%s → %s", b.Result, c.Result))
	}
	// A classification is compared only where both runs made one: a JUnit file written without
	// the entries proves nothing either way.
	if b.Classification != "" && c.Classification != "" {
		switch sb, sc := b.Classification.severity(), c.Classification.severity(); {
		case sc > sb:
			worse = append(worse, fmt.Sprintf("%s → %s", b.Classification, c.Classification))
		case sc < sb:
			better = append(better, fmt.Sprintf("%s → %s", b.Classification, c.Classification))
		}
	}
	switch {
	case len(worse) > 0:
		return Regression, append(worse, better...)
	case len(better) > 0:
		return Improvement, better
	default:
		return Unchanged, nil
	}
}

// Regressions are the changes that gate.
func (d DiffResult) Regressions() []Change { return d.of(Regression) }

func (d DiffResult) of(k ChangeKind) []Change {
	var out []Change
	for _, c := range d.Changes {
		if c.Kind == k {
			out = append(out, c)
		}
	}
	return out
}

// Verdict is the last line of a diff: the counts and whether the gate passes.
func (d DiffResult) Verdict() string {
	n := len(d.Regressions())
	v := "PASS: no behaviour got worse"
	if n > 0 {
		v = fmt.Sprintf("FAIL: %d %s got worse", n, plural(n, "behaviour", "behaviours"))
	}
	return fmt.Sprintf("%s (%d regressions, %d improvements, %d new, %d unchanged)", v,
		n, len(d.of(Improvement)), len(d.of(Added)), len(d.of(Unchanged)))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

var sections = []struct {
	kind  ChangeKind
	title string
}{
	{Regression, "Regressions"},
	{Improvement, "Improvements"},
	{Added, "New in the candidate"},
	{Unchanged, "Unchanged"},
}

// Text writes the diff for a terminal or a CI log.
func (d DiffResult) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "base:      %s (%s)\n", cmpOr(d.Base.Source, "-"), d.Base.Describe())
	fmt.Fprintf(&b, "candidate: %s (%s)\n", cmpOr(d.Candidate.Source, "-"), d.Candidate.Describe())
	for _, s := range sections {
		cs := d.of(s.kind)
		fmt.Fprintf(&b, "\n%s (%d)\n", s.title, len(cs))
		for _, c := range cs {
			fmt.Fprintf(&b, "  %-12s %s\n", c.ID, transition(c))
			if s.kind == Unchanged {
				continue
			}
			if c.Title != "" {
				fmt.Fprintf(&b, "  %-12s %s\n", "", c.Title)
			}
			if c.Seen != "" {
				fmt.Fprintf(&b, "  %-12s seen: %s\n", "", c.Seen)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", d.Verdict())
	return writeAll(w, []byte(b.String()))
}

// Markdown writes the diff for a CI job summary.
func (d DiffResult) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## meshconform report diff\n\n- base: `%s` (%s)\n- candidate: `%s` (%s)\n\n**%s**\n",
		cmpOr(d.Base.Source, "-"), d.Base.Describe(), cmpOr(d.Candidate.Source, "-"), d.Candidate.Describe(), d.Verdict())
	for _, s := range sections {
		cs := d.of(s.kind)
		if len(cs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s (%d)\n\n| ID | Behaviour | change | seen |\n|---|---|---|---|\n", s.title, len(cs))
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.ID, mdEscape(c.Title), mdEscape(transition(c)), mdEscape(htmlText(c.Seen)))
		}
	}
	return writeAll(w, []byte(b.String()))
}

// transition is "pass/documented → fail/deviation (pass → fail, documented → deviation)".
func transition(c Change) string {
	s := cmpOr(c.Base, "(absent)") + " → " + cmpOr(c.Candidate, "(absent)")
	if c.Kind == Unchanged {
		if strings.HasPrefix(c.Candidate, string(Fail)) {
			return c.Candidate + " (fails in both)"
		}
		return c.Candidate
	}
	if len(c.Why) > 0 {
		s += " (" + strings.Join(c.Why, ", ") + ")"
	}
	return s
}
