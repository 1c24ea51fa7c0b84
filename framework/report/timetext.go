package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// slowest is how many specs the closing table lists.
const slowest = 5

// Shares divides a run's time into three categories, from what was measured:
//
//   - Waiting: waiting for Kubernetes and Istio, the time inside framework/wait's waiter
//     (polls until kind's nodes, istiod, the workloads and their proxies are ready, probes and
//     checks converge, observation windows pass, namespaces are gone): the phases' WaitSeconds,
//     and the specs' share of the specs phase (below).
//   - Tools: kind, Docker and Helm, the provisioning phases (cluster, images, istio, cleanup)
//     outside the waiter: creating and deleting nodes, pulling and loading images, rendering
//     and applying charts.
//   - Meshconform: meshconform itself, the rest of the run: preflight, compiling and starting
//     the suite, the suites' own work outside the waiter (creating namespaces and objects,
//     exec round trips outside waits, judging, reporting, diagnostics) and whatever no phase
//     measured (e.g. between the suite's report and Ginkgo's exit).
//
// The specs run on several Ginkgo processes at once, so their summed times exceed the specs
// phase's wall time; the specs phase is split between Waiting and Meshconform in the
// proportion of the specs' summed wait time to their summed durations. That split is an
// approximation (Approx), and says so.
type Shares struct {
	// Of is the time divided: the run's total when one was measured (Measured), else the sum
	// of the phases recorded.
	Of                          time.Duration
	Measured                    bool
	Waiting, Tools, Meshconform time.Duration
	// Approx: the specs phase was split by proportion (see above).
	Approx bool
	// Processes that ran the specs.
	Processes int
}

// Shares divides the run's time (see Shares); false when the report has too little to do it:
// no phases, or specs with timings but no specs phase to scale them to.
func (r Report) Shares() (Shares, bool) {
	t := r.Timings
	if t == nil || len(t.Phases) == 0 {
		return Shares{}, false
	}
	var sh Shares
	sh.Processes = t.Processes
	var sum float64
	for _, p := range t.Phases {
		sum += p.DurationSeconds
		if p.Name == PhaseSpecs {
			continue
		}
		wait := 0.0
		if p.WaitSeconds != nil {
			wait = *p.WaitSeconds
		}
		sh.Waiting += dur(wait)
		if slices.Contains(provisioning, p.Name) {
			sh.Tools += dur(max(p.DurationSeconds-wait, 0))
		}
	}
	specs := r.specs()
	var specTotal, specWait float64
	for _, s := range specs {
		specTotal += s.DurationSeconds
		if s.Timings != nil && s.Timings.WaitSeconds != nil {
			specWait += *s.Timings.WaitSeconds
		}
	}
	if p, ok := t.Phase(PhaseSpecs); ok {
		if specTotal > 0 {
			sh.Waiting += dur(p.DurationSeconds * min(specWait/specTotal, 1))
		}
		sh.Approx = true
	} else if specWait > 0 {
		return Shares{}, false
	}
	sh.Of, sh.Measured = dur(sum), false
	if t.TotalSeconds != nil {
		sh.Of, sh.Measured = dur(*t.TotalSeconds), true
	}
	sh.Meshconform = max(sh.Of-sh.Waiting-sh.Tools, 0)
	return sh, true
}

