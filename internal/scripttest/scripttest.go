// Package scripttest runs the project's image scripts (scripts/*-image(s).sh) against fake
// commands on PATH, for the tests that prove their refusals and cache keys without an engine.
package scripttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bin is a directory of fake commands put first on PATH, and the file they append calls to.
type Bin struct{ Dir, Calls string }

// NewBin writes the fake commands: scripts by name (a body that may append to b.Calls through
// the placeholder CALLS), plus, for each name in failing, one that records its call and exits 1.
func NewBin(t testing.TB, scripts map[string]string, failing ...string) Bin {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := Bin{Dir: dir, Calls: filepath.Join(dir, "calls")}
	files := map[string]string{}
	for _, name := range failing {
		files[name] = "#!/bin/sh\necho \"" + name + " $*\" >>" + b.Calls + "\nexit 1\n"
	}
	for name, body := range scripts {
		files[name] = strings.ReplaceAll(body, "CALLS", b.Calls)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// CallLog is what the fake commands were called with, one call a line.
func (b Bin) CallLog() string {
	data, _ := os.ReadFile(b.Calls)
	return string(data)
}

// Run runs script (a path relative to the test's package) with b first on PATH and env added.
func (b Bin) Run(t testing.TB, script string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "PATH="+b.Dir+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// RefusesWithoutDockerHost checks that script, with DOCKER_HOST empty, exits 1 naming the fix
// before it calls any command of b (so it neither builds nor touches an engine).
func RefusesWithoutDockerHost(t *testing.T, b Bin, script string, env ...string) {
	t.Helper()
	_, stderr, code := b.Run(t, script, append([]string{"DOCKER_HOST="}, env...)...)
	if code != 1 || !strings.Contains(stderr, `DOCKER_HOST is not set: export "$(scripts/local-engine.sh start)" first`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if calls := b.CallLog(); calls != "" {
		t.Errorf("called %s", calls)
	}
}
