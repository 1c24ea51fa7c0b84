package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var fast = Backoff{Attempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond, Factor: 2}

func TestRetrySucceedsAfterFailures(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), fast, "flaky", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("hiccup")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err=%v calls=%d, want success on the third call", err, calls)
	}
}

func TestRetryGivesUpWithEveryFailure(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), fast, "load x", func(context.Context) error {
		calls++
		return errors.New("boom " + strings.Repeat("!", calls))
	})
	if calls != 4 {
		t.Fatalf("calls = %d, want 4", calls)
	}
	for _, want := range []string{"load x failed 4 times", "attempt 1: boom !", "attempt 4: boom !!!!"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestRetryStopsOnPermanent(t *testing.T) {
	calls := 0
	err := Retry(context.Background(), fast, "pull y", func(context.Context) error {
		calls++
		return Permanent(errors.New("manifest unknown"))
	})
	if calls != 1 || err == nil || !strings.Contains(err.Error(), "retrying cannot help: manifest unknown") {
		t.Fatalf("calls=%d err=%v", calls, err)
	}
}

func TestRetryHonoursDeadlineAndContext(t *testing.T) {
	b := Backoff{Attempts: 1000, Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Factor: 1, Deadline: 100 * time.Millisecond}
	start := time.Now()
	err := Retry(context.Background(), b, "slow", func(context.Context) error { return errors.New("no") })
	if took := time.Since(start); took > 2*time.Second || err == nil || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("deadline: took %s, err %v", took, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = Retry(ctx, Backoff{Attempts: 10, Initial: time.Hour}, "cancelled", func(context.Context) error {
		calls++
		cancel()
		return errors.New("no")
	})
	if calls != 1 || err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("cancel: calls=%d err=%v", calls, err)
	}
}
