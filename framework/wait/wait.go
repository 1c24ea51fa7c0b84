// Package wait is the one loop under every wait of the suite (DESIGN.md, "Waiting"): it
// observes something every Poll until an observation is met Consecutive times in a row, or the
// deadline (or ctx) ends the wait, and keeps a bounded history of what it saw so that the
// caller's error can show it. It imports neither Ginkgo nor Gomega, and never sleeps past ctx.
//
// Every wait tells the Meter of its context (WithMeter) how long it took and how much of that
// the world was not yet as awaited: how the conformance report learns where a run's time goes.
package wait

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Config says how long to wait, how often to look, and what to keep.
type Config struct {
	// Timeout bounds the wait from its start (ctx's own deadline still applies). A Timeout
	// ≤ 0 leaves room for one observation.
	Timeout time.Duration
	// Poll is the pause between the end of one observation and the start of the next (> 0).
	Poll time.Duration
	// Consecutive is how many met observations in a row end the wait (≥ 1). Any observation
	// that is not met, or fails, starts the count again.
	Consecutive int
	// History is how many of the latest observations Result.History keeps; it always keeps
	// at least Consecutive, so that a wait that succeeded holds its whole final streak.
	History int
	// ObserveTimeout, when > 0, runs each observation under ctx with a timeout of its own
	// instead of under the wait's deadline: the deadline then never cuts an observation
	// short (the wait ends once the observation has been judged), so the last one reports
	// the world rather than the clock.
	ObserveTimeout time.Duration
	// IgnoreLateErrors takes an observation that fails when the deadline is at most one Poll
	// away as the deadline itself (a request cut short, or a client's rate limiter refusing
	// to wait past it): it breaks the streak, but it is neither counted nor kept, so the
	// result's last observation is the last word from the world.
	IgnoreLateErrors bool
}

// Validate says which field is out of range; Until checks it before the first observation.
func (c Config) Validate() error {
	switch {
	case c.Poll <= 0:
		return fmt.Errorf("wait: Poll = %v, want > 0", c.Poll)
	case c.Consecutive < 1:
		return fmt.Errorf("wait: Consecutive = %d, want ≥ 1", c.Consecutive)
	case c.History < 0:
		return fmt.Errorf("wait: History = %d, want ≥ 0", c.History)
	case c.ObserveTimeout < 0:
		return fmt.Errorf("wait: ObserveTimeout = %v, want ≥ 0", c.ObserveTimeout)
	}
	return nil
}

// Observation is one look: what it returned, and when.
type Observation[T any] struct {
	// N numbers the observations kept, from 1.
	N int
	// At is when the observation returned, since the wait began.
	At    time.Duration
	Value T
	// Err says the observation failed; Value is what it returned anyway.
	Err error
}

// Result is what a wait saw, whether it succeeded or not.
type Result[T any] struct {
	// Attempts counts the observations kept (Until's rules drop some: see there).
	Attempts int
	// Streak is how many observations in a row were met at the end; BestStreak the longest
	// run of them.
	Streak, BestStreak int
	// Elapsed is how long the wait took.
	Elapsed time.Duration
	// History holds the latest observations kept (Config.History, at least the final
	// streak), oldest first.
	History []Observation[T]
}

// Last is the latest observation kept; its N is 0 when there was none.
func (r Result[T]) Last() Observation[T] {
	if len(r.History) == 0 {
		return Observation[T]{}
	}
	return r.History[len(r.History)-1]
}

