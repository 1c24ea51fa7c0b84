package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/internal/kindtest"
)

// isolate clears the variables the driver reads and points REPORTS_DIR at a temp dir.
func isolate(t *testing.T) string {
	t.Helper()
	for _, v := range settings.Variables() {
		t.Setenv(v.Env, "")
	}
	t.Setenv(provision.StateEnv, "")
	dir := t.TempDir()
	t.Setenv("REPORTS_DIR", dir)
	cfg := kindtest.FreePortsConfig(t) // the embedded configs' 30080/30443 may be taken here
	t.Setenv("KIND_CONFIG", cfg)
	return dir
}

// localCharts makes ISTIO_CHART_DIR hold the three charts, so that the chart check passes
// without a network and only Docker's absence is reported.
func localCharts(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"base", "istiod", "gateway"} {
		os.MkdirAll(filepath.Join(dir, c), 0o755)
		os.WriteFile(filepath.Join(dir, c, "Chart.yaml"), []byte("apiVersion: v2\nname: "+c+"\nversion: 1.31.1\n"), 0o644)
	}
	t.Setenv("ISTIO_CHART_DIR", dir)
}

// make e2e on a machine without a Docker engine: the driver stops within seconds with the
// message and exit code 1, having created nothing (no state file, no cluster).
func TestRunWithoutDockerEngine(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on PATH")
	}
	if err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run(); err == nil {
		t.Skip("a Docker engine answers: this test is about its absence")
	}
	reports := isolate(t)
	localCharts(t)
	t.Setenv("ISTIO_VERSION", "1.31.1") // the charts' version: versions.yaml's default moves on
	var stdout, stderr strings.Builder
	start := time.Now()
	code := Main(context.Background(), nil, &stdout, &stderr)
	took := time.Since(start)
	t.Logf("exit %d after %s\n%s", code, took, stderr.String())
	if code != 1 || took > 10*time.Second {
		t.Fatalf("exit %d after %s", code, took)
	}
	out := stderr.String()
	for _, want := range []string{
		"preflight: 1 problem(s); nothing was created:",
		"- docker: Docker engine not reachable: ",
		"Start Docker (or set KUBE_CONTEXT to use an existing cluster)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(out, "meshconform: cluster ...") || strings.Contains(out, "suites:") {
		t.Error("went past preflight")
	}
	if _, err := os.Stat(provision.StatePath(filepath.Join(reports, "run"))); err == nil {
		t.Error("a state file was written")
	}
}

func TestMalformedSettingsExit2(t *testing.T) {
	isolate(t)
	t.Setenv("ISTIO_VERSION", "1.31")
	t.Setenv("KEEP_CLUSTER", "sometimes")
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"run"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{`ISTIO_VERSION="1.31" is not a release: use a full version like`, `KEEP_CLUSTER="sometimes" is not a keep policy`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestDownWithoutState(t *testing.T) {
	isolate(t)
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"down"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), provision.StateEnv) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// `down fail` (for failed) was read as an outcome of its own, which KEEP_CLUSTER=on-failure
// does not keep: the cluster kept to be looked at would have been deleted.
func TestDownRefusesAnUnknownOutcome(t *testing.T) {
	isolate(t)
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"down", "fail"}, &stdout, &stderr)
	if want := "meshconform: down: outcome \"fail\" is none of passed, failed, interrupted\n"; code != 2 || stderr.String() != want {
		t.Fatalf("exit %d, stderr %q; want 2, %q", code, stderr.String(), want)
	}
}

func TestDeleteRefusesAnExistingCluster(t *testing.T) {
	isolate(t)
	t.Setenv("KUBE_CONTEXT", "prod")
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"delete"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "never deletes") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"help"}, &stdout, &stderr); code != 0 {
		t.Fatal(code)
	}
	for _, v := range settings.Variables() {
		if !strings.Contains(stdout.String(), v.Env) {
			t.Errorf("help lacks %s", v.Env)
		}
	}
}

func TestGinkgoArgs(t *testing.T) {
	s := settings.Settings{ReportsDir: "/r"}
	got := strings.Join(GinkgoArgs(s, nil), " ")
	want := "tool ginkgo --tags=e2e -p --junit-report=junit.xml --json-report=report.json --output-dir=/r --poll-progress-after=2m --poll-progress-interval=1m --timeout=2h ./suites"
	if got != want {
		t.Errorf("defaults:\n got %s\nwant %s", got, want)
	}
	s.Procs, s.Labels = 3, "MTLS-002 || authz"
	got = strings.Join(GinkgoArgs(s, []string{"--timeout=4h", "-v"}), " ")
	want = "tool ginkgo --tags=e2e --procs=3 --label-filter=MTLS-002 || authz --junit-report=junit.xml --json-report=report.json --output-dir=/r --poll-progress-after=2m --poll-progress-interval=1m --timeout=2h --timeout=4h -v ./suites"
	if got != want {
		t.Errorf("with procs, labels, extra:\n got %s\nwant %s", got, want)
	}
	if q := joinArgs([]string{"--label-filter=a || b", "plain"}); q != `'--label-filter=a || b' plain` {
		t.Errorf("joinArgs = %s", q)
	}
}

