package main

// `go run ./scripts/e2e upgrade` (make e2e-upgrade FROM=… TO=…): the upgrade gate. Istio FROM
// on a fresh kind cluster → the suites (base) → upgrade in place to TO → the suites (inplace)
// → TO installed as a canary revision beside it → the suites against the canary (canary) →
// report diff of base against each → down. The decisions (validation, the phases, their
// directories and states, the diffs and the exit code) are the functions below the flow, tested
// at tier 0; the flow only strings them together.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"meshconform/framework/cluster/preflight"
	"meshconform/framework/mesh"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/suites/upgrade"
)

const (
	// FromEnv and ToEnv are make e2e-upgrade's variables.
	FromEnv = "FROM"
	ToEnv   = "TO"
	// CanaryRevision is the revision TO is installed as beside the upgraded control plane.
	CanaryRevision = "canary"
	// UpgradeDir holds the gate's reports under REPORTS_DIR, one directory per phase; the
	// upgrade-gate workflow diffs base against every other directory in it.
	UpgradeDir = "upgrade"
	// SkewTimeout bounds one run of the upgrade suite (one phase).
	SkewTimeout = time.Hour
)

// Action is what the driver does to the control plane before a phase's suites.
type Action string

const (
	ActionInstall        Action = "install"          // provision.Up installs FROM
	ActionUpgradeInPlace Action = "upgrade in place" // mesh Upgrade of the same releases to TO
	ActionInstallCanary  Action = "install canary"   // mesh Install of TO as revision canary
)

// UpgradePhase is one step of the gate: a control-plane change, then the suites.
type UpgradePhase struct {
	// Name is the phase's reports directory under REPORTS_DIR/upgrade: base, inplace, canary.
	Name string
	// Skew is the upgrade suite's phase (MESHCONFORM_UPGRADE_PHASE).
	Skew   upgrade.Phase
	Action Action
	// Version and Revision are the control plane the phase's suites run against: its
	// namespaces are injected by that revision ("" is the default revision).
	Version, Revision string
	Dir               string
}

// UpgradePlan is the whole gate.
type UpgradePlan struct {
	From, To string
	Dir      string
	Phases   []UpgradePhase
}

// PlanUpgrade checks FROM and TO and the settings for an upgrade run and returns its phases.
// Every problem is reported at once, each with its fix.
func PlanUpgrade(s settings.Settings, from, to string) (UpgradePlan, error) {
	from, to = strings.TrimSpace(from), strings.TrimSpace(to)
	var errs []error
	if err := upgrade.CheckVersions(from, to, FromEnv, ToEnv); err != nil {
		errs = append(errs, err)
	}
	if s.Existing() {
		errs = append(errs, fmt.Errorf("KUBE_CONTEXT=%s is set: the upgrade gate upgrades Istio in place and installs a canary beside it, so it runs only on a kind cluster it creates; unset KUBE_CONTEXT", s.KubeContext))
	}
	if s.ReuseCluster {
		errs = append(errs, fmt.Errorf("REUSE_CLUSTER=1 is set: the gate must start from Istio FROM on a fresh cluster; unset it (make e2e-delete removes a kept cluster)"))
	}
	if slices.Contains(s.Given, "ISTIO_VERSION") && s.IstioVersion != from {
		errs = append(errs, fmt.Errorf("ISTIO_VERSION=%s conflicts with FROM=%s: unset ISTIO_VERSION (the gate installs FROM, then TO)", s.IstioVersion, from))
	}
	if s.IstioRevision == CanaryRevision {
		errs = append(errs, fmt.Errorf("ISTIO_REVISION=%s is the revision the gate installs TO as: leave ISTIO_REVISION empty or pick another name", CanaryRevision))
	}
	if slices.Contains(s.Given, "ISTIO_INSTALL") && (s.Install == settings.InstallNo || s.NoMesh()) {
		errs = append(errs, fmt.Errorf("ISTIO_INSTALL=%s: the gate installs and upgrades Istio itself; unset ISTIO_INSTALL", s.Install))
	}
	if err := errors.Join(errs...); err != nil {
		return UpgradePlan{}, err
	}
	dir := filepath.Join(s.ReportsDir, UpgradeDir)
	p := UpgradePlan{From: from, To: to, Dir: dir}
	for _, ph := range []UpgradePhase{
		{Name: "base", Skew: upgrade.Before, Action: ActionInstall, Version: from, Revision: s.IstioRevision},
		{Name: "inplace", Skew: upgrade.AfterInPlace, Action: ActionUpgradeInPlace, Version: to, Revision: s.IstioRevision},
		{Name: "canary", Skew: upgrade.AfterCanary, Action: ActionInstallCanary, Version: to, Revision: CanaryRevision},
	} {
		ph.Dir = filepath.Join(dir, ph.Name)
		p.Phases = append(p.Phases, ph)
	}
	return p, nil
}

