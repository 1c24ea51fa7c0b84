package probe

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLocalExec(t *testing.T) {
	ctx := context.Background()
	res, err := Local{}.Exec(ctx, []string{"sh", "-c", "printf out; printf err >&2; exit 3"})
	if err != nil || string(res.Stdout) != "out" || string(res.Stderr) != "err" || res.ExitCode != 3 {
		t.Errorf("Exec: %v, %q %q %d; want out, err, 3", err, res.Stdout, res.Stderr, res.ExitCode)
	}
	if res, err := (Local{Env: []string{"MC_X=1"}}).Exec(ctx, []string{"sh", "-c", "printf %s \"$MC_X$HOME\""}); err != nil || string(res.Stdout) != "1" {
		t.Errorf("Env replaces the environment: %q, %v", res.Stdout, err)
	}
	if _, err := (Local{}).Exec(ctx, nil); err == nil {
		t.Error("empty command accepted")
	}

	// A shell's child holding the pipes must not keep Exec past the deadline.
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = Local{}.Exec(ctx, []string{"sh", "-c", "sleep 30; echo never"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 5*time.Second {
		t.Errorf("Exec past its deadline: %v after %v", err, time.Since(begin))
	}
}