// Ctrl-C before the run is up: every command that brings one up exits 130 (`up` said 1), having
// saved no state.
func TestInterruptedWhileBringingUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, cmd := range []string{"run", "up", "upgrade"} {
		t.Run(cmd, func(t *testing.T) {
			reports := isolate(t)
			localCharts(t)
			if cmd == "upgrade" {
				t.Setenv("FROM", "1.30.5")
				t.Setenv("TO", "1.31.1")
			} else {
				t.Setenv("ISTIO_VERSION", "1.31.1")
			}
			var stdout, stderr strings.Builder
			if code := Main(ctx, []string{cmd}, &stdout, &stderr); code != provision.ExitInterrupted || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, want 130 and nothing:\n%s", code, stdout.String(), stderr.String())
			}
			if _, err := os.Stat(provision.StatePath(filepath.Join(reports, "run"))); err == nil {
				t.Error("a state file was written")
			}
		})
	}
}

// The end of make e2e: the closing table comes after the cleanup, with the cleanup's time and
// the run's total added to the report the suites wrote; a report another run left there is
// neither amended nor shown.
func TestClosingTable(t *testing.T) {
	dir := t.TempDir()
	rep := report.Report{Run: report.Run{ID: "r1", IstioVersion: "1.31.4"},
		Timings: &report.Timings{Phases: []report.Phase{report.Measured(report.PhaseCluster, 40*time.Second, 5*time.Second), {Name: report.PhaseSpecs, DurationSeconds: 60}}},
		Behaviors: []report.Behavior{{ID: "MTLS-002", Result: report.Pass,
			Specs: []report.SpecResult{{Name: "mtls MTLS-002: STRICT", Result: report.Pass, DurationSeconds: 50}}}}}
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	ended := func(id string) provision.Ended {
		return provision.Ended{Outcome: provision.Passed, State: provision.State{RunID: id},
			Cleanup: report.Measured(report.PhaseCleanup, 12*time.Second, 0), Total: 2 * time.Minute}
	}
	var out, errs strings.Builder
	closingTable(dir, ended("r0"), &out, &errs)
	if out.Len() != 0 || !strings.Contains(errs.String(), `is run "r1"'s, not this run's (r0)`) {
		t.Errorf("another run's report: stdout %q, stderr %q", out.String(), errs.String())
	}
	errs.Reset()
	closingTable(dir, ended("r1"), &out, &errs)
	for _, want := range []string{"behaviours: 1 passed", "time: 2m0s, from preflight to cleanup",
		"phases: cluster 40s · specs 1m0s · cleanup 12s", "50s  mtls MTLS-002: STRICT", "conformance report: " + dir} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("closing table lacks %q:\n%s%s", want, out.String(), errs.String())
		}
	}
	back, err := report.Read(filepath.Join(dir, report.FileYAML))
	if err != nil || back.Timings.TotalSeconds == nil || *back.Timings.TotalSeconds != 120 {
		t.Errorf("the report was not amended: %v, %+v", err, back.Timings)
	}
}

// The suite is run as its cached binary: the build's flags and package come out of the args,
// every other flag stays in order; args without a package are left alone.
func TestPrecompiled(t *testing.T) {
	s := settings.Settings{ReportsDir: "/r", Labels: "a || b"}
	args, suite, ok := Precompiled(GinkgoArgs(s, []string{"-v"}))
	if !ok || suite.Package != "./suites" || strings.Join(suite.Tags, ",") != "e2e" {
		t.Fatalf("suite = %+v, ok = %v; want ./suites with tag e2e", suite, ok)
	}
	want := "tool ginkgo -p --label-filter=a || b --junit-report=junit.xml --json-report=report.json --output-dir=/r --poll-progress-after=2m --poll-progress-interval=1m --timeout=2h -v"
	if got := strings.Join(args, " "); got != want {
		t.Errorf("run args:\n got %s\nwant %s", got, want)
	}
	if _, _, ok := Precompiled([]string{"tool", "ginkgo", "/abs/suites.test"}); ok {
		t.Error("args ending in a binary were taken for a package")
	}
}