// UpgradeSettings are the settings Up runs with: Istio FROM, always installed.
func (p UpgradePlan) UpgradeSettings(s settings.Settings) settings.Settings {
	s.IstioVersion = p.From
	s.Install = settings.InstallYes
	return s
}

// DiffPair is one comparison of the gate.
type DiffPair struct {
	Name            string // the candidate phase
	Base, Candidate string // report directories
}

// Diffs are the gate's comparisons: the first phase (on FROM) against each later one.
func (p UpgradePlan) Diffs() []DiffPair {
	var out []DiffPair
	for _, ph := range p.Phases[1:] {
		out = append(out, DiffPair{Name: ph.Name, Base: p.Phases[0].Dir, Candidate: ph.Dir})
	}
	return out
}

// ConformanceLabels is the label filter of the behaviour suites in the gate: LABELS when
// given, else every behaviour but the slow ones (three runs of them would dominate the gate).
func ConformanceLabels(labels string) string {
	if strings.TrimSpace(labels) != "" {
		return labels
	}
	return "!slow"
}

// PhaseSettings are the settings the phase's behaviour suites run with.
func (ph UpgradePhase) PhaseSettings(s settings.Settings) settings.Settings {
	s.ReportsDir = ph.Dir
	s.IstioVersion, s.IstioRevision = ph.Version, ph.Revision
	s.Labels = ConformanceLabels(s.Labels)
	return s
}

// PhaseState is the run state handed to the phase's suites: the same cluster and run id, the
// phase's control plane (its namespaces get istio.io/rev=<revision> when set) and reports dir.
func (ph UpgradePhase) PhaseState(st provision.State) provision.State {
	st.Settings = ph.PhaseSettings(st.Settings)
	st.Istio.Version, st.Istio.Revision = ph.Version, ph.Revision
	return st
}

// StatePath is where the phase's state file goes (in the run's own directory, not a reports one).
func (ph UpgradePhase) StatePath(runDir string) string {
	return filepath.Join(runDir, "state-"+ph.Name+".json")
}

// SkewArgs are the flags of `go tool ginkgo` for the upgrade suite in this phase: one process
// (its specs are Ordered), every spec (LABELS picks behaviour specs, not the skew checks),
// reports into <phase>/upgrade; extra flags go last.
func (ph UpgradePhase) SkewArgs(extra []string) []string {
	args := []string{"tool", "ginkgo", "--tags=e2e",
		"--junit-report=junit.xml", "--json-report=report.json", "--output-dir=" + filepath.Join(ph.Dir, upgrade.ReportsSubdir),
		"--poll-progress-after=2m", "--poll-progress-interval=1m",
		"--timeout=" + SkewTimeout.String()}
	args = append(args, extra...)
	return append(args, "./suites/upgrade")
}

// SkewEnv is the environment of the upgrade suite in this phase.
func (ph UpgradePhase) SkewEnv(p UpgradePlan, statePath string) []string {
	return []string{provision.StateEnv + "=" + statePath, upgrade.PhaseEnv + "=" + string(ph.Skew),
		upgrade.FromEnv + "=" + p.From, upgrade.ToEnv + "=" + p.To}
}

