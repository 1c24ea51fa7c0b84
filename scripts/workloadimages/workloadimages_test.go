package workloadimages

import (
	"meshconform/internal/scripttest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakes puts on PATH a docker whose engine answers and whose image inspect prints the file
// "label" (or fails when it is absent), and a go, debootstrap, chroot and apt-get that record
// being called and fail.
func fakes(t *testing.T) (bin, calls string) {
	t.Helper()
	b := scripttest.NewBin(t, map[string]string{
		"docker": "#!/bin/sh\necho \"docker $*\" >>CALLS\ncase \"$1 $2\" in\n" +
			"version*) echo 20.10.24 ;;\n" +
			"\"image inspect\") " + `label="$(dirname "$0")/label"; [ -f "$label" ] || { echo "Error: No such image" >&2; exit 1; }; cat "$label" ;;` + "\n" +
			"*) exit 1 ;;\nesac\n",
	}, "go", "debootstrap", "chroot", "apt-get")
	return b.Dir, b.Calls
}

func run(t *testing.T, bin string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	return scripttest.Bin{Dir: bin, Calls: filepath.Join(bin, "calls")}.Run(t, "../workload-images.sh", env...)
}

func TestRefusesWithoutDockerHost(t *testing.T) {
	bin, calls := fakes(t)
	scripttest.RefusesWithoutDockerHost(t, scripttest.Bin{Dir: bin, Calls: calls}, "../workload-images.sh", "MESHCONFORM_WORKLOAD_CACHE="+t.TempDir())
}

// Each step's key is stable: a run fails at the first missing artifact and names its key; once
// every key's directory is complete and the engine holds images with this script's labels, a
// run prints the manifests' image names and builds, imports and replaces nothing. An image under
// one of those names that the script did not build (no label) is kept.
func TestWarmCacheBuildsNothing(t *testing.T) {
	bin, calls := fakes(t)
	cache := t.TempDir()
	env := []string{"DOCKER_HOST=unix:///nonexistent.sock", "MESHCONFORM_WORKLOAD_CACHE=" + cache}
	// The engine holds each name, without this script's label (pulled or loaded).
	if err := os.WriteFile(filepath.Join(bin, "label"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	building := regexp.MustCompile(`workload-images: ([\w-]+): building \(([^)]+)\)`)
	var steps []string
	var stderr, stdout string
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatalf("still building after %d runs: %v", i, steps)
		}
		var code int
		os.Remove(calls)
		stdout, stderr, code = run(t, bin, env...)
		m := building.FindStringSubmatch(stderr)
		if m == nil {
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, stderr)
			}
			break
		}
		if code == 0 {
			t.Fatalf("%s built with fakes: %s", m[1], stderr)
		}
		steps = append(steps, m[1])
		dir := filepath.Join(cache, "artifacts", m[1], m[2])
		if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{".done": "", "curl-version": "7.88.1\n", "go-httpbin": ""}
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := strings.Join(steps, " "), "curl-rootfs nginx-rootfs httpbin"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	// Those are kept, not imported over.
	if !strings.Contains(stderr, "image docker.io/curlimages/curl:8.11.1: in the engine and not built here (pulled or loaded): kept") {
		t.Errorf("stderr %s", stderr)
	}
	want := "docker.io/curlimages/curl:8.11.1\ndocker.io/mccutchen/go-httpbin:v2.15.0\ndocker.io/library/nginx:1.27.3-alpine\n"
	if stdout != want {
		t.Errorf("stdout %q, want the manifests' names %q", stdout, want)
	}
	b, _ := os.ReadFile(calls)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, "docker version") && !strings.HasPrefix(line, "docker image inspect") {
			t.Errorf("warm run called %q", line)
		}
	}
}
