package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"meshconform/framework/cluster"
	"meshconform/framework/cluster/preflight"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/wait"
	"meshconform/internal/kindtest"
)

// withUpDown replaces Up and Down in a Session: its end can be driven without a cluster.
func withUpDown(up func(context.Context, settings.Settings, io.Writer, ...Option) (State, error),
	down func(context.Context, State, Outcome, io.Writer, ...Option) error) Option {
	return func(c *config) {
		if up != nil {
			c.up = up
		}
		if down != nil {
			c.down = down
		}
	}
}

// fakeRun is a run brought up and down by fakes, recording what the Session did in order.
type fakeRun struct {
	st      State
	upErr   error
	downErr error
	events  []string
}

func (f *fakeRun) options() []Option {
	return []Option{
		withUpDown(func(ctx context.Context, _ settings.Settings, _ io.Writer, _ ...Option) (State, error) {
			f.events = append(f.events, "up")
			return f.st, f.upErr
		}, func(_ context.Context, st State, o Outcome, _ io.Writer, _ ...Option) error {
			f.events = append(f.events, "down "+string(o))
			if st.RunID != f.st.RunID {
				return errors.New("Down got another run's state")
			}
			return f.downErr
		}),
		AfterDown(func(e Ended) { f.events = append(f.events, "after "+string(e.Outcome)) }),
	}
}

// Every way a driver's run can end: the exit code, the outcome Down is given, what runs in
// which order and what is said.
func TestSession(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		// body's exit code; cancel ends ctx inside body (Ctrl-C during the suites), cancelFirst
		// before Session starts (Ctrl-C during Up).
		body                int
		cancel, cancelFirst bool
		upErr, downErr      error
		unsaved             bool // the state cannot be written
		code                int
		events              []string
		says, saysNot       []string
	}{
		{name: "passes", body: 0, code: 0,
			events:  []string{"up", "body", "down passed", "after passed"},
			saysNot: []string{"cleanup", "interrupted"}},
		{name: "body fails: its code, Down told failed", body: 3, code: 3,
			events: []string{"up", "body", "down failed", "after failed"}},
		{name: "interrupted during a passing body", body: 0, cancel: true, code: ExitInterrupted,
			events: []string{"up", "body", "down interrupted", "after interrupted"},
			says:   []string{"meshconform: interrupted: cleaning up (Ctrl-C again abandons the cleanup)\n"}},
		{name: "interrupted during a failing body", body: 1, cancel: true, code: ExitInterrupted,
			events: []string{"up", "body", "down interrupted", "after interrupted"},
			says:   []string{"meshconform: interrupted: cleaning up"}},
		{name: "Down fails after a pass: 1", body: 0, downErr: boom, code: 1,
			events: []string{"up", "body", "down passed", "after passed"},
			says:   []string{"meshconform: cleanup: boom\n"}},
		{name: "Down fails after a failure: the body's code stands", body: 4, downErr: boom, code: 4,
			events: []string{"up", "body", "down failed", "after failed"},
			says:   []string{"meshconform: cleanup: boom\n"}},
		{name: "Down fails after an interrupt: still 130", body: 0, cancel: true, downErr: boom, code: ExitInterrupted,
			events: []string{"up", "body", "down interrupted", "after interrupted"},
			says:   []string{"meshconform: cleanup: boom\n"}},
		{name: "Up fails: 1, no body, no Down (Up cleaned up), no closing lines", upErr: errors.New("preflight: nope"), code: 1,
			events: []string{"up"},
			says:   []string{"meshconform: preflight: nope\n"}},
		{name: "Up interrupted: 130", cancelFirst: true, upErr: context.Canceled, code: ExitInterrupted,
			events:  []string{"up"},
			saysNot: []string{"interrupted: cleaning up"}},
		{name: "state not saved: no body, ended as failed", body: 0, unsaved: true, code: 1,
			events: []string{"up", "down failed", "after failed"},
			says:   []string{"meshconform: saving the run state: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			if tc.unsaved {
				file := filepath.Join(runDir, "file")
				os.WriteFile(file, nil, 0o600)
				runDir = filepath.Join(file, "run") // under a file: no directory can be made
			}
			f := &fakeRun{st: State{RunID: "r1", Context: "kind-mc", RunDir: runDir}, upErr: tc.upErr, downErr: tc.downErr}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelFirst {
				cancel()
			}
			var log strings.Builder
			code := Session(ctx, settings.Settings{}, &log, func(ctx context.Context, st State) int {
				f.events = append(f.events, "body")
				// The suites read the state from the file, so it is there before they run.
				if saved, err := LoadState(StatePath(st.RunDir)); err != nil || saved.RunID != "r1" {
					t.Errorf("the state is not saved before the body runs: run %q, %v", saved.RunID, err)
				}
				if tc.cancel {
					cancel()
				}
				return tc.body
			}, f.options()...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if !slices.Equal(f.events, tc.events) {
				t.Errorf("events %q, want %q", f.events, tc.events)
			}
			for _, want := range tc.says {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
			for _, unwanted := range tc.saysNot {
				if strings.Contains(log.String(), unwanted) {
					t.Errorf("log has %q:\n%s", unwanted, log.String())
				}
			}
		})
	}
}

