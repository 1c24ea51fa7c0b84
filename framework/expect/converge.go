package expect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
)

// maxHistory bounds what a Result keeps: a 60s wait at 250ms makes 240 probes.
const maxHistory = 64

// Observation is one probe of a convergence: what it saw and how it was judged.
type Observation struct {
	At      time.Duration // since the start of the wait
	Outcome probe.Outcome
	Class   Classification
	Reason  string
	Err     error // the probe could not be judged (transport, missing tool)
}

func (ob Observation) line(i int) string {
	if ob.Err != nil {
		return fmt.Sprintf("#%d +%.1fs error: %s", i, ob.At.Seconds(), firstLine(ob.Err.Error()))
	}
	return fmt.Sprintf("#%d +%.1fs %s %s", i, ob.At.Seconds(), ob.Class, ob.Outcome.Summary())
}

// Result is how a convergence ended.
type Result struct {
	// Outcome is the last outcome seen.
	Outcome probe.Outcome
	// Class is the worst classification in the final streak: a streak of documented and
	// equivalent outcomes is reported as equivalent, so the report shows the variation.
	// Reason is that observation's reason (the latest one of that class), so the two agree:
	// an equivalent result never carries a reason that says "documented".
	Class    Classification
	Reason   string
	Attempts int
	// History holds the outcomes seen (the last 64), oldest first; Observations the same
	// with their classification.
	History      []probe.Outcome
	Observations []Observation
}

// ConvergeError is a convergence that ran out of time (or was cancelled).
type ConvergeError struct {
	Expectation  catalog.Expectation
	Mode         Mode
	Config       Config
	Attempts     int
	BestStreak   int
	Last         Observation
	Observations []Observation
	Err          error // context.DeadlineExceeded or context.Canceled
}

func (e *ConvergeError) Unwrap() error { return e.Err }

func (e *ConvergeError) Error() string {
	var b strings.Builder
	accepted := "documented or equivalent"
	if e.Mode == Strict {
		accepted = "documented only"
	}
	fmt.Fprintf(&b, "%s not seen %d times in a row within %v (%v; mode %s accepts %s); %d probes, longest streak %d\n",
		e.Expectation.Name, e.Config.Consecutive, e.Config.Timeout, e.Err, e.Mode, accepted, e.Attempts, e.BestStreak)
	fmt.Fprintf(&b, "expected: %s\n", e.Expectation)
	switch {
	case e.Attempts == 0:
		b.WriteString("no probe completed\n")
	case e.Last.Err != nil:
		fmt.Fprintf(&b, "last probe failed: %v\n%s\n", e.Last.Err, e.Last.Outcome)
	default:
		fmt.Fprintf(&b, "last outcome (%s: %s):\n%s\n", e.Last.Class, e.Last.Reason, e.Last.Outcome)
	}
	writeHistory(&b, e.Observations, e.Attempts)
	return strings.TrimRight(b.String(), "\n")
}

func writeHistory(b *strings.Builder, obs []Observation, attempts int) {
	if len(obs) == 0 {
		return
	}
	if len(obs) < attempts {
		fmt.Fprintf(b, "history (last %d of %d, oldest first):\n", len(obs), attempts)
	} else {
		b.WriteString("history (oldest first):\n")
	}
	for _, l := range HistoryLines(obs, attempts) {
		fmt.Fprintf(b, "  %s\n", l)
	}
}

// HistoryLines are observations one line each, numbered from the start of the wait (attempts
// probes in all, obs the last of them), oldest first: "#4 +1.2s deviation http_code=200 exit=0".
func HistoryLines(obs []Observation, attempts int) []string {
	first := attempts - len(obs) + 1
	out := make([]string, len(obs))
	for i, ob := range obs {
		out[i] = ob.line(first + i)
	}
	return out
}

