package wait

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"strings"
	"testing"
	"time"
)

// script replays steps, one per observation (the last repeats): "ok" is a met value, "no" an
// unmet one, anything else an error with that text.
func script(steps ...string) (func(context.Context) (string, error), *int) {
	n := 0
	return func(context.Context) (string, error) {
		s := steps[min(n, len(steps)-1)]
		n++
		if s == "ok" || s == "no" {
			return s, nil
		}
		return s, errors.New(s)
	}, &n
}

func isOK(s string) bool { return s == "ok" }

func fast(n int) Config {
	return Config{Consecutive: n, Timeout: 10 * time.Second, Poll: time.Millisecond, History: 64}
}

func TestConsecutiveCountsOnlyUnbrokenRuns(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []string
		calls int
		best  int
	}{
		{"met from the start", []string{"ok"}, 3, 3},
		{"an unmet value resets", []string{"ok", "ok", "no", "ok", "ok", "ok"}, 6, 3},
		{"an error resets", []string{"ok", "ok", "boom", "ok", "ok", "ok"}, 6, 3},
		{"every failure resets", []string{"ok", "no", "ok", "ok", "boom", "ok", "ok", "no", "ok", "ok", "ok"}, 11, 3},
	} {
		observe, calls := script(c.steps...)
		r, err := Until(context.Background(), fast(3), observe, isOK)
		if err != nil || *calls != c.calls || r.Attempts != c.calls || r.Streak != 3 || r.BestStreak != c.best {
			t.Errorf("%s: %v after %d calls, attempts %d, streak %d, best %d; want nil after %d, streak 3",
				c.name, err, *calls, r.Attempts, r.Streak, r.BestStreak, c.calls)
		}
	}

	// A nil met accepts every value; only errors break the run.
	observe, calls := script("no", "boom", "no", "no")
	if _, err := Until(context.Background(), fast(2), observe, nil); err != nil || *calls != 4 {
		t.Errorf("nil met: %v after %d calls, want nil after 4", err, *calls)
	}
}

