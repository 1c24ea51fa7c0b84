package nodeimage

import (
	"meshconform/internal/scripttest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const kubeadmImages = `registry.k8s.io/kube-apiserver:v1.37.2
registry.k8s.io/kube-controller-manager:v1.37.2
registry.k8s.io/kube-scheduler:v1.37.2
registry.k8s.io/kube-proxy:v1.37.2
registry.k8s.io/coredns/coredns:v1.14.6
registry.k8s.io/pause:3.10.2
registry.k8s.io/etcd:3.7.0-0
`

// fakes puts on PATH a docker whose engine answers and has every image, and a go, apt-get,
// chroot, gcc and mount that record being called and fail.
func fakes(t *testing.T) (bin, calls string) {
	t.Helper()
	b := scripttest.NewBin(t, map[string]string{
		"docker": "#!/bin/sh\necho \"docker $*\" >>CALLS\ncase \"$1\" in version) echo 20.10.24;; esac\nexit 0\n",
	}, "go", "apt-get", "chroot", "gcc", "mount", "dpkg")
	return b.Dir, b.Calls
}

func run(t *testing.T, bin string, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	return scripttest.Bin{Dir: bin, Calls: filepath.Join(bin, "calls")}.Run(t, "../node-image.sh", env...)
}

func TestRefusesWithoutDockerHost(t *testing.T) {
	bin, calls := fakes(t)
	scripttest.RefusesWithoutDockerHost(t, scripttest.Bin{Dir: bin, Calls: calls}, "../node-image.sh", "MESHCONFORM_NODE_CACHE="+t.TempDir())
}

// Each step's cache key is stable: a run fails at the first missing artifact and names its key;
// once every key's directory is complete, a run prints the node image and builds nothing.
func TestWarmCacheBuildsNothing(t *testing.T) {
	bin, calls := fakes(t)
	cache := t.TempDir()
	env := []string{"DOCKER_HOST=unix:///nonexistent.sock", "MESHCONFORM_NODE_CACHE=" + cache}
	building := regexp.MustCompile(`node-image: (\w+): building \(([^)]+)\)`)
	var steps []string
	for i := 0; ; i++ {
		if i > 12 {
			t.Fatalf("still building after %d runs: %v", i, steps)
		}
		os.Remove(calls)
		stdout, stderr, code := run(t, bin, env...)
		m := building.FindStringSubmatch(stderr)
		if m == nil {
			if code != 0 || !regexp.MustCompile(`^meshconform\.local/kind-node-[0-9a-f]{10}:v1\.37\.2\n$`).MatchString(stdout) {
				t.Fatalf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
			}
			break
		}
		if code == 0 {
			t.Fatalf("%s built with fakes: %s", m[1], stderr)
		}
		steps = append(steps, m[1])
		dir := filepath.Join(cache, "artifacts", m[1], m[2])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if m[1] == "kube" {
			kubeadm := "#!/bin/sh\ncat <<'EOF'\n" + kubeadmImages + "EOF\n"
			if err := os.WriteFile(filepath.Join(dir, "kubeadm"), []byte(kubeadm), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".done"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := "containerd runc crictl cni base rootfs kube coredns images node"
	if got := strings.Join(steps, " "); got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	b, _ := os.ReadFile(calls)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(line, "docker version") && !strings.HasPrefix(line, "docker image inspect") &&
			!strings.HasPrefix(line, "docker images") {
			t.Errorf("warm run called %q", line)
		}
	}
}

// A root filesystem the caller brings must boot systemd; one that does not is named before
// anything is built from it.
func TestRefusesARootfsWithoutSystemd(t *testing.T) {
	bin, _ := fakes(t)
	cache := t.TempDir()
	for _, step := range []string{"containerd/v2.3.4-r1", "runc/v1.4.3-r1", "crictl/v1.37.0-r1", "cni/v1.9.1-r1"} {
		dir := filepath.Join(cache, "artifacts", step)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ".done"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rootfs := filepath.Join(t.TempDir(), "no-rootfs")
	_, stderr, code := run(t, bin, "DOCKER_HOST=unix:///nonexistent.sock", "MESHCONFORM_NODE_CACHE="+cache, "MESHCONFORM_NODE_ROOTFS="+rootfs)
	if want := "MESHCONFORM_NODE_ROOTFS=" + rootfs + " holds no systemd"; code == 0 || !strings.Contains(stderr, want) || strings.Contains(stderr, "building") {
		t.Errorf("exit %d, stderr:\n%s\nwant a refusal with %q and nothing built", code, stderr, want)
	}
}