// GateResult is one diff of the gate.
type GateResult struct {
	Pair DiffPair
	Diff report.DiffResult
	// Err says an input could not be read (missing reports: the phase did not run its suites).
	Err error
}

// Code is the diff's exit code as `meshconform report diff` gives it: 0 nothing got worse, 1
// something did, 2 unreadable input.
func (g GateResult) Code() int {
	switch {
	case g.Err != nil:
		return 2
	case len(g.Diff.Regressions()) > 0:
		return 1
	}
	return 0
}

// RunGate reads both sides of every pair and diffs them.
func RunGate(pairs []DiffPair) []GateResult {
	var out []GateResult
	for _, p := range pairs {
		g := GateResult{Pair: p}
		base, err := report.Read(p.Base)
		if err != nil {
			g.Err = fmt.Errorf("base: %w", err)
		}
		cand, cerr := report.Read(p.Candidate)
		if cerr != nil {
			g.Err = errors.Join(g.Err, fmt.Errorf("candidate: %w", cerr))
		}
		if g.Err == nil {
			g.Diff = report.Diff(base, cand)
		}
		out = append(out, g)
	}
	return out
}

// GateCode is the gate's exit code: the worst of the diffs' codes (2 unreadable input over 1
// regression over 0), and at least 1 when the upgrade suite failed in a phase (a skew check
// that failed on FROM already is no regression, but the gate still fails on it).
func GateCode(results []GateResult, skewFailed []string) int {
	code := 0
	if len(results) == 0 {
		code = 2 // nothing was compared: never a pass
	}
	for _, g := range results {
		code = max(code, g.Code())
	}
	if len(skewFailed) > 0 {
		code = max(code, 1)
	}
	return code
}

// PrintGate writes every diff, then one verdict line per diff and for the upgrade suite.
func PrintGate(w io.Writer, results []GateResult, skewFailed []string) {
	for _, g := range results {
		fmt.Fprintf(w, "\n=== report diff %s %s\n", g.Pair.Base, g.Pair.Candidate)
		if g.Err != nil {
			fmt.Fprintf(w, "cannot compare: %v\n", g.Err)
			continue
		}
		_ = g.Diff.Text(w)
	}
	fmt.Fprintln(w, "\nupgrade gate:")
	for _, g := range results {
		verdict := "unreadable input (exit 2)"
		if g.Err == nil {
			verdict = g.Diff.Verdict()
		}
		fmt.Fprintf(w, "  base → %-8s %s\n", g.Pair.Name, verdict)
	}
	if len(skewFailed) > 0 {
		fmt.Fprintf(w, "  upgrade suite failed in phase %s (version skew / canary move; see its reports)\n", strings.Join(skewFailed, ", "))
	}
}

// ---- the flow ----

// upgradeRun is one gate in progress.
type upgradeRun struct {
	plan           UpgradePlan
	s              settings.Settings
	st             provision.State
	extra          []string
	wd             string
	stdout, stderr io.Writer
	// skewCodes are the upgrade suite's exit codes by phase name.
	skewCodes map[string]int
}

