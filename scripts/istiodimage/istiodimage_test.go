package istiodimage

import (
	"meshconform/internal/scripttest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"meshconform/internal/istiosrc"
)

// fakes puts on PATH a docker whose engine answers and has no image, and a go that runs the real
// go for `go run` (the script reads the branches from internal/istiosrc) and otherwise records
// being called and fails.
func fakes(t *testing.T) (bin, calls string) {
	t.Helper()
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	b := scripttest.NewBin(t, map[string]string{
		"docker": "#!/bin/sh\necho \"docker $*\" >>CALLS\ncase \"$1\" in version) echo 20.10.24;; image) exit 1;; import) cat >/dev/null;; esac\nexit 0\n",
		"go":     "#!/bin/sh\n[ \"$1\" = run ] && exec " + realGo + " \"$@\"\necho \"go $*\" >>CALLS\nexit 1\n",
	})
	return b.Dir, b.Calls
}

func run(t *testing.T, bin string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	return scripttest.Bin{Dir: bin, Calls: filepath.Join(bin, "calls")}.Run(t, "../istiod-image.sh", env...)
}

func TestRefusesWithoutDockerHost(t *testing.T) {
	bin, calls := fakes(t)
	scripttest.RefusesWithoutDockerHost(t, scripttest.Bin{Dir: bin, Calls: calls}, "../istiod-image.sh", "MESHCONFORM_ISTIOD_CACHE="+t.TempDir())
}

// Every pinned branch is built under a key naming its pseudo-version; a failing build does not
// stop the next branch. Once every key's directory is complete (pilot-discovery, pilot-agent,
// echo's server and client), a run builds nothing and imports each under its own name:
// <hub>/pilot:<branch version>, <hub>/pilot-agent:<branch version>, the agent as
// Dockerfile.proxyv2 runs it (no USER), and <hub>/app:<branch version> as Dockerfile.app.
func TestBranchesFromIstiosrcAndWarmCache(t *testing.T) {
	bin, calls := fakes(t)
	cache := t.TempDir()
	env := []string{"DOCKER_HOST=unix:///nonexistent.sock", "MESHCONFORM_ISTIOD_CACHE=" + cache, "ISTIO_HUB=example.test/istio"}
	_, stderr, code := run(t, bin, env...)
	keys := regexp.MustCompile(`istiod-image: pilot: building \(([^)]+)\)`).FindAllStringSubmatch(stderr, -1)
	if code != 1 || len(keys) != len(istiosrc.Branches) || !strings.Contains(stderr, "not built: ") {
		t.Fatalf("cold run: exit %d, want 1 with every branch attempted; stderr:\n%s", code, stderr)
	}
	for i, b := range istiosrc.Branches {
		if !strings.HasPrefix(keys[i][1], b.Pseudo+"-") {
			t.Errorf("branch %s built under key %q", b.Name, keys[i][1])
		}
		if !strings.Contains(stderr, b.Name+" ("+b.Pseudo+")") {
			t.Errorf("failure of %s not named: %s", b.Name, stderr)
		}
		for step, bins := range map[string][]string{"pilot": {"pilot-discovery"}, "agent": {"pilot-agent"}, "echo": {"server", "client"}} {
			dir := filepath.Join(cache, "artifacts", step, keys[i][1])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range append([]string{".done"}, bins...) {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	os.Remove(calls)
	stdout, stderr, code := run(t, bin, env...)
	if code != 0 {
		t.Fatalf("warm run: exit %d, stderr:\n%s", code, stderr)
	}
	got, _ := os.ReadFile(calls)
	if strings.Contains(string(got), "\ngo ") || strings.HasPrefix(string(got), "go ") || strings.Contains(stderr, "building") {
		t.Errorf("warm run built something: calls\n%s\nstderr\n%s", got, stderr)
	}
	var want string
	for _, b := range istiosrc.Branches {
		ref, agent, app := "example.test/istio/pilot:"+b.Version, "example.test/istio/pilot-agent:"+b.Version, "example.test/istio/app:"+b.Version
		want += b.Name + " " + b.Version + " " + ref + " " + agent + " " + app + "\n"
		imports := map[string]*regexp.Regexp{
			ref:   regexp.MustCompile(`(?m)^docker import .*USER 1337:1337.*ENTRYPOINT \["/usr/local/bin/pilot-discovery"\].* - ` + regexp.QuoteMeta(ref) + `$`),
			agent: regexp.MustCompile(`(?m)^docker import .*ENTRYPOINT \["/usr/local/bin/pilot-agent"\].* - ` + regexp.QuoteMeta(agent) + `$`),
			// Istio's echo image (pkg/test/echo/docker/Dockerfile.app): server the entrypoint, USER 1338.
			app: regexp.MustCompile(`(?m)^docker import .*USER 1338.*ENTRYPOINT \["/usr/local/bin/server"\].* - ` + regexp.QuoteMeta(app) + `$`),
		}
		for r, re := range imports {
			if !re.Match(got) {
				t.Errorf("%s not imported as wanted (%s); calls:\n%s", r, re, got)
			}
		}
		if m := regexp.MustCompile(`(?m)^docker import .* - ` + regexp.QuoteMeta(agent) + `$`).Find(got); strings.Contains(string(m), "USER") {
			t.Errorf("the agent image sets a USER (Dockerfile.proxyv2 sets none): %s", m)
		}
	}
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}
