package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Docker runs the docker CLI on the host, as kind's library does.
type Docker struct {
	// Path is the docker binary; "" finds "docker" on PATH.
	Path string
}

func (d Docker) bin() string {
	if d.Path == "" {
		return "docker"
	}
	return d.Path
}

// CommandError is a docker command that failed: what ran, its exit code and what it said.
type CommandError struct {
	Command  []string
	ExitCode int // -1 when it did not exit (not found, killed)
	Stderr   string
	Err      error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Command, " "), e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + firstLines(s, 3)
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " | ")
}

// Run runs docker with args and returns its stdout.
func (d Docker) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.bin(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A docker CLI stuck on a dead socket must not outlive ctx by more than this.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	ce := &CommandError{Command: append([]string{d.bin()}, args...), ExitCode: -1, Stderr: stderr.String(), Err: err}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		ce.ExitCode = exitErr.ExitCode()
	}
	if ctx.Err() != nil {
		ce.Err = fmt.Errorf("%v: %w", err, context.Cause(ctx))
	}
	return stdout.Bytes(), ce
}

// ServerVersion asks the Docker engine for its version: it fails when the CLI is missing or
// no engine answers.
func (d Docker) ServerVersion(ctx context.Context) (string, error) {
	out, err := d.Run(ctx, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		return "", fmt.Errorf("%s version: no server version in the output", d.bin())
	}
	return v, nil
}

// HasImage reports whether the host has image (docker image inspect).
func (d Docker) HasImage(ctx context.Context, image string) (bool, error) {
	_, err := d.Run(ctx, "image", "inspect", "--format", "{{.Id}}", image)
	if err == nil {
		return true, nil
	}
	var ce *CommandError
	if errors.As(err, &ce) && ce.ExitCode == 1 && isNoSuchImage(ce.Stderr) {
		return false, nil
	}
	return false, err
}

func isNoSuchImage(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "no such image") || strings.Contains(s, "no such object")
}

// Pull pulls image. Errors a retry cannot fix (unknown image, denied) are Permanent.
func (d Docker) Pull(ctx context.Context, image string) error {
	_, err := d.Run(ctx, "pull", "--quiet", image)
	if err != nil && pullIsPermanent(err) {
		return Permanent(err)
	}
	return err
}

// pullIsPermanent tells a missing or forbidden image (retrying cannot help) from a network or
// registry hiccup.
func pullIsPermanent(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	s := strings.ToLower(ce.Stderr)
	for _, m := range []string{"manifest unknown", "not found", "repository does not exist", "pull access denied", "unauthorized", "invalid reference format"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// Save writes images to a tar archive at path (docker save -o).
func (d Docker) Save(ctx context.Context, path string, images ...string) error {
	_, err := d.Run(ctx, append([]string{"save", "-o", path}, images...)...)
	return err
}
