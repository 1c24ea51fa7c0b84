package localengine

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakes puts on PATH a docker CLI whose engine answers (or not), and an apt-get, dockerd and
// runc that record being called: the script must call none of them when another engine answers.
func fakes(t *testing.T, engineAnswers bool) (bin, calls string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	calls = filepath.Join(bin, "calls")
	docker := "#!/bin/sh\necho \"docker $*\" >>" + calls + "\n"
	if engineAnswers {
		docker += "case \"$*\" in *version*) echo 28.1.1; exit 0;; esac\nexit 0\n"
	} else {
		docker += "echo 'Cannot connect to the Docker daemon' >&2; exit 1\n"
	}
	files := map[string]string{"docker": docker}
	for _, name := range []string{"apt-get", "dockerd", "runc", "containerd", "setsid"} {
		files[name] = "#!/bin/sh\necho \"" + name + " $*\" >>" + calls + "\nexit 1\n"
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, calls
}

func run(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("../local-engine.sh", args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_HOST=")
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// On a machine whose Docker answers, start prints nothing (the caller keeps its engine), exits 0,
// and creates, installs and starts nothing.
func TestStartTouchesNothingWhenAnEngineAnswers(t *testing.T) {
	bin, calls := fakes(t, true)
	state := filepath.Join(t.TempDir(), "engine")
	for _, host := range []string{"", "tcp://docker.example:2376"} {
		stdout, stderr, code := run(t, bin, []string{"MESHCONFORM_ENGINE_DIR=" + state, "DOCKER_HOST=" + host}, "start")
		if code != 0 || stdout != "" {
			t.Fatalf("DOCKER_HOST=%q: exit %d, stdout %q (stderr %s); want exit 0 and no output", host, code, stdout, stderr)
		}
		if !strings.Contains(stderr, "already answers") {
			t.Errorf("stderr does not say why nothing was done: %s", stderr)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state directory was created: %v", err)
	}
	got, _ := os.ReadFile(calls)
	for _, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		// The script asks the caller's engine for its version, and nothing else.
		if line != "docker version --format {{.Server.Version}}" {
			t.Errorf("called %q", line)
		}
	}
}

// With no engine of its own, status says so (exit 3, nothing on stdout) and stop is a no-op that
// succeeds; neither installs, starts or signals anything.
func TestStatusAndStopWithoutAnEngine(t *testing.T) {
	bin, calls := fakes(t, false)
	state := filepath.Join(t.TempDir(), "engine")
	env := []string{"MESHCONFORM_ENGINE_DIR=" + state}
	if stdout, stderr, code := run(t, bin, env, "status"); code != 3 || stdout != "" {
		t.Errorf("status: exit %d, stdout %q, stderr %s; want exit 3, no output", code, stdout, stderr)
	}
	if stdout, stderr, code := run(t, bin, env, "stop"); code != 0 || stdout != "" || !strings.Contains(stderr, "stopped") {
		t.Errorf("stop: exit %d, stdout %q, stderr %s; want exit 0", code, stdout, stderr)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state directory was created: %v", err)
	}
	if got, _ := os.ReadFile(calls); bytes.Contains(got, []byte("apt-get")) || bytes.Contains(got, []byte("dockerd")) {
		t.Errorf("called:\n%s", got)
	}
}

// A stale pid file naming a process that is not our dockerd must not make stop signal it.
func TestStopIgnoresAStalePidFile(t *testing.T) {
	bin, _ := fakes(t, false)
	state := t.TempDir()
	victim := exec.Command("sleep", "30")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer victim.Process.Kill()
	pid := strconv.Itoa(victim.Process.Pid)
	if err := os.WriteFile(filepath.Join(state, "dockerd.pid"), []byte(pid+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, bin, []string{"MESHCONFORM_ENGINE_DIR=" + state}, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, stderr)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("stop signalled pid %s, which is not our dockerd: %v", pid, err)
	}
}