// Start as `up` uses it: the run is up and saved, and nothing ends it.
func TestStartLeavesTheRunUp(t *testing.T) {
	f := &fakeRun{st: State{RunID: "r1", Context: "kind-mc", RunDir: t.TempDir()}}
	st, code := Start(context.Background(), settings.Settings{}, nil, f.options()...)
	if code != 0 || st.RunID != "r1" || !slices.Equal(f.events, []string{"up"}) {
		t.Fatalf("exit %d, state %+v, events %q", code, st, f.events)
	}
	if _, err := LoadState(StatePath(st.RunDir)); err != nil {
		t.Errorf("state not saved: %v", err)
	}
}

// End, as a suite that owns its run calls it: the outcome it is given reaches Down, and a
// failure is printed and returned.
func TestEnd(t *testing.T) {
	f := &fakeRun{st: State{RunID: "r1"}, downErr: errors.New("boom")}
	var log strings.Builder
	_, err := End(context.Background(), f.st, Interrupted, &log, f.options()...)
	if err == nil || log.String() != "meshconform: cleanup: boom\n" || !slices.Equal(f.events, []string{"down interrupted"}) {
		t.Errorf("err %v, log %q, events %q", err, log.String(), f.events)
	}
}

// The real Up and Down behind a Session. Up stops at a dead engine's preflight: 1, no body.
// Down on a kind cluster the run created, with no docker to delete it: its own message carries
// the outcome, and its failure makes a passing run exit 1.
func TestSessionWithTheRealUpAndDown(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "docker")
	os.WriteFile(bin, []byte(deadEngine), 0o755)
	s := load(t, map[string]string{"KIND_CONFIG": kindtest.FreePortsConfig(t)})
	var log strings.Builder
	ran := false
	code := Session(context.Background(), s, &log, func(context.Context, State) int { ran = true; return 0 },
		WithPreflight(preflight.Options{
			Docker: cluster.Docker{Path: bin},
			Charts: func(context.Context, settings.Settings) error { return nil },
		}))
	if code != 1 || ran || !strings.Contains(log.String(), "meshconform: preflight: 1 problem(s); nothing was created:") {
		t.Errorf("dead engine: exit %d, body ran %v, log:\n%s", code, ran, log.String())
	}

	t.Setenv("PATH", t.TempDir()) // no kind, no docker
	s = load(t, map[string]string{"CLUSTER_NAME": "mc", "KEEP_CLUSTER": "on-failure"})
	created := State{RunID: "r1", Settings: s, ClusterName: "mc", CreatedCluster: true, Context: "kind-mc", RunDir: t.TempDir()}
	up := withUpDown(func(context.Context, settings.Settings, io.Writer, ...Option) (State, error) { return created, nil }, nil)
	for _, tc := range []struct {
		body, code int
		says       []string
	}{
		{0, 1, []string{"meshconform: deleting kind cluster mc (KEEP_CLUSTER=on-failure, run passed) ...", "meshconform: cleanup: "}},
		{2, 2, []string{"meshconform: kept kind cluster mc (KEEP_CLUSTER=on-failure, run failed)"}},
	} {
		log.Reset()
		start := time.Now()
		code := Session(context.Background(), s, &log, func(context.Context, State) int { return tc.body }, up)
		if code != tc.code || time.Since(start) > 10*time.Second {
			t.Errorf("body %d: exit %d after %s, want %d:\n%s", tc.body, code, time.Since(start), tc.code, log.String())
		}
		for _, want := range tc.says {
			if !strings.Contains(log.String(), want) {
				t.Errorf("body %d: log lacks %q:\n%s", tc.body, want, log.String())
			}
		}
	}
}

