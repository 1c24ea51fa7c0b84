package expect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/wait"
)

// maxHistory bounds what a Result keeps (or the final streak, if longer): a 60s wait at
// 250ms makes 240 probes.
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
	// History holds the outcomes seen (the last 64, or the whole final streak if longer),
	// oldest first; Observations the same with their classification.
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
	Err          error // context.DeadlineExceeded or context.Canceled (ctx's cause, if it has one)
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
// a policy landed proves nothing. A probe cut short by the deadline (after the first) says
// nothing about the mesh and is not counted.
func Converge(ctx context.Context, cfg Config, mode Mode, e catalog.Expectation,
	run func(context.Context) (probe.Outcome, error)) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res, err := wait.Until(ctx, cfg.waitConfig(), func(ctx context.Context) (Observation, error) {
		o, err := run(ctx)
		ob := Observation{Outcome: o, Err: err}
		if err == nil {
			ob.Class, ob.Reason = Classify(e, o)
		}
		return ob, err
	}, func(ob Observation) bool { return mode.Accepts(ob.Class) })
	obs := make([]Observation, len(res.History))
	for i, w := range res.History {
		obs[i] = w.Value
		obs[i].At = w.At
	}
	if err != nil {
		ce := &ConvergeError{Expectation: e, Mode: mode, Config: cfg, Attempts: res.Attempts, BestStreak: res.BestStreak,
			Observations: obs, Err: err}
		if len(obs) > 0 {
			ce.Last = obs[len(obs)-1]
		}
		return Result{}, ce
	}
	r := Result{Outcome: obs[len(obs)-1].Outcome, Attempts: res.Attempts, Observations: obs}
	// The worst class of the final streak (the history holds all of it), the latest of equals.
	for i, ob := range obs[len(obs)-cfg.Consecutive:] {
		if i == 0 || ob.Class.rank() >= r.Class.rank() {
			r.Class, r.Reason = ob.Class, ob.Reason
		}
	}
	for _, x := range obs {
		r.History = append(r.History, x.Outcome)
	}
	return r, nil
}

// waitConfig is c for the waiter, keeping the last maxHistory observations.
func (c Config) waitConfig() wait.Config {
	return wait.Config{Timeout: c.Timeout, Poll: c.Poll, Consecutive: c.Consecutive, History: maxHistory}
}

// ConvergeFunc runs check every cfg.Poll until it returns nil cfg.Consecutive times in a
// row (an error starts the count again), for readiness and log checks. On timeout the
// error shows the last error and the recent history.
func ConvergeFunc(ctx context.Context, cfg Config, check func(context.Context) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := wait.Until(ctx, cfg.waitConfig(), func(ctx context.Context) (struct{}, error) {
		return struct{}{}, check(ctx)
	}, nil)
	if err == nil {
		return nil
	}
	var (
		hist []string
		last error
	)
	for _, ob := range res.History {
		line := fmt.Sprintf("#%d +%.1fs ok", ob.N, ob.At.Seconds())
		if ob.Err != nil {
			line = fmt.Sprintf("#%d +%.1fs %s", ob.N, ob.At.Seconds(), firstLine(ob.Err.Error()))
			last = ob.Err
		}
		hist = append(hist, line)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "condition not met %d times in a row within %v (%v); %d checks, longest streak %d\n",
		cfg.Consecutive, cfg.Timeout, err, res.Attempts, res.BestStreak)
	if last != nil {
		fmt.Fprintf(&b, "last error: %v\n", last)
	}
	if len(hist) > 0 {
		b.WriteString("history (oldest first):\n  " + strings.Join(hist, "\n  "))
	}
	return &funcError{msg: strings.TrimRight(b.String(), "\n"), err: err, last: last}
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
