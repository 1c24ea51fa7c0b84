package record

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/report"
	"meshconform/framework/wait"
)

// Part is a part of a spec's time (report.SpecTimings). The body is what is not in another
// part: the policies applied, the probes and checks, the judges.
type Part int

const (
	body Part = iota
	// Setup: namespaces created, sample workloads deployed and waited for.
	Setup
	// Teardown: the spec's cleanup (policies restored, its namespaces' deletion requested; the
	// suite waits for them once, at its end).
	Teardown
	// Diagnostics: the failure dump.
	Diagnostics
	parts
)

// clock is where one spec's time goes. One spec runs at a time in a Ginkgo process, so one
// clock per process is current: Timings starts it before each spec and records it after.
type clock struct {
	mu   sync.Mutex
	part Part
	wall [parts]time.Duration
	ran  [parts]bool
	// waits are the waiter's reports (wait.Meter), by the part the spec was in when each ended.
	waits [parts]wait.Summed
}

var (
	mu      sync.Mutex
	current = &clock{}
)

func currentClock() *clock {
	mu.Lock()
	defer mu.Unlock()
	return current
}

// Waited counts one wait in the part the spec is in.
func (c *clock) Waited(w wait.Waited) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.waits[c.part]
	s.Waits++
	s.Elapsed += w.Elapsed
	s.Unmet += w.Unmet
}

// timings is what the clock measured; a part that did not happen is absent.
func (c *clock) timings() report.SpecTimings {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t report.SpecTimings
	wall := func(p Part) *float64 {
		if !c.ran[p] {
			return nil
		}
		return report.SecondsOf(c.wall[p])
	}
	t.SetupSeconds, t.TeardownSeconds, t.DiagnosticsSeconds = wall(Setup), wall(Teardown), wall(Diagnostics)
	if b := c.waits[body]; b.Waits > 0 {
		t.ConvergenceSeconds, t.MeshWaitSeconds = report.SecondsOf(b.Elapsed), report.SecondsOf(b.Unmet)
	}
	var all wait.Summed
	for _, s := range c.waits {
		all.Waits += s.Waits
		all.Elapsed += s.Elapsed
	}
	if all.Waits > 0 {
		t.WaitSeconds = report.SecondsOf(all.Elapsed)
	}
	return t
}

// Metered returns ctx whose waits (framework/wait) count for the current spec, in the part it
// is in when each ends. The runner meters the spec's context, its group's setup and its
// cleanup's contexts.
func Metered(ctx context.Context) context.Context {
	return wait.WithMeter(ctx, currentClock())
}

// Timed starts part p of the current spec; the returned func ends it (defer it: a failure
// panics through). Its wall time counts for p, and the waits that end inside it too. A part
// entered again while it runs (Deploy inside Setup) counts once.
func Timed(p Part) (end func()) {
	c := currentClock()
	c.mu.Lock()
	prev := c.part
	if prev == p {
		c.mu.Unlock()
		return func() {}
	}
	c.part = p
	c.mu.Unlock()
	start := time.Now()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.wall[p] += time.Since(start)
		c.ran[p] = true
		c.part = prev
	}
}

// Timings registers, at the top level of a suite, what times every spec: a fresh clock before
// it (ReportBeforeEach) and, after its cleanup (ReportAfterEach), its report.EntrySpecTimings
// with what was measured, if anything was (a spec left out before its body has no timings).
func Timings() bool {
	ReportBeforeEach(func(SpecReport) {
		mu.Lock()
		defer mu.Unlock()
		current = &clock{}
	})
	ReportAfterEach(func(SpecReport) {
		if t := currentClock().timings(); !t.Empty() {
			AddReportEntry(report.EntrySpecTimings, t, ReportEntryVisibilityNever)
		}
	})
	return true
}