// specs are the report's specs, each once (a spec with two behaviour IDs sits under both).
func (r Report) specs() []SpecResult {
	var out []SpecResult
	seen := map[string]bool{}
	for _, b := range r.Behaviors {
		for _, s := range b.Specs {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// TimeText is the closing table's part on where the time went ("" when nothing was timed, as
// in a report from before timings): the run's total and phases, the specs' parts summed, the
// five slowest specs with theirs, and the run's shares (see Shares).
func (r Report) TimeText() string {
	specs := r.specs()
	timed := slices.ContainsFunc(specs, func(s SpecResult) bool { return s.Timings != nil })
	if r.Timings == nil && !timed {
		return ""
	}
	var sb strings.Builder
	t := r.Timings
	if t == nil {
		t = &Timings{}
	}
	switch {
	case t.TotalSeconds != nil:
		fmt.Fprintf(&sb, "time: %s, from preflight to cleanup\n", human(*t.TotalSeconds))
	default:
		sb.WriteString("time: no total measured (only make e2e, or a suite that brought its run up itself, ends a run and measures it)\n")
	}
	if len(t.Phases) > 0 {
		parts := make([]string, len(t.Phases))
		for i, p := range t.Phases {
			parts[i] = p.Name + " " + human(p.DurationSeconds)
		}
		fmt.Fprintf(&sb, "  phases: %s\n", strings.Join(parts, " · "))
	}
	if timed {
		var total float64
		var sum SpecTimings
		for _, s := range specs {
			total += s.DurationSeconds
			if s.Timings != nil {
				sum = sum.plus(*s.Timings)
			}
		}
		on := ""
		if t.Processes > 1 {
			on = fmt.Sprintf(" on %d processes", t.Processes)
		}
		parts := sum.parts()
		if rest := total - sum.accounted(); rest > 0 {
			parts = append(parts, "their own work "+human(rest))
		}
		fmt.Fprintf(&sb, "  specs: %s summed over %d%s: %s\n", human(total), len(specs), on, strings.Join(parts, ", "))
	}
	byTime := slices.Clone(specs)
	slices.SortStableFunc(byTime, func(a, b SpecResult) int {
		return cmp.Or(cmp.Compare(b.DurationSeconds, a.DurationSeconds), strings.Compare(a.Name, b.Name))
	})
	byTime = slices.DeleteFunc(byTime, func(s SpecResult) bool { return s.DurationSeconds <= 0 })
	if len(byTime) > 0 {
		fmt.Fprintf(&sb, "  slowest specs:\n")
		for _, s := range byTime[:min(slowest, len(byTime))] {
			fmt.Fprintf(&sb, "    %8s  %s", human(s.DurationSeconds), s.Name)
			if s.Timings != nil {
				if p := s.Timings.parts(); len(p) > 0 {
					fmt.Fprintf(&sb, " (%s)", strings.Join(p, ", "))
				}
			}
			sb.WriteString("\n")
		}
	}
	sh, ok := r.Shares()
	switch {
	case !ok && len(t.Phases) > 0:
		sb.WriteString("  shares: not computed (the specs' time was recorded without the specs phase it fell in)\n")
	case ok:
		of := "the run"
		if !sh.Measured {
			of = "the " + human(sh.Of.Seconds()) + " the phases recorded"
		}
		approx, mark := "", "  "
		if sh.Approx {
			mark = "≈ "
			approx = "; ≈: the specs phase is split as its specs' summed times are"
			if sh.Processes > 1 {
				approx += fmt.Sprintf(", which overlap on %d processes", sh.Processes)
			}
		}
		fmt.Fprintf(&sb, "  where %s went (from what was measured%s):\n", of, approx)
		for _, l := range []struct {
			d    time.Duration
			what string
		}{
			{sh.Waiting, "waiting for Kubernetes and Istio: inside the waiter (nodes, istiod, workloads ready; probes converging; namespaces gone)"},
			{sh.Meshconform, "meshconform itself: preflight, compiling and starting the suite, its own work outside the waiter"},
			{sh.Tools, "kind, Docker and Helm: cluster, images, Istio install and cleanup, outside the waiter"},
		} {
			fmt.Fprintf(&sb, "    %s%3d%%  %8s  %s\n", mark, percent(l.d, sh.Of), human(l.d.Seconds()), l.what)
		}
	}
	return sb.String()
}

// plus adds two spec timings part by part; a part absent from both stays absent.
func (t SpecTimings) plus(o SpecTimings) SpecTimings {
	add := func(a, b *float64) *float64 {
		switch {
		case a == nil:
			return b
		case b == nil:
			return a
		}
		return new(roundSeconds(*a + *b))
	}
	return SpecTimings{
		SetupSeconds:       add(t.SetupSeconds, o.SetupSeconds),
		ConvergenceSeconds: add(t.ConvergenceSeconds, o.ConvergenceSeconds),
		MeshWaitSeconds:    add(t.MeshWaitSeconds, o.MeshWaitSeconds),
		TeardownSeconds:    add(t.TeardownSeconds, o.TeardownSeconds),
		DiagnosticsSeconds: add(t.DiagnosticsSeconds, o.DiagnosticsSeconds),
		WaitSeconds:        add(t.WaitSeconds, o.WaitSeconds),
	}
}

// accounted is the time of the parts that do not overlap: setup, convergence, teardown,
// diagnostics (the rest of a spec is its body's own work).
func (t SpecTimings) accounted() float64 {
	var s float64
	for _, p := range []*float64{t.SetupSeconds, t.ConvergenceSeconds, t.TeardownSeconds, t.DiagnosticsSeconds} {
		if p != nil {
			s += *p
		}
	}
	return s
}

// parts are the measured parts, for people: "setup 41s, convergence 6.2s (5.1s waiting for
// the mesh), teardown 12s".
func (t SpecTimings) parts() []string {
	var out []string
	if t.SetupSeconds != nil {
		out = append(out, "setup "+human(*t.SetupSeconds))
	}
	if t.ConvergenceSeconds != nil {
		c := "convergence " + human(*t.ConvergenceSeconds)
		if t.MeshWaitSeconds != nil {
			c += " (" + human(*t.MeshWaitSeconds) + " waiting for the mesh)"
		}
		out = append(out, c)
	}
	if t.TeardownSeconds != nil {
		out = append(out, "teardown "+human(*t.TeardownSeconds))
	}
	if t.DiagnosticsSeconds != nil {
		out = append(out, "diagnostics "+human(*t.DiagnosticsSeconds))
	}
	return out
}

func dur(seconds float64) time.Duration { return time.Duration(seconds * float64(time.Second)) }

// human rounds seconds for people: milliseconds under a second, tenths under a minute, whole
// seconds above.
func human(seconds float64) string {
	d := dur(seconds)
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func percent(part, of time.Duration) int {
	if of <= 0 {
		return 0
	}
	return int(math.Round(100 * float64(part) / float64(of)))
}
