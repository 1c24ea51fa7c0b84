package wait

import (
	"context"
	"sync"
	"time"
)

// Waited is what a wait tells the Meter of its context when it ends: how long it took, and
// how much of that passed before the world was as awaited.
type Waited struct {
	// Elapsed is the wait's wall time, from its start to its return.
	Elapsed time.Duration
	// Unmet is the part of Elapsed before the first observation of the streak that ended the
	// wait began: the observations that were not met (or failed) and the pauses after them,
	// that is, the time the cluster or the mesh was not yet as awaited. What follows it is
	// the final streak, the Consecutive observations that confirm it. A wait that did not
	// succeed (deadline, ctx) is Unmet throughout. Throughout's window is the rule itself,
	// never a wait for the world to change: its Unmet is 0.
	Unmet time.Duration
}

// Meter is told about every wait (Until, Throughout) that ends under a context carrying it
// (WithMeter), once it ends, from the waiting goroutine. A wait started inside another wait's
// observation is part of that wait and is not reported on its own, so nested waits are not
// counted twice. Waits that run at the same time in several goroutines under one Meter are
// each reported (Sum's Wall counts their overlap once).
type Meter interface {
	Waited(Waited)
}

type meterKey struct{}

// WithMeter returns ctx whose waits report to m; a nil m reports nowhere (it hides the meter
// of ctx's parents).
func WithMeter(ctx context.Context, m Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, meterBox{m})
}

// meterBox lets WithMeter store a nil Meter and still shadow a parent's.
type meterBox struct{ m Meter }

func meterOf(ctx context.Context) meterBox {
	b, _ := ctx.Value(meterKey{}).(meterBox)
	return b
}

func (b meterBox) waited(w Waited) {
	if b.m != nil {
		b.m.Waited(w)
	}
}

// Sum is a Meter that adds up the waits it is told about; safe for concurrent use. Its zero
// value is ready.
type Sum struct {
	mu   sync.Mutex
	s    Summed
	busy []interval // the waits' spans, merged where they overlap
	now  func() time.Time
}

type interval struct{ from, to time.Time }

// Summed is what a Sum has added up.
type Summed struct {
	// Waits counts the waits reported.
	Waits int
	// Elapsed and Unmet add up the waits' Waited fields.
	Elapsed, Unmet time.Duration
	// Wall is the wall time during which at least one wait ran: Elapsed, less the overlap of
	// waits that ran at the same time in several goroutines (the baseline's probes do). It is
	// what a phase spent inside the waiter, never more than the phase itself.
	Wall time.Duration
}

// Waited adds one wait, which ends now.
func (s *Sum) Waited(w Waited) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	end := now()
	s.s.Waits++
	s.s.Elapsed += w.Elapsed
	s.s.Unmet += w.Unmet
	s.busy = merge(s.busy, interval{end.Add(-w.Elapsed), end})
	s.s.Wall = 0
	for _, iv := range s.busy {
		s.s.Wall += iv.to.Sub(iv.from)
	}
}

// merge adds iv to the sorted, disjoint spans, joining those it overlaps.
func merge(spans []interval, iv interval) []interval {
	var out []interval
	placed := false
	for _, sp := range spans {
		switch {
		case sp.to.Before(iv.from):
			out = append(out, sp)
		case iv.to.Before(sp.from):
			if !placed {
				out, placed = append(out, iv), true
			}
			out = append(out, sp)
		default: // overlapping: iv grows to cover both
			if sp.from.Before(iv.from) {
				iv.from = sp.from
			}
			if sp.to.After(iv.to) {
				iv.to = sp.to
			}
		}
	}
	if !placed {
		out = append(out, iv)
	}
	return out
}

// Summed returns what has been added up so far.
func (s *Sum) Summed() Summed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}
