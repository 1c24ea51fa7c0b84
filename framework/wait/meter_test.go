package wait

import (
	"context"
	"testing"
	"time"
)

// record is a Meter that keeps every report.
type record []Waited

func (r *record) Waited(w Waited) { *r = append(*r, w) }

// TestMeterSplitsAWait: a wait tells its context's Meter how long it took and how much of it
// passed before the streak that ended it began; unmet observations, broken streaks and a wait
// that never succeeds are all time the world was not as awaited.
func TestMeterSplitsAWait(t *testing.T) {
	const poll = 20 * time.Millisecond
	cfg := Config{Consecutive: 3, Timeout: 10 * time.Second, Poll: poll}
	for _, c := range []struct {
		name  string
		steps []string
		// unmet observations (and a pause after each) before the final streak
		unmet int
	}{
		{"met from the start", []string{"ok"}, 0},
		{"two unmet first", []string{"no", "no", "ok"}, 2},
		{"a broken streak counts as unmet", []string{"ok", "ok", "boom", "ok"}, 3},
	} {
		var m record
		var began []time.Time
		observe, _ := script(c.steps...)
		t0 := time.Now()
		_, err := Until(WithMeter(context.Background(), &m), cfg, func(ctx context.Context) (string, error) {
			began = append(began, time.Now())
			return observe(ctx)
		}, isOK)
		if err != nil || len(m) != 1 {
			t.Fatalf("%s: %v, %d reports; want nil and one", c.name, err, len(m))
		}
		w := m[0]
		// The streak began with observation unmet+1: Unmet ends when it began.
		if upper := began[c.unmet].Sub(t0); w.Unmet > upper || w.Unmet < time.Duration(c.unmet)*poll {
			t.Errorf("%s: Unmet %v, want between %v (%d pauses) and %v (when the streak's first observation began)",
				c.name, w.Unmet, time.Duration(c.unmet)*poll, c.unmet, upper)
		}
		// The final streak: three observations and the two pauses between them.
		if streak := w.Elapsed - w.Unmet; streak < 2*poll || streak > w.Elapsed {
			t.Errorf("%s: Elapsed %v, Unmet %v: the streak took %v, want at least its two pauses (%v)", c.name, w.Elapsed, w.Unmet, streak, 2*poll)
		}
	}

	// A wait that does not succeed is unmet throughout.
	var m record
	observe, _ := script("no")
	if _, err := Until(WithMeter(context.Background(), &m), Config{Consecutive: 1, Timeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond}, observe, isOK); err == nil {
		t.Fatal("an unmet wait succeeded")
	}
	if len(m) != 1 || m[0].Unmet != m[0].Elapsed || m[0].Elapsed < 50*time.Millisecond {
		t.Errorf("failed wait reported %+v, want Unmet = Elapsed ≥ 50ms", m)
	}
}

// TestMeterCountsEachWaitOnce: Throughout reports its window (none of it unmet); a wait inside
// another's observation is part of it; WithMeter(ctx, nil) hides a parent's meter; a context
// without a meter is fine.
func TestMeterCountsEachWaitOnce(t *testing.T) {
	var sum Sum
	ctx := WithMeter(context.Background(), &sum)
	if err := Throughout(ctx, 30*time.Millisecond, 10*time.Millisecond, func(context.Context, int, time.Duration) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s := sum.Summed()
	if s.Waits != 1 || s.Elapsed < 30*time.Millisecond || s.Unmet != 0 {
		t.Errorf("Throughout reported %+v, want one wait of at least the window, none of it unmet", s)
	}

	var outer Sum
	inner := 0
	_, err := Until(WithMeter(context.Background(), &outer), fast(1), func(ctx context.Context) (string, error) {
		inner++
		observe, _ := script("no", "ok")
		_, err := Until(ctx, fast(2), observe, isOK)
		return "ok", err
	}, isOK)
	if err != nil || inner != 1 || outer.Summed().Waits != 1 {
		t.Errorf("nested: %v, %d inner waits, %d reported; want the outer wait alone", err, inner, outer.Summed().Waits)
	}

	var hidden Sum
	observe, _ := script("ok")
	if _, err := Until(WithMeter(WithMeter(context.Background(), &hidden), nil), fast(1), observe, isOK); err != nil || hidden.Summed().Waits != 0 {
		t.Errorf("a nil meter did not hide its parent's: %v, %+v", err, hidden.Summed())
	}
	observe, _ = script("ok")
	if _, err := Until(context.Background(), fast(1), observe, isOK); err != nil {
		t.Errorf("no meter: %v", err)
	}
}

// Waits that overlap in time (concurrent goroutines under one meter) count once in Wall, as
// the phase's time inside the waiter; Elapsed still adds them up. Without the merge, the
// baseline's concurrent probes made a phase wait longer than it lasted (47.1s in 39.5s).
func TestSumWallCountsOverlapOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var s Sum
	at := func(sec float64) {
		s.now = func() time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	}
	at(10)
	s.Waited(Waited{Elapsed: 10 * time.Second}) // 0..10
	at(8)
	s.Waited(Waited{Elapsed: 6 * time.Second}) // 2..8, inside the first
	at(15)
	s.Waited(Waited{Elapsed: 7 * time.Second}) // 8..15, overlapping its end
	at(30)
	s.Waited(Waited{Elapsed: 5 * time.Second}) // 25..30, apart
	got := s.Summed()
	if got.Elapsed != 28*time.Second || got.Wall != 20*time.Second || got.Waits != 4 {
		t.Errorf("Summed = %+v, want Elapsed 28s, Wall 20s (0-15 and 25-30), 4 waits", got)
	}
}
