package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshconform/framework/gate"
	"meshconform/framework/provision"
	"meshconform/framework/settings"
)

func loadSettings(t *testing.T, env map[string]string) settings.Settings {
	t.Helper()
	s, err := settings.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// make e2e-upgrade with a bad TO: exit 2 in milliseconds, the message, nothing created.
func TestUpgradeCommandRefusesBadVersions(t *testing.T) {
	reports := isolate(t)
	t.Setenv("FROM", "1.30.5")
	t.Setenv("TO", "1.31")
	var stdout, stderr strings.Builder
	start := time.Now()
	code := Main(context.Background(), []string{"upgrade"}, &stdout, &stderr)
	if code != 2 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s: %s", code, time.Since(start), stderr.String())
	}
	for _, want := range []string{"meshconform: upgrade:", `TO="1.31" is not a release: use a full version like`, "make e2e-upgrade FROM=<istio> TO=<istio>"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if entries, _ := os.ReadDir(reports); len(entries) != 0 {
		t.Errorf("wrote %v", entries)
	}
}

// The whole gate on a machine without a Docker engine, FROM's charts missing from the chart
// directory: preflight names both problems at once, exit 1, no cluster, no state, no reports.
func TestUpgradeWithoutDockerEngine(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on PATH")
	}
	if err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run(); err == nil {
		t.Skip("a Docker engine answers: this test is about its absence")
	}
	reports := isolate(t)
	localCharts(t) // 1.31.1 only
	t.Setenv("FROM", "1.30.5")
	t.Setenv("TO", "1.31.1")
	stale := filepath.Join(reports, gate.UpgradeDir, "canary", "conformance")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"upgrade"}, &stdout, &stderr)
	out := stderr.String()
	t.Logf("exit %d\n%s", code, out)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"upgrade gate: Istio 1.30.5 → 1.31.1",
		"preflight: 2 problem(s); nothing was created:",
		"- docker: Docker engine not reachable: ",
		"- charts: FROM=1.30.5: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(out, "TO=1.31.1:") {
		t.Error("TO's charts are there, but preflight reported them")
	}
	if strings.Contains(out, "upgrade: phase") {
		t.Error("went past preflight")
	}
	if _, err := os.Stat(provision.StatePath(filepath.Join(reports, "run"))); err == nil {
		t.Error("a state file was written")
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("an earlier gate's reports were left to stand in for this one's")
	}
}

// The behaviour suites of a gate's phase: the driver's flags with the phase's settings (its
// reports directory, the gate's label filter).
func TestPhaseGinkgoArgs(t *testing.T) {
	s := loadSettings(t, map[string]string{"REPORTS_DIR": "/r", "STRICT": "1"})
	p, err := gate.PlanUpgrade(s, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(GinkgoArgs(p.Phases[1].PhaseSettings(p.UpgradeSettings(s)), nil), " ")
	want := "tool ginkgo --tags=e2e -p --label-filter=!slow --junit-report=junit.xml --json-report=report.json --output-dir=/r/upgrade/inplace --poll-progress-after=2m --poll-progress-interval=1m --timeout=2h ./suites"
	if got != want {
		t.Errorf("behaviour suites:\n got %s\nwant %s", got, want)
	}
}