// runUpgrade is the gate. Exit codes: GateCode's when every phase ran; 1 when a phase could
// not (Up, the upgrade, the canary install); 2 on bad FROM/TO or settings; 130 on interrupt.
func runUpgrade(ctx context.Context, s settings.Settings, extra []string, wd string, stdout, stderr io.Writer) int {
	plan, err := PlanUpgrade(s, os.Getenv(FromEnv), os.Getenv(ToEnv))
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: upgrade:\n%s\n(make e2e-upgrade FROM=<istio> TO=<istio>; see `go run ./scripts/e2e help`)\n", indentLines(err.Error()))
		return 2
	}
	u := &upgradeRun{plan: plan, s: plan.UpgradeSettings(s), extra: extra, wd: wd, stdout: stdout, stderr: stderr}
	start := time.Now()
	fmt.Fprintf(stderr, "meshconform: upgrade gate: Istio %s → %s (in place, and as revision %s); reports in %s\n", plan.From, plan.To, CanaryRevision, plan.Dir)
	// Reports of an earlier gate would stand in for a phase that wrote none.
	if err := os.RemoveAll(plan.Dir); err != nil {
		fmt.Fprintf(stderr, "meshconform: upgrade: clearing %s: %v\n", plan.Dir, err)
		return 1
	}

	toSettings := u.s
	toSettings.IstioVersion = plan.To
	toImages, err := provision.IstioImages(toSettings)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: %v\n", err)
		return 1
	}
	u.st, err = provision.Up(ctx, u.s, stderr,
		provision.WithPreflight(preflight.Options{Charts: bothVersions(plan.To)}),
		provision.WithImages(toImages...))
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: %v\n", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}

	code, failed := u.phases(ctx)
	if ctx.Err() == nil && !failed {
		err := u.step("gate (report diff)", func() error {
			var skewFailed []string
			for _, ph := range plan.Phases {
				if u.skewCodes[ph.Name] != 0 {
					skewFailed = append(skewFailed, ph.Name)
				}
			}
			results := RunGate(plan.Diffs())
			PrintGate(stdout, results, skewFailed)
			code = GateCode(results, skewFailed)
			if code != 0 {
				return fmt.Errorf("exit %d", code)
			}
			return nil
		})
		failed = err != nil
	}

	outcome := provision.OutcomeOf(ctx, failed)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "meshconform: interrupted: cleaning up (Ctrl-C again abandons the cleanup)")
	}
	if err := provision.Down(ctx, u.st, outcome, stderr); err != nil {
		fmt.Fprintf(stderr, "meshconform: cleanup: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	fmt.Fprintf(stderr, "meshconform: upgrade gate %s → %s ended after %s (%s); reports in %s\n",
		plan.From, plan.To, provision.Elapsed(time.Since(start)), outcome, plan.Dir)
	if outcome == provision.Interrupted {
		return 130
	}
	return code
}

// phases runs each phase: its control-plane change, then the upgrade suite and the behaviour
// suites. failed is true when a phase could not run (code 1) or on interrupt (130).
func (u *upgradeRun) phases(ctx context.Context) (code int, failed bool) {
	u.skewCodes = map[string]int{}
	for _, ph := range u.plan.Phases {
		if ctx.Err() != nil {
			return 130, true
		}
		label := fmt.Sprintf("phase %s (Istio %s, revision %s)", ph.Name, ph.Version, revisionName(ph.Revision))
		var st provision.State
		err := u.step(label+": "+string(ph.Action), func() error {
			var err error
			st, err = u.controlPlane(ctx, ph)
			return err
		})
		if err != nil {
			fmt.Fprintf(u.stderr, "meshconform: %v\n", err)
			return 1, true
		}
		path := ph.StatePath(u.st.RunDir)
		if err := st.Save(path); err != nil {
			fmt.Fprintf(u.stderr, "meshconform: saving the state of phase %s: %v\n", ph.Name, err)
			return 1, true
		}
		_ = u.step(label+": upgrade suite", func() error {
			c := ginkgo(ctx, u.wd, ph.SkewArgs(u.extra), ph.SkewEnv(u.plan, path), u.stdout, u.stderr)
			u.skewCodes[ph.Name] = c
			return exitErr(c)
		})
		if ctx.Err() != nil {
			return 130, true
		}
		// The behaviour suites' failures are the diff's to judge (a behaviour failing on FROM
		// and TO alike is no regression), so their exit code is only reported.
		_ = u.step(label+": behaviour suites", func() error {
			return exitErr(ginkgo(ctx, u.wd, GinkgoArgs(ph.PhaseSettings(u.s), u.extra), []string{provision.StateEnv + "=" + path}, u.stdout, u.stderr))
		})
	}
	return 0, false
}

func exitErr(code int) error {
	if code == 0 {
		return nil
	}
	return errors.New("exit " + strconv.Itoa(code))
}

