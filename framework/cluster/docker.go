package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
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

// Save writes images to a tar archive at path (docker save -o). A platform ("linux/arm64")
// saves that platform only (docker save --platform, engine API 1.48 or newer); "" saves all
// the engine holds.
func (d Docker) Save(ctx context.Context, path, platform string, images ...string) error {
	args := []string{"save", "-o", path}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	_, err := d.Run(ctx, append(args, images...)...)
	return err
}

// APIVersion is the engine's API version (docker version's Server.APIVersion, e.g. "1.51").
func (d Docker) APIVersion(ctx context.Context) (string, error) {
	out, err := d.Run(ctx, "version", "--format", "{{.Server.APIVersion}}")
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(out))
	if _, _, ok := parseAPIVersion(v); !ok {
		return "", fmt.Errorf("%s version: engine API version %q is not MAJOR.MINOR", d.bin(), v)
	}
	return v, nil
}

// SavePlatformAPI is the first engine API version whose `docker save` takes --platform
// (docs.docker.com/reference/cli/docker/image/save: "--platform  API 1.48+").
const SavePlatformAPI = "1.48"

// APIAtLeast reports whether the engine API version v is min or newer ("1.100" > "1.48").
func APIAtLeast(v, min string) bool {
	vMaj, vMin, ok1 := parseAPIVersion(v)
	mMaj, mMin, ok2 := parseAPIVersion(min)
	if !ok1 || !ok2 {
		return false
	}
	return vMaj > mMaj || vMaj == mMaj && vMin >= mMin
}

func parseAPIVersion(v string) (int, int, bool) {
	maj, min, ok := strings.Cut(strings.TrimSpace(v), ".")
	if !ok {
		return 0, 0, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	return a, b, err1 == nil && err2 == nil && a >= 0 && b >= 0
}

// EngineInfo is what `docker info --format '{{json .}}'` says that matters to a kind run.
// kind itself reads CgroupVersion from the same output (sigs.k8s.io/kind
// pkg/cluster/internal/providers/docker/provider.go, dockerInfo).
type EngineInfo struct {
	ServerVersion string `json:"ServerVersion"`
	OSType        string `json:"OSType"`       // "linux"
	Architecture  string `json:"Architecture"` // uname -m style: "x86_64", "aarch64"
	CgroupVersion string `json:"CgroupVersion"`
	CgroupDriver  string `json:"CgroupDriver"`
	Driver        string `json:"Driver"`
	// DriverStatus holds [key, value] pairs. Under the containerd image store it has
	// ["driver-type", "io.containerd.snapshotter.v1"] (docker/for-mac#7607: `docker info`
	// prints "Storage Driver: overlayfs / driver-type: io.containerd.snapshotter.v1"; with a
	// graph driver it prints "Storage Driver: overlay2" and no driver-type).
	DriverStatus [][]string `json:"DriverStatus"`
}

// Info asks the engine for its EngineInfo.
func (d Docker) Info(ctx context.Context) (EngineInfo, error) {
	out, err := d.Run(ctx, "info", "--format", "{{json .}}")
	if err != nil {
		return EngineInfo{}, err
	}
	var info EngineInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return EngineInfo{}, fmt.Errorf("%s info: %w", d.bin(), err)
	}
	return info, nil
}

// ContainerdSnapshotter is the DriverStatus driver-type of Docker's containerd image store.
const ContainerdSnapshotter = "io.containerd.snapshotter.v1"

// ContainerdStore reports whether the engine keeps images in containerd (Docker Desktop's
// default, fresh Docker Engine 29 installs, OrbStack), where `docker save` of a multi-arch
// image writes an index naming platforms whose blobs it lacks (kind issue 3795).
func (i EngineInfo) ContainerdStore() bool {
	for _, kv := range i.DriverStatus {
		if len(kv) == 2 && kv[0] == "driver-type" && kv[1] == ContainerdSnapshotter {
			return true
		}
	}
	return false
}

// ImageStore names the engine's image store for people.
func (i EngineInfo) ImageStore() string {
	switch {
	case i.ContainerdStore():
		return "containerd image store (" + i.Driver + " snapshotter)"
	case i.Driver != "":
		return "graph driver " + i.Driver
	}
	return "unknown"
}