// Verdict is how a convergence that ran out of time is classified, and why. When the most
// recent probe that could be judged saw an outcome the mode rejects (a deviation, or an
// equivalent in strict mode), that is the classification and its reason. Otherwise the
// outcome flapped (the streak kept breaking) or the probes could not be judged: the
// expected behaviour was not shown, which is a deviation. The reason always starts with
// "did not converge" and gives the longest streak, so no report reads as a pass.
func (e *ConvergeError) Verdict() (Classification, string) {
	head := fmt.Sprintf("did not converge: %s not seen %d times in a row within %v (%d probes, longest streak %d)",
		e.Expectation.Name, e.Config.Consecutive, e.Config.Timeout, e.Attempts, e.BestStreak)
	if e.Attempts == 0 {
		return Deviation, head + "; no probe completed"
	}
	for i := len(e.Observations) - 1; i >= 0; i-- {
		ob := e.Observations[i]
		if ob.Err != nil {
			continue
		}
		if !e.Mode.Accepts(ob.Class) {
			return ob.Class, fmt.Sprintf("%s; last judged probe: %s", head, ob.Reason)
		}
		if e.Last.Err != nil {
			return Deviation, fmt.Sprintf("%s; last probe failed: %s", head, firstLine(e.Last.Err.Error()))
		}
		return Deviation, fmt.Sprintf("%s; the outcome flapped, last %s", head, ob.Reason)
	}
	return Deviation, fmt.Sprintf("%s; no probe could be judged, last: %s", head, firstLine(e.Last.Err.Error()))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Converge runs run every cfg.Poll until cfg.Consecutive outcomes in a row are accepted by
// mode (any other outcome, or a probe error, starts the count again), or cfg.Timeout (or
// ctx) ends the wait. A negative expectation converges the same way: one reset seen before
// a policy landed proves nothing.
func Converge(ctx context.Context, cfg Config, mode Mode, e catalog.Expectation,
	run func(context.Context) (probe.Outcome, error)) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	var (
		obs              []Observation
		attempts, streak int
		best             int
		worst            Classification
		worstReason      string
	)
	for {
		o, err := run(ctx)
		if err != nil && ctx.Err() != nil && attempts > 0 {
			// The probe was cut by the deadline: it says nothing about the mesh.
			break
		}
		attempts++
		ob := Observation{At: time.Since(start), Outcome: o, Err: err}
		if err == nil {
			ob.Class, ob.Reason = Classify(e, o)
		}
		obs = append(obs, ob)
		if len(obs) > maxHistory {
			obs = obs[len(obs)-maxHistory:]
		}
		if err == nil && mode.Accepts(ob.Class) {
			if streak == 0 || ob.Class.rank() >= worst.rank() {
				worst, worstReason = ob.Class, ob.Reason
			}
			streak++
			best = max(best, streak)
			if streak >= cfg.Consecutive {
				r := Result{Outcome: o, Class: worst, Reason: worstReason, Attempts: attempts, Observations: obs}
				for _, x := range obs {
					r.History = append(r.History, x.Outcome)
				}
				return r, nil
			}
		} else {
			streak = 0
		}
		if !wait(ctx, cfg.Poll) {
			break
		}
	}
	ce := &ConvergeError{Expectation: e, Mode: mode, Config: cfg, Attempts: attempts, BestStreak: best,
		Observations: obs, Err: ctx.Err()}
	if len(obs) > 0 {
		ce.Last = obs[len(obs)-1]
	}
	return Result{}, ce
}

// wait pauses for d unless ctx ends first; false when it did.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ConvergeFunc runs check every cfg.Poll until it returns nil cfg.Consecutive times in a
// row (an error starts the count again), for readiness and log checks. On timeout the
// error shows the last error and the recent history.
func ConvergeFunc(ctx context.Context, cfg Config, check func(context.Context) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	var (
		hist             []string
		last             error
		attempts, streak int
		best             int
	)
	for {
		err := check(ctx)
		if err != nil && ctx.Err() != nil && attempts > 0 {
			break
		}
		attempts++
		line := fmt.Sprintf("#%d +%.1fs ok", attempts, time.Since(start).Seconds())
		if err != nil {
			line = fmt.Sprintf("#%d +%.1fs %s", attempts, time.Since(start).Seconds(), firstLine(err.Error()))
			last, streak = err, 0
		} else {
			streak++
			best = max(best, streak)
			if streak >= cfg.Consecutive {
				return nil
			}
		}
		hist = append(hist, line)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		if !wait(ctx, cfg.Poll) {
			break
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "condition not met %d times in a row within %v (%v); %d checks, longest streak %d\n",
		cfg.Consecutive, cfg.Timeout, ctx.Err(), attempts, best)
	if last != nil {
		fmt.Fprintf(&b, "last error: %v\n", last)
	}
	if len(hist) > 0 {
		b.WriteString("history (oldest first):\n  " + strings.Join(hist, "\n  "))
	}
	return &funcError{msg: strings.TrimRight(b.String(), "\n"), err: ctx.Err(), last: last}
}

type funcError struct {
	msg       string
	err, last error
}

func (e *funcError) Error() string { return e.msg }

// Unwrap exposes the context error and the check's last error to errors.Is/As.
func (e *funcError) Unwrap() []error {
	if e.last == nil {
		return []error{e.err}
	}
	return []error{e.err, e.last}
}
