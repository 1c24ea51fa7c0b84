// Package probe runs curl and openssl where the traffic must start (a pod's container, or this
// machine in tests) and turns what they print into an Outcome: the evidence a failure message
// and the conformance report show. It never trusts one channel alone: exec transports lose
// exit codes and stdout, so curl's own JSON, its `curl: (N)` line and the transport's exit
// code are read together, and an empty stdout is retried, not believed.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Executor runs a command somewhere and returns what it printed. A non-zero exit is not an
// error: ExitCode carries it. An error means the command could not be run or the transport
// failed; ExecResult may still hold what was seen before that.
type Executor interface {
	Exec(ctx context.Context, cmd []string) (ExecResult, error)
	// String says where commands run, e.g. "local" or "pod ns/name container curl".
	String() string
}

// ExecResult is what a command printed and how it exited.
type ExecResult struct {
	Stdout, Stderr []byte
	// ExitCode is the command's exit status; -1 when the transport lost it.
	ExitCode int
}

// MissingBinaryError says a tool the probe needs is not where the command ran.
type MissingBinaryError struct {
	Binary string
	Where  string
	Err    error
}

func (e *MissingBinaryError) Error() string {
	fix := "use an image that ships " + e.Binary
	if e.Where == localWhere {
		fix = "install it (apt-get install curl openssl)"
	}
	return fmt.Sprintf("%s not found on %s: %v; %s", e.Binary, e.Where, e.Err, fix)
}

func (e *MissingBinaryError) Unwrap() error { return e.Err }

const localWhere = "local"

// Local runs commands on this machine with os/exec; tier-0 tests use it against loopback
// servers with the real curl and openssl.
type Local struct {
	// Env, when set, replaces the environment of the command (e.g. to drop proxy variables).
	Env []string
}

func (Local) String() string { return localWhere }

// Exec implements Executor.
func (l Local) Exec(ctx context.Context, cmd []string) (ExecResult, error) {
	res := ExecResult{ExitCode: -1}
	if len(cmd) == 0 {
		return res, errors.New("local exec: empty command")
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	// On cancel, kill the whole process group: a `sh -c` child would otherwise hold the
	// output pipes open and Wait would block past the deadline. WaitDelay is the backstop.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	if l.Env != nil {
		c.Env = l.Env
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
		return res, nil
	case errors.Is(err, exec.ErrNotFound):
		return res, &MissingBinaryError{Binary: cmd[0], Where: localWhere, Err: err}
	case ctx.Err() != nil:
		return res, fmt.Errorf("local exec %s: %w (after %v)", cmd[0], ctx.Err(), err)
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	default:
		return res, fmt.Errorf("local exec %s: %w", cmd[0], err)
	}
}

var reRuntimeNotFound = regexp.MustCompile(`exec: "([^"]+)": executable file not found`)

// missingBinary recognises "not found" however the transport reports it: os/exec's
// ErrNotFound (Local), the container runtime's "executable file not found" (pod exec), or a
// shell's exit 127 with "not found" on stderr (commands run through sh -c).
func missingBinary(binary, where string, res ExecResult, err error) error {
	var mb *MissingBinaryError
	if errors.As(err, &mb) {
		return mb
	}
	if err != nil && strings.Contains(err.Error(), "executable file not found") {
		// The runtime names what it could not find: `exec: "sh": executable file not found`.
		if m := reRuntimeNotFound.FindStringSubmatch(err.Error()); m != nil {
			binary = m[1]
		}
		return &MissingBinaryError{Binary: binary, Where: where, Err: err}
	}
	if err == nil && res.ExitCode == 127 && bytes.Contains(res.Stderr, []byte("not found")) {
		return &MissingBinaryError{Binary: binary, Where: where, Err: fmt.Errorf("exit 127: %s", strings.TrimSpace(string(res.Stderr)))}
	}
	return nil
}