// What the end of a run measures reaches AfterDown: Down's wall time and the part of it inside
// the waiter (Down's ctx is metered), and the run's total from the start of Up. Up records its
// phases in the state as they run, the failed one included.
func TestTheEndIsMeasured(t *testing.T) {
	started := time.Now().Add(-time.Minute)
	var ended Ended
	down := withUpDown(func(context.Context, settings.Settings, io.Writer, ...Option) (State, error) {
		return State{RunID: "r1", Context: "kind-mc", RunDir: t.TempDir(), Started: started}, nil
	}, func(ctx context.Context, _ State, _ Outcome, _ io.Writer, _ ...Option) error {
		time.Sleep(20 * time.Millisecond) // outside the waiter
		return wait.Throughout(ctx, 30*time.Millisecond, 10*time.Millisecond, func(context.Context, int, time.Duration) error { return nil })
	})
	code := Session(context.Background(), settings.Settings{}, io.Discard, func(context.Context, State) int { return 0 },
		down, AfterDown(func(e Ended) { ended = e }))
	c := ended.Cleanup
	if code != 0 || c.Name != report.PhaseCleanup || c.DurationSeconds < 0.05 || c.WaitSeconds == nil || *c.WaitSeconds < 0.03 || *c.WaitSeconds > c.DurationSeconds-0.015 {
		waited := "not measured"
		if c.WaitSeconds != nil {
			waited = fmt.Sprintf("%.3fs", *c.WaitSeconds)
		}
		t.Errorf("exit %d, cleanup %.3fs (waited %s): want at least 50ms, of which at least 30ms waiting and the 20ms sleep not", code, c.DurationSeconds, waited)
	}
	if ended.Total < time.Minute || ended.State.RunID != "r1" || ended.Outcome != Passed {
		t.Errorf("ended %+v: want the total from the state's start (over a minute), the state, passed", ended)
	}

	bin := filepath.Join(t.TempDir(), "docker")
	os.WriteFile(bin, []byte(deadEngine), 0o755)
	s := load(t, map[string]string{"KIND_CONFIG": kindtest.FreePortsConfig(t)})
	st, err := Up(context.Background(), s, io.Discard, WithPreflight(preflight.Options{
		Docker: cluster.Docker{Path: bin},
		Charts: func(context.Context, settings.Settings) error { return nil },
	}))
	if err == nil || len(st.Phases) != 1 || st.Phases[0].Name != report.PhasePreflight || st.Phases[0].DurationSeconds <= 0 ||
		st.Phases[0].WaitSeconds == nil || *st.Phases[0].WaitSeconds != 0 {
		t.Errorf("Up stopped at preflight: %v, phases %+v; want preflight alone, measured, no time in the waiter", err, st.Phases)
	}
}