func TestDeadline(t *testing.T) {
	observe, calls := script("ok", "no")
	cfg := Config{Consecutive: 2, Timeout: 200 * time.Millisecond, Poll: 20 * time.Millisecond}
	began := time.Now()
	r, err := Until(context.Background(), cfg, observe, isOK)
	took := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never met twice: %v, want the deadline", err)
	}
	if took < cfg.Timeout || took > cfg.Timeout+2*time.Second {
		t.Errorf("gave up after %v, want about %v", took, cfg.Timeout)
	}
	if r.Attempts < 2 || r.Attempts != *calls || r.Streak != 0 || r.BestStreak != 1 || r.Last().Value != "no" || r.Elapsed < cfg.Timeout {
		t.Errorf("result %+v after %d calls", r, *calls)
	}

	// A Timeout ≤ 0 leaves room for one observation.
	observe, calls = script("no")
	if r, err := Until(context.Background(), Config{Consecutive: 1, Poll: time.Millisecond}, observe, isOK); !errors.Is(err, context.DeadlineExceeded) || *calls != 1 || r.Attempts != 1 {
		t.Errorf("Timeout 0: %v after %d calls (%d kept), want the deadline after 1", err, *calls, r.Attempts)
	}
	observe, _ = script("ok")
	if _, err := Until(context.Background(), Config{Consecutive: 1, Timeout: -time.Second, Poll: time.Millisecond}, observe, isOK); err != nil {
		t.Errorf("Timeout < 0, met at once: %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	why := errors.New("interrupted by the user")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	n := 0
	began := time.Now()
	r, err := Until(ctx, Config{Consecutive: 1, Timeout: time.Minute, Poll: 5 * time.Millisecond}, func(context.Context) (string, error) {
		if n++; n == 3 {
			cancel(why)
		}
		return "no", nil
	}, isOK)
	if !errors.Is(err, why) || time.Since(began) > 10*time.Second || r.Attempts != 3 {
		t.Errorf("cancelled after the 3rd observation: %v, %d kept, after %v; want the cause at once, 3 kept", err, r.Attempts, time.Since(began))
	}

	// An observation cut short by the end says nothing: dropped, unless it is the first.
	ctx, cancel2 := context.WithCancel(context.Background())
	n = 0
	r, err = Until(ctx, fast(1), func(ctx context.Context) (string, error) {
		if n++; n == 2 {
			cancel2()
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "no", nil
	}, isOK)
	if !errors.Is(err, context.Canceled) || r.Attempts != 1 || r.Last().Value != "no" || r.Last().Err != nil {
		t.Errorf("second observation cut: %v, %+v; want the first one as the last word", err, r)
	}
	ctx, cancel3 := context.WithCancel(context.Background())
	r, err = Until(ctx, fast(1), func(ctx context.Context) (string, error) {
		cancel3()
		return "", ctx.Err()
	}, isOK)
	if !errors.Is(err, context.Canceled) || r.Attempts != 1 || !errors.Is(r.Last().Err, context.Canceled) {
		t.Errorf("first observation cut: %v, %+v; want it kept", err, r)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	observe, calls := script("no", "boom")
	cfg := Config{Consecutive: 1, Timeout: 150 * time.Millisecond, Poll: 100 * time.Microsecond, History: 5}
	r, err := Until(context.Background(), cfg, observe, isOK)
	if err == nil || r.Attempts <= 5 || r.Attempts != *calls && r.Attempts != *calls-1 {
		t.Fatalf("%v after %d calls, %d kept; want many more than 5", err, *calls, r.Attempts)
	}
	if len(r.History) != 5 || r.History[0].N != r.Attempts-4 || r.Last().N != r.Attempts || r.Last().Err == nil || r.Last().Err.Error() != "boom" {
		t.Errorf("history %+v, want the last 5 of %d, oldest first", r.History, r.Attempts)
	}
	for i, ob := range r.History[1:] {
		if ob.N != r.History[i].N+1 || ob.At < r.History[i].At {
			t.Errorf("history out of order at %d: %+v", i, r.History)
		}
	}

	// The history holds at least the final streak.
	observe, _ = script("no", "no", "ok")
	r, err = Until(context.Background(), Config{Consecutive: 4, Timeout: 10 * time.Second, Poll: time.Millisecond, History: 2}, observe, isOK)
	if err != nil || len(r.History) != 4 || r.History[0].N != 3 || r.History[0].Value != "ok" {
		t.Errorf("History 2, Consecutive 4: %v, %+v; want the 4 met observations", err, r.History)
	}
	r, _ = Until(context.Background(), Config{Consecutive: 1, Timeout: 10 * time.Second, Poll: time.Millisecond}, func(context.Context) (string, error) { return "ok", nil }, isOK)
	if len(r.History) != 1 || r.Last().N != 1 {
		t.Errorf("History 0 still keeps the last observation: %+v", r.History)
	}
}

// An error in the last poll interval before the deadline is the deadline itself, with
// IgnoreLateErrors; without it, it is kept like any other.
func TestLateErrors(t *testing.T) {
	late := func() func(context.Context) (string, error) {
		n := 0
		return func(context.Context) (string, error) {
			if n++; n == 1 {
				return "no", nil
			}
			return "", errors.New("client rate limiter Wait returned an error: would exceed context deadline")
		}
	}
	// The first observation at 0, the second at about 700ms: 300ms before the deadline, less
	// than one poll.
	cfg := Config{Consecutive: 1, Timeout: time.Second, Poll: 700 * time.Millisecond}
	cfg.IgnoreLateErrors = true
	r, err := Until(context.Background(), cfg, late(), isOK)
	if !errors.Is(err, context.DeadlineExceeded) || r.Attempts != 1 || r.Last().Value != "no" || r.Last().Err != nil || r.Streak != 0 {
		t.Errorf("late error ignored: %v, %+v; want the unmet value as the last word", err, r)
	}
	cfg.IgnoreLateErrors = false
	r, err = Until(context.Background(), cfg, late(), isOK)
	if !errors.Is(err, context.DeadlineExceeded) || r.Attempts != 2 || r.Last().Err == nil || !strings.Contains(r.Last().Err.Error(), "rate limiter") {
		t.Errorf("late error kept without IgnoreLateErrors: %v, %+v", err, r)
	}

	// An error earlier than that is evidence, and a late error still breaks the streak.
	observe, _ := script("early", "no")
	r, _ = Until(context.Background(), Config{Consecutive: 1, Timeout: 100 * time.Millisecond, Poll: 10 * time.Millisecond, History: 64, IgnoreLateErrors: true}, observe, isOK)
	if r.History[0].Err == nil || r.History[0].Err.Error() != "early" {
		t.Errorf("early error dropped: %+v", r.History[0])
	}
	n := 0
	r, err = Until(context.Background(), Config{Consecutive: 2, Timeout: time.Second, Poll: 700 * time.Millisecond, IgnoreLateErrors: true}, func(context.Context) (string, error) {
		if n++; n == 2 {
			return "", errors.New("late")
		}
		return "ok", nil
	}, isOK)
	if err == nil || r.Attempts != 1 || r.Streak != 0 || r.BestStreak != 1 {
		t.Errorf("met, late error, (deadline): %v, %+v; want the streak broken", err, r)
	}
	// A first observation that fails late is dropped too: nothing was seen.
	r, err = Until(context.Background(), Config{Consecutive: 1, Poll: time.Second, IgnoreLateErrors: true}, func(ctx context.Context) (string, error) {
		return "", ctx.Err()
	}, isOK)
	if !errors.Is(err, context.DeadlineExceeded) || r.Attempts != 0 || r.Last().N != 0 {
		t.Errorf("first observation late: %v, %+v; want nothing kept", err, r)
	}
}

// With ObserveTimeout the deadline does not cut an observation: it is judged, and may still
// succeed; ctx still cuts it.
func TestObserveTimeout(t *testing.T) {
	cfg := Config{Consecutive: 1, Timeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond, ObserveTimeout: 5 * time.Second}
	slow := func(ctx context.Context) (string, error) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(150 * time.Millisecond):
			return "ok", nil
		}
	}
	if r, err := Until(context.Background(), cfg, slow, isOK); err != nil || r.Attempts != 1 || r.Elapsed < 150*time.Millisecond {
		t.Errorf("an observation past the deadline: %v, %+v; want it judged met", err, r)
	}
	_, _ = Until(context.Background(), cfg, func(ctx context.Context) (string, error) {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < time.Second {
			t.Errorf("the observation runs under the wait's deadline (%v), not ObserveTimeout's", time.Until(dl))
		}
		return "ok", nil
	}, isOK)
	n := 0
	r, err := Until(context.Background(), cfg, func(ctx context.Context) (string, error) {
		n++
		return "no", nil
	}, isOK)
	if !errors.Is(err, context.DeadlineExceeded) || r.Attempts != n || n < 2 {
		t.Errorf("never met: %v after %d observations, %+v", err, n, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	cfg.Timeout = time.Minute
	r, err = Until(ctx, cfg, slow, isOK)
	if !errors.Is(err, context.DeadlineExceeded) || r.Attempts != 1 || !errors.Is(r.Last().Err, context.DeadlineExceeded) {
		t.Errorf("ctx ends during the observation: %v, %+v; want it cut", err, r)
	}
}

func TestConfigValidated(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Consecutive: 1}, "Poll = 0s"},
		{Config{Poll: time.Second}, "Consecutive = 0"},
		{Config{Poll: time.Second, Consecutive: 1, History: -1}, "History = -1"},
		{Config{Poll: time.Second, Consecutive: 1, ObserveTimeout: -1}, "ObserveTimeout = -1ns"},
	} {
		called := false
		_, err := Until(context.Background(), c.cfg, func(context.Context) (int, error) { called = true; return 0, nil }, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || called {
			t.Errorf("%+v: %v (observed %t), want %q before any observation", c.cfg, err, called, c.want)
		}
	}
}

// TestThroughout: every observation must hold for the whole window; the first that does not
// ends it with its own error; an interruption says how many had passed.
func TestThroughout(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := Throughout(ctx, 60*time.Millisecond, 10*time.Millisecond, func(context.Context, int, time.Duration) error { calls++; return nil })
	if err != nil || calls < 4 {
		t.Errorf("all held: %v after %d calls, want nil after at least 4 (one at the start, one at or after the end)", err, calls)
	}
	broken := errors.New("pod became Ready")
	calls = 0
	err = Throughout(ctx, time.Second, 5*time.Millisecond, func(_ context.Context, n int, _ time.Duration) error {
		calls++
		if n == 3 {
			return broken
		}
		return nil
	})
	if !errors.Is(err, broken) || calls != 3 {
		t.Errorf("broken at 3: %v after %d calls, want %v after 3", err, calls, broken)
	}
	cctx, cancel := context.WithCancel(ctx)
	err = Throughout(cctx, time.Second, 5*time.Millisecond, func(ctx context.Context, n int, _ time.Duration) error {
		if n == 4 {
			cancel()
			return ctx.Err() // an observation cut short by the interruption
		}
		return nil
	})
	var in *Interrupted
	if !errors.As(err, &in) || in.Observations != 3 || !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted in the 4th: %v, want *Interrupted after 3 observations, context.Canceled", err)
	}
	// A request the client's rate limiter refuses because it could not start before ctx's
	// deadline (the limiter says so before ctx ends) is the deadline's doing: interrupted.
	// Any other failed observation stays the answer.
	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	limiter := rate.NewLimiter(rate.Every(time.Hour), 1)
	limiter.Allow() // the burst used: the next token is an hour away, past dctx's deadline
	err = Throughout(dctx, time.Second, 5*time.Millisecond, func(ctx context.Context, n int, _ time.Duration) error {
		if n == 2 {
			if err := limiter.Wait(ctx); err != nil {
				return fmt.Errorf("listing pods: client rate limiter Wait returned an error: %w", err)
			}
		}
		return nil
	})
	if !errors.As(err, &in) || in.Observations != 1 {
		t.Errorf("rate limiter refusal at the deadline: %v, want *Interrupted after 1 observation", err)
	}
	err = Throughout(dctx, time.Second, 5*time.Millisecond, func(ctx context.Context, n int, _ time.Duration) error {
		return errors.New("pod p is not Ready")
	})
	if errors.As(err, &in) || err == nil {
		t.Errorf("a failed observation: %v, want it as the answer, not an interruption", err)
	}
	if err := Throughout(ctx, 0, time.Millisecond, func(context.Context, int, time.Duration) error { return nil }); err == nil {
		t.Error("a zero window was accepted")
	}
}