// Until calls observe, then every cfg.Poll, until met accepts cfg.Consecutive observations in
// a row, and returns what it saw with a nil error. An observation is met when observe returns
// no error and met(value) holds (a nil met accepts every value). When the deadline (start +
// cfg.Timeout) or ctx ends the wait first, the error is the context's cause:
// context.DeadlineExceeded for the deadline.
//
// An observation that returns an error once the context it ran under has ended (the
// deadline's or ctx's; with ObserveTimeout only ctx's) was cut short by it: it says nothing
// about what is waited for, so it is dropped (it breaks the streak, but is neither counted
// nor kept), unless it is the first, which is kept so that the result says something. With cfg.IgnoreLateErrors, errors in the last Poll before the deadline are
// dropped too, the first one included. A value that arrives after the deadline is judged:
// it may still complete the streak.
//
// Until is generic over what one observation returns, so that each caller keeps its own
// evidence (a probe's outcome and classification, a pod list, a list of unmet conditions)
// in the history without converting it.
func Until[T any](ctx context.Context, cfg Config, observe func(context.Context) (T, error), met func(T) bool) (Result[T], error) {
	var r Result[T]
	if err := cfg.Validate(); err != nil {
		return r, err
	}
	start := time.Now()
	m := meterOf(ctx)
	// Observations run without the meter: a wait inside one is part of this wait.
	ctx = WithMeter(ctx, nil)
	wctx, cancel := context.WithDeadline(ctx, start.Add(cfg.Timeout))
	defer cancel()
	deadline, _ := wctx.Deadline()
	// The context an observation runs under: its end is what cuts an observation short.
	under := wctx
	if cfg.ObserveTimeout > 0 {
		under = ctx
	}
	keep := max(cfg.History, cfg.Consecutive)
	// streakBegan is when the first observation of the current streak began.
	var streakBegan time.Duration
	for {
		octx, ocancel := under, context.CancelFunc(func() {})
		if cfg.ObserveTimeout > 0 {
			octx, ocancel = context.WithTimeout(ctx, cfg.ObserveTimeout)
		}
		began := time.Since(start)
		v, err := observe(octx)
		ocancel()
		at := time.Since(start)
		cut := err != nil && under.Err() != nil && r.Attempts > 0
		late := err != nil && cfg.IgnoreLateErrors && time.Until(deadline) <= cfg.Poll
		if cut || late {
			r.Streak = 0
		} else {
			r.Attempts++
			r.History = append(r.History, Observation[T]{N: r.Attempts, At: at, Value: v, Err: err})
			if len(r.History) > keep {
				r.History = r.History[len(r.History)-keep:]
			}
			if err == nil && (met == nil || met(v)) {
				if r.Streak == 0 {
					streakBegan = began
				}
				r.Streak++
				r.BestStreak = max(r.BestStreak, r.Streak)
				if r.Streak >= cfg.Consecutive {
					r.Elapsed = time.Since(start)
					m.waited(Waited{Elapsed: r.Elapsed, Unmet: streakBegan})
					return r, nil
				}
			} else {
				r.Streak = 0
			}
		}
		if !pause(wctx, cfg.Poll) {
			r.Elapsed = time.Since(start)
			m.waited(Waited{Elapsed: r.Elapsed, Unmet: r.Elapsed})
			return r, context.Cause(wctx)
		}
	}
}

// pause waits d unless ctx ends first; false when it has ended.
func pause(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Interrupted is Throughout's error when ctx ended before the window did: how far it got.
type Interrupted struct {
	// After is how long the window had run; Observations how many observations passed.
	After        time.Duration
	Observations int
	// Err is the context's cause.
	Err error
}

func (e *Interrupted) Error() string {
	return fmt.Sprintf("interrupted after %v (%d observations, all as required): %v", e.After.Round(100*time.Millisecond), e.Observations, e.Err)
}

func (e *Interrupted) Unwrap() error { return e.Err }

// Throughout is the other half of waiting ("consistently"): it calls observe at once and then
// every poll until window has passed (the last call at or after its end), and returns nil when
// every call returned nil. The first error ends it and is returned as observe returned it:
// one observation that breaks the rule is the answer. When ctx ends first, or an observation
// fails because ctx ended, the error is an *Interrupted saying how many observations had
// passed. n counts the observations from 1; at is when each began, since the window began.
func Throughout(ctx context.Context, window, poll time.Duration, observe func(ctx context.Context, n int, at time.Duration) error) error {
	if window <= 0 || poll <= 0 {
		return fmt.Errorf("wait: window %v and poll %v must be positive", window, poll)
	}
	start := time.Now()
	m := meterOf(ctx)
	ctx = WithMeter(ctx, nil) // a wait inside an observation is part of this one
	// The window is the rule itself, not a wait for the world to change: none of it is unmet.
	defer func() { m.waited(Waited{Elapsed: time.Since(start)}) }()
	end := start.Add(window)
	for n := 1; ; n++ {
		if err := observe(ctx, n, time.Since(start)); err != nil {
			if ctx.Err() != nil {
				return &Interrupted{After: time.Since(start), Observations: n - 1, Err: context.Cause(ctx)}
			}
			if deadlineRefused(err) {
				// client-go's rate limiter refuses a request that could not start before ctx's
				// deadline, before the deadline: ctx ends it all the same.
				return &Interrupted{After: time.Since(start), Observations: n - 1, Err: err}
			}
			return err
		}
		if !time.Now().Before(end) {
			return nil
		}
		if !pause(ctx, min(poll, time.Until(end))) {
			return &Interrupted{After: time.Since(start), Observations: n, Err: context.Cause(ctx)}
		}
	}
}

// deadlineRefused reports whether err is golang.org/x/time/rate's refusal to wait past a
// context's deadline ("rate: Wait(n=1) would exceed context deadline", wrapped by client-go's
// "client rate limiter Wait returned an error"): it has no sentinel error to test with errors.Is.
func deadlineRefused(err error) bool {
	return strings.Contains(err.Error(), "would exceed context deadline")
}