// controlPlane makes the phase's change to the control plane, checks what runs afterwards and
// returns the phase's state.
func (u *upgradeRun) controlPlane(ctx context.Context, ph UpgradePhase) (provision.State, error) {
	log := slog.New(slog.NewTextHandler(prefixWriter{u.stderr, "  "}, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	switch ph.Action {
	case ActionUpgradeInPlace:
		o := provision.MeshOptions(u.s, u.st) // the releases Up installed, at FROM
		o.Logger = log
		inst, err := mesh.New(o)
		if err != nil {
			return provision.State{}, err
		}
		if err := inst.Upgrade(ctx, ph.Version); err != nil {
			return provision.State{}, err
		}
	case ActionInstallCanary:
		s := u.s
		s.IstioVersion, s.IstioRevision = ph.Version, ph.Revision
		o := provision.MeshOptions(s, u.st)
		o.Logger = log
		inst, err := mesh.New(o)
		if err != nil {
			return provision.State{}, err
		}
		if err := inst.Install(ctx); err != nil {
			return provision.State{}, err
		}
	}
	rc, err := u.st.RESTConfig()
	if err != nil {
		return provision.State{}, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return provision.State{}, err
	}
	found, err := mesh.Detect(ctx, kube)
	if err != nil {
		return provision.State{}, err
	}
	cp, err := ControlPlaneFor(found, ph)
	if err != nil {
		return provision.State{}, err
	}
	fmt.Fprintf(u.stderr, "  %s\n", cp)
	st := ph.PhaseState(u.st)
	st.Istio.Namespace, st.Istio.TrustDomain, st.Istio.RootNamespace = cp.Namespace, cp.TrustDomain, cp.RootNamespace
	return st, nil
}

// ControlPlaneFor finds the phase's control plane among those detected and checks that it runs
// the phase's version: an upgrade that left istiod on the old image must not be tested as TO.
func ControlPlaneFor(found []mesh.ControlPlane, ph UpgradePhase) (mesh.ControlPlane, error) {
	var seen []string
	for _, cp := range found {
		seen = append(seen, cp.String())
		if cp.Revision != ph.Revision {
			continue
		}
		if cp.Version != ph.Version {
			return cp, fmt.Errorf("after %s, istiod of revision %s runs Istio %s (%s), not %s", ph.Action, revisionName(ph.Revision), orUnknownVersion(cp.Version), cp.Image, ph.Version)
		}
		return cp, nil
	}
	if len(seen) == 0 {
		seen = []string{"none"}
	}
	return mesh.ControlPlane{}, fmt.Errorf("after %s, no istiod of revision %s is found (found: %s)", ph.Action, revisionName(ph.Revision), strings.Join(seen, "; "))
}

func revisionName(rev string) string {
	if rev == "" {
		return "default"
	}
	return rev
}

func orUnknownVersion(v string) string {
	if v == "" {
		return "of unknown version"
	}
	return v
}

// step runs fn between a start line and an end line with the elapsed time.
func (u *upgradeRun) step(name string, fn func() error) error {
	fmt.Fprintf(u.stderr, "meshconform: upgrade: %s ...\n", name)
	start := time.Now()
	err := fn()
	took := provision.Elapsed(time.Since(start))
	if err != nil {
		fmt.Fprintf(u.stderr, "meshconform: upgrade: %s failed after %s: %v\n", name, took, err)
		return err
	}
	fmt.Fprintf(u.stderr, "meshconform: upgrade: %s done in %s\n", name, took)
	return nil
}

// bothVersions is preflight's chart check for the gate: FROM's and TO's charts, both before
// anything is created.
func bothVersions(to string) preflight.ChartCheck {
	return func(ctx context.Context, s settings.Settings) error {
		var errs []error
		for _, v := range []struct{ name, version string }{{FromEnv, s.IstioVersion}, {ToEnv, to}} {
			sv := s
			sv.IstioVersion = v.version
			if err := provision.MeshChartCheck(ctx, sv); err != nil {
				errs = append(errs, fmt.Errorf("%s=%s: %w", v.name, v.version, err))
			}
		}
		return errors.Join(errs...)
	}
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
