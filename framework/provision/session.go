package provision

import (
	"context"
	"fmt"
	"io"
	"time"

	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/wait"
)

// ExitInterrupted is a driver's exit code after an interrupt: 128+SIGINT, as a shell reports it.
const ExitInterrupted = 130

// AfterDown has a Session call fn once it has ended the run (after Down), with how it ended:
// the caller's closing lines, such as the closing table and where the reports are.
func AfterDown(fn func(Ended)) Option { return func(c *config) { c.afterDown = fn } }

// Ended is how a run was ended (End): its outcome and state, and what the end measured.
type Ended struct {
	Outcome Outcome
	State   State
	// Cleanup is Down as the report's cleanup phase: its wall time, and the part inside the
	// waiter.
	Cleanup report.Phase
	// Total is the run's wall time, from the start of Up (State.Started) to the end of Down.
	Total time.Duration
}

// Session is the whole life of a run a driver owns: Start (Up, then the state saved), body on
// the run, then the end: the outcome from ctx and body's exit code, a line saying an interrupt
// is being cleaned up after, End (Down as KEEP_CLUSTER says for that outcome), AfterDown's
// lines. What fails is printed to log. It returns the driver's exit code: body's; 1 when the
// run could not be brought up or saved, or when the cleanup failed after a passing body;
// ExitInterrupted when ctx ended. ctx is the driver's signal context: the interrupt line says
// that a second Ctrl-C abandons the cleanup, so the driver must let a second signal end it.
func Session(ctx context.Context, s settings.Settings, log io.Writer, body func(context.Context, State) int, opts ...Option) int {
	st, code := Start(ctx, s, log, opts...)
	if code != 0 {
		return code
	}
	return finish(ctx, st, body(ctx, st), log, opts)
}

// Start brings the run up for a driver and saves its state to StatePath(st.RunDir), for the
// suites (MESHCONFORM_STATE) and for `down`. It prints what failed to log and returns 0 when
// the run is up, else the exit code: 1, or ExitInterrupted when ctx ended. A failed Up has
// cleaned up after itself; a run whose state could not be saved is ended at once, as after a
// failure, since nothing could find it to end it later.
func Start(ctx context.Context, s settings.Settings, log io.Writer, opts ...Option) (State, int) {
	c := configure(opts)
	if log == nil {
		log = io.Discard
	}
	st, err := c.up(ctx, s, log, opts...)
	if err != nil {
		fmt.Fprintf(log, "meshconform: %v\n", err)
		if ctx.Err() != nil {
			return st, ExitInterrupted
		}
		return st, 1
	}
	if err := st.Save(StatePath(st.RunDir)); err != nil {
		fmt.Fprintf(log, "meshconform: saving the run state: %v\n", err)
		return st, finish(ctx, st, 1, log, opts)
	}
	return st, 0
}

// finish ends a run Start brought up, once its work exited with code (0: passed).
func finish(ctx context.Context, st State, code int, log io.Writer, opts []Option) int {
	c := configure(opts)
	if log == nil {
		log = io.Discard
	}
	outcome := OutcomeOf(ctx.Err() != nil, code != 0)
	if outcome == Interrupted {
		fmt.Fprintln(log, "meshconform: interrupted: cleaning up (Ctrl-C again abandons the cleanup)")
	}
	ended, err := End(ctx, st, outcome, log, opts...)
	if err != nil && code == 0 {
		code = 1
	}
	if c.afterDown != nil {
		c.afterDown(ended)
	}
	if outcome == Interrupted {
		return ExitInterrupted
	}
	return code
}

// End ends a run this process brought up and owns (Start's, or Acquire's when owned) with its
// outcome: Down, whose failure is printed to log as a cleanup failure and returned. A driver
// folds it into its exit code (Session); a suite can only report it. Ended says how long Down
// took (also when it failed: the time was spent) and the run's total.
func End(ctx context.Context, st State, outcome Outcome, log io.Writer, opts ...Option) (Ended, error) {
	c := configure(opts)
	if log == nil {
		log = io.Discard
	}
	var waits wait.Sum
	start := time.Now()
	err := c.down(wait.WithMeter(ctx, &waits), st, outcome, log, opts...)
	end := time.Now()
	if err != nil {
		fmt.Fprintf(log, "meshconform: cleanup: %v\n", err)
	}
	ended := Ended{Outcome: outcome, State: st, Cleanup: report.Measured(report.PhaseCleanup, end.Sub(start), waits.Summed().Wall)}
	if !st.Started.IsZero() {
		ended.Total = end.Sub(st.Started)
	}
	return ended, err
}
