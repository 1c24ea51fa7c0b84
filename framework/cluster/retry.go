package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Backoff says how often and how long to retry a flaky step (image pulls and loads fail now and
// then in CI: registry hiccups, containerd busy on a loaded node).
type Backoff struct {
	// Attempts is the most tries, at least 1.
	Attempts int
	// Initial is the pause after the first failure; it grows by Factor up to Max.
	Initial, Max time.Duration
	Factor       float64
	// Deadline bounds all tries together (0: only ctx bounds them).
	Deadline time.Duration
}

// DefaultBackoff suits pulls and loads: 5 tries, 1 s doubling to 15 s, at most 10 minutes.
var DefaultBackoff = Backoff{Attempts: 5, Initial: time.Second, Max: 15 * time.Second, Factor: 2, Deadline: 10 * time.Minute}

// permanent marks an error that retrying cannot fix (e.g. an image that does not exist).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so that Retry stops at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Retry runs fn until it succeeds, returns a Permanent error, the attempts run out, the
// deadline passes or ctx ends. The error names what was tried, how often, and every failure.
func Retry(ctx context.Context, b Backoff, what string, fn func(context.Context) error) error {
	if b.Attempts < 1 {
		b.Attempts = 1
	}
	if b.Factor < 1 {
		b.Factor = 1
	}
	if b.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Deadline)
		defer cancel()
	}
	var failures []string
	pause := b.Initial
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		failures = append(failures, fmt.Sprintf("attempt %d: %v", attempt, err))
		var p permanent
		switch {
		case errors.As(err, &p):
			return fmt.Errorf("%s failed and retrying cannot help: %w", what, p.error)
		case attempt >= b.Attempts:
			return fmt.Errorf("%s failed %d times:\n  %s", what, attempt, strings.Join(failures, "\n  "))
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: gave up after %d attempts (%v):\n  %s", what, attempt, context.Cause(ctx), strings.Join(failures, "\n  "))
		case <-t.C:
		}
		pause = min(time.Duration(float64(pause)*b.Factor), max(b.Max, b.Initial))
	}
}
