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
// each reported (the suites run none).
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
	mu sync.Mutex
	s  Summed
}

// Summed is what a Sum has added up.
type Summed struct {
	// Waits counts the waits reported.
	Waits int
	// Elapsed and Unmet add up the waits' Waited fields.
	Elapsed, Unmet time.Duration
}

// Waited adds one wait.
func (s *Sum) Waited(w Waited) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Waits++
	s.s.Elapsed += w.Elapsed
	s.s.Unmet += w.Unmet
}

// Summed returns what has been added up so far.
func (s *Sum) Summed() Summed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}
