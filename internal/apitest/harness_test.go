package apitest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// writeFakeAssets writes shell scripts named like the binaries.
func writeFakeAssets(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range Binaries {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// strayChildren describes running child process groups other than the shared environment's
// and the reaper: what a failed Start must not leave behind.
func strayChildren() []string {
	var out []string
	for _, pid := range childGroups() {
		if shared.reaper != nil && pid == shared.reaper.cmd.Process.Pid {
			continue
		}
		if shared.env != nil && shared.env.kcm != nil && pid == shared.env.kcm.pid() {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if strings.Contains(string(stat), ") Z ") {
			continue // exited, not yet waited for: not running
		}
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if shared.env != nil && shared.env.plane != nil {
			if strings.Contains(string(cmdline), shared.env.plane.Etcd.DataDir) ||
				strings.Contains(string(cmdline), shared.env.plane.APIServer.CertDir) {
				continue
			}
		}
		out = append(out, fmt.Sprintf("pid %d %q", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// assertNoStrayChildren polls (a signalled process takes a moment to go) until no stray
// child is running, or fails after a deadline naming them.
func assertNoStrayChildren(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		stray := strayChildren()
		if len(stray) == 0 {
			return
		}
		select {
		case <-deadline.C:
			t.Errorf("child processes still running after a failed Start: %s", strings.Join(stray, "; "))
			return
		case <-tick.C:
		}
	}
}

func TestStartWithoutBinariesFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	began := time.Now()
	env, err := Start(context.Background(), Options{AssetsDir: dir})
	took := time.Since(began)
	if err == nil {
		_ = env.Stop()
		t.Fatalf("Start(%s) with an empty assets dir succeeded", dir)
	}
	t.Logf("Start error (after %s):\n%v", took, err)
	for _, want := range []string{
		dir, "lacks etcd, kube-apiserver, kube-controller-manager", "scripts/envtest-assets.sh", "KUBEBUILDER_ASSETS=",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
	if took > 2*time.Second {
		t.Errorf("Start took %s to notice missing binaries", took)
	}

	// Only one missing: the error names just that one.
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Start(context.Background(), Options{AssetsDir: dir})
	if err == nil || !strings.Contains(err.Error(), "lacks kube-controller-manager (") {
		t.Errorf("with only kube-controller-manager missing, Start error = %v", err)
	}

	if err := CheckAssets(""); err == nil || !strings.Contains(err.Error(), "KUBEBUILDER_ASSETS is not set") {
		t.Errorf("CheckAssets(\"\") = %v", err)
	}
}

func TestStartWithBrokenBinariesSaysWhat(t *testing.T) {
	dir := writeFakeAssets(t, "echo 'exec format error: this is not a kube binary' >&2\nexit 126\n")
	_, err := Start(context.Background(), Options{AssetsDir: dir})
	if err == nil {
		t.Fatal("Start with binaries that cannot run succeeded")
	}
	for _, want := range []string{"--version failed", "this is not a kube binary", "rm -r " + dir + " && scripts/envtest-assets.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
}

func TestStartWithCrashingEtcdReportsItsOutput(t *testing.T) {
	// Answers --version and --help (envtest reads kube-apiserver's flags), then fails the way a
	// real etcd does when its port is taken.
	dir := writeFakeAssets(t, `case "$1" in --version) echo fake 1.0; exit 0;; --help) exit 0;; esac
echo "listen tcp 127.0.0.1:2379: bind: address already in use" >&2
exit 1
`)
	began := time.Now()
	_, err := Start(context.Background(), Options{AssetsDir: dir, ComponentTimeout: 10 * time.Second})
	took := time.Since(began)
	if err == nil {
		t.Fatal("Start with a crashing etcd succeeded")
	}
	t.Logf("Start error (after %s):\n%v", took, err)
	for _, want := range []string{"etcd and kube-apiserver from " + dir + " did not start", "etcd", "address already in use", "rm -r " + dir + " && scripts/envtest-assets.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
	if took > 15*time.Second {
		t.Errorf("a crash that happens at once took %s to report", took)
	}
	assertNoStrayChildren(t)
}

func TestStartWithHangingEtcdGivesUpAtTheDeadline(t *testing.T) {
	dir := writeFakeAssets(t, `case "$1" in --version) echo fake 1.0; exit 0;; --help) exit 0;; esac
echo "waiting forever" >&2
exec sleep 300
`)
	began := time.Now()
	_, err := Start(context.Background(), Options{AssetsDir: dir, ComponentTimeout: 2 * time.Second})
	took := time.Since(began)
	if err == nil {
		t.Fatal("Start with a hanging etcd succeeded")
	}
	t.Logf("Start error (after %s):\n%v", took, err)
	for _, want := range []string{"did not start", "timeout waiting for process etcd", "waiting forever"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
	// Two attempts of 2s each, plus stopping.
	if took > 20*time.Second {
		t.Errorf("Start took %s with a 2s component timeout", took)
	}
	assertNoStrayChildren(t)
}

func TestReaperCleansUpWhenItsParentGoes(t *testing.T) {
	r, err := startReaper()
	if err != nil {
		t.Fatal(err)
	}
	victim := exec.Command("sleep", "300")
	victim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- victim.Wait() }()
	dir := t.TempDir()
	litter := filepath.Join(dir, "litter")
	if err := os.MkdirAll(filepath.Join(litter, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.watchGroup(victim.Process.Pid)
	r.watchDir(litter)

	// Closing stdin without "done" is what the parent's death looks like to the reaper.
	if err := r.abandon(); err != nil {
		t.Fatalf("reaper exited with %v", err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("victim ended with %v, want killed by SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		_ = victim.Process.Kill()
		t.Fatal("the reaper did not kill the registered process group")
	}
	if _, err := os.Stat(litter); !os.IsNotExist(err) {
		t.Errorf("the reaper left %s (stat: %v)", litter, err)
	}
}

func TestReaperLeavesAllAloneAfterDone(t *testing.T) {
	r, err := startReaper()
	if err != nil {
		t.Fatal(err)
	}
	victim := exec.Command("sleep", "300")
	victim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Process.Kill(); _ = victim.Wait() }()
	r.watchGroup(victim.Process.Pid)
	r.release()
	if err := syscall.Kill(victim.Process.Pid, 0); err != nil {
		t.Errorf("after release the registered process is gone: %v", err)
	}
}

// TestEnvWithoutAssets runs this test binary again with KUBEBUILDER_ASSETS empty: the
// tier-1 helper test must skip, and must fail when MESHCONFORM_TIER1=required.
func TestEnvWithoutAssets(t *testing.T) {
	if os.Getenv("MESHCONFORM_APITEST_HELPER") != "" {
		t.Skip("inside the helper process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(required string) (string, error) {
		cmd := exec.Command(exe, "-test.run=^TestEnvHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "MESHCONFORM_APITEST_HELPER=1", AssetsEnv+"=", RequiredEnv+"="+required)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil || !strings.Contains(out, "--- SKIP: TestEnvHelper") || !strings.Contains(out, "KUBEBUILDER_ASSETS is unset") {
		t.Errorf("without assets, Env should skip with a reason; err=%v, output:\n%s", err, out)
	}
	out, err = run("required")
	if err == nil || !strings.Contains(out, "--- FAIL: TestEnvHelper") || !strings.Contains(out, "MESHCONFORM_TIER1=required") ||
		!strings.Contains(out, "scripts/envtest-assets.sh") {
		t.Errorf("without assets and with %s=required, Env should fail naming the fix; err=%v, output:\n%s", RequiredEnv, err, out)
	}
}

func TestEnvHelper(t *testing.T) {
	if os.Getenv("MESHCONFORM_APITEST_HELPER") == "" {
		t.Skip("run by TestEnvWithoutAssets")
	}
	Env(t)
	t.Error("Env returned without assets")
}

// assetsOrSkip returns KUBEBUILDER_ASSETS for tests that need the real etcd and
// kube-apiserver outside the shared environment.
func assetsOrSkip(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		if os.Getenv(RequiredEnv) == "required" {
			t.Fatalf("%s is unset and %s=required", AssetsEnv, RequiredEnv)
		}
		t.Skipf("needs the real binaries: %s is unset", AssetsEnv)
	}
	return dir
}

// A controller manager that cannot start, or never acts, fails Start with its own output
// and within the deadline, and leaves nothing running.
func TestStartWithBrokenControllerManager(t *testing.T) {
	real := assetsOrSkip(t)
	for _, c := range []struct {
		name, script string
		want         []string
	}{
		{"exits", `case "$1" in --version) echo fake 1.0; exit 0;; esac
echo "Error: unknown flag: --use-service-account-credentials" >&2
exit 1
`, []string{"kube-controller-manager exited during start (exit status 1)", "unknown flag: --use-service-account-credentials", "scripts/envtest-assets.sh"}},
		{"hangs", `case "$1" in --version) echo fake 1.0; exit 0;; esac
echo "stuck before informers sync" >&2
exec sleep 300
`, []string{"kube-controller-manager did not act on the API server in time", `no ServiceAccount "default" appeared`, "stuck before informers sync"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each starts its own etcd and kube-apiserver: overlap the waits
			dir := t.TempDir()
			for _, b := range []string{"etcd", "kube-apiserver"} {
				if err := os.Symlink(filepath.Join(real, b), filepath.Join(dir, b)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "kube-controller-manager"), []byte("#!/bin/sh\n"+c.script), 0o755); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			env, err := Start(context.Background(), Options{AssetsDir: dir, ControllerManagerTimeout: 5 * time.Second})
			took := time.Since(began)
			if err == nil {
				_ = env.Stop()
				t.Fatal("Start succeeded with a broken kube-controller-manager")
			}
			t.Logf("Start error (after %s):\n%v", took, err)
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start error lacks %q", want)
				}
			}
			// The real etcd and kube-apiserver start (seconds), then 5s for the controller manager.
			if took > 45*time.Second {
				t.Errorf("Start took %s to give up", took)
			}
			assertNoStrayChildren(t)
		})
	}
}
