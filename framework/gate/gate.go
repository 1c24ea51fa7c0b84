// Package gate is the plan of the upgrade gate (`make e2e-upgrade FROM=… TO=…`, run by
// scripts/e2e): FROM and TO checked with the settings, the phases (base on Istio FROM, inplace
// after the in-place upgrade to TO, canary with TO installed as a canary revision beside it),
// their reports directories, settings and states, the upgrade suite's (suites/upgrade) flags and
// environment in each, the diffs of base against each later phase and the gate's exit code; and
// what the upgrade suite is told by the driver: its phases and environment. These are the
// decisions of the gate, tested at tier 0; the driver only strings them together.
package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"meshconform/framework/baseline"
	"meshconform/framework/cluster/preflight"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
)

const (
	// FromEnv and ToEnv are make e2e-upgrade's variables.
	FromEnv = "FROM"
	ToEnv   = "TO"
	// PhasesEnv narrows the gate to some of its later phases (UpgradePlan.Only).
	PhasesEnv = "PHASES"
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
	Skew   Phase
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
	if err := CheckVersions(from, to, FromEnv, ToEnv); err != nil {
		errs = append(errs, err)
	}
	if s.Existing() {
		errs = append(errs, fmt.Errorf("KUBE_CONTEXT=%s is set: the upgrade gate upgrades Istio in place and installs a canary beside it, so it runs only on a kind cluster it creates; unset KUBE_CONTEXT", s.KubeContext))
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
		{Name: "base", Skew: Before, Action: ActionInstall, Version: from, Revision: s.IstioRevision},
		{Name: "inplace", Skew: AfterInPlace, Action: ActionUpgradeInPlace, Version: to, Revision: s.IstioRevision},
		{Name: "canary", Skew: AfterCanary, Action: ActionInstallCanary, Version: to, Revision: CanaryRevision},
	} {
		ph.Dir = filepath.Join(dir, ph.Name)
		p.Phases = append(p.Phases, ph)
	}
	return p, nil
}

// Only narrows the plan to the later phases named in phases (PHASES: comma- or space-separated
// names, e.g. "inplace"); base always runs, being what the others are compared with. Empty keeps
// every phase. The phases keep their order, and canary needs inplace: the upgrade suite's canary
// checks use the workloads the in-place phase makes.
func (p UpgradePlan) Only(phases string) (UpgradePlan, error) {
	names := strings.FieldsFunc(phases, func(r rune) bool { return r == ',' || r == ' ' })
	if len(names) == 0 {
		return p, nil
	}
	var valid []string
	for _, ph := range p.Phases {
		valid = append(valid, ph.Name)
	}
	want := map[string]bool{p.Phases[0].Name: true}
	for _, n := range names {
		if !slices.Contains(valid, n) {
			return p, fmt.Errorf("%s=%s: no phase %q; the phases are %s (base always runs)", PhasesEnv, phases, n, strings.Join(valid, ", "))
		}
		want[n] = true
	}
	if want["canary"] && !want["inplace"] {
		return p, fmt.Errorf("%s=%s: the canary phase runs after the in-place one (its checks use the workloads made there): use %s=inplace or %s=inplace,canary", PhasesEnv, phases, PhasesEnv, PhasesEnv)
	}
	out := p
	out.Phases = nil
	for _, ph := range p.Phases {
		if want[ph.Name] {
			out.Phases = append(out.Phases, ph)
		}
	}
	return out, nil
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

// AgentImageFor is the pilot-agent image (ISTIO_AGENT_IMAGE) of a phase on Istio version: an
// image tagged with FROM's version follows the phase's version, as the images of ISTIO_HUB do
// (<repo>:<FROM> → <repo>:<version>), so each control plane's grpc-agent pods run its own
// agent; any other image (or none) is every phase's.
func AgentImageFor(img, from, version string) string {
	if repo, ok := strings.CutSuffix(img, ":"+from); ok && repo != "" && !strings.Contains(repo, "@") {
		return repo + ":" + version
	}
	return img
}

// PhaseSettings are the settings the phase's behaviour suites run with; s's IstioVersion is
// FROM (UpgradeSettings).
func (ph UpgradePhase) PhaseSettings(s settings.Settings) settings.Settings {
	s.ReportsDir = ph.Dir
	s.AgentImage = AgentImageFor(s.AgentImage, s.IstioVersion, ph.Version)
	s.IstioVersion, s.IstioRevision = ph.Version, ph.Revision
	s.Labels = ConformanceLabels(s.Labels)
	return s
}

// PhaseState is the run state handed to the phase's suites: the same cluster and run id, the
// phase's control plane (its namespaces get istio.io/rev=<revision> when set) and reports dir.
// Up's phases (the run's timings) stay with the phase Up installed for: a later phase's report
// times its own change of the control plane, which the driver adds.
func (ph UpgradePhase) PhaseState(st provision.State) provision.State {
	st.Settings = ph.PhaseSettings(st.Settings)
	st.Istio.Version, st.Istio.Revision = ph.Version, ph.Revision
	if ph.Action != ActionInstall {
		st.Phases = nil
	}
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
		"--junit-report=junit.xml", "--json-report=report.json", "--output-dir=" + filepath.Join(ph.Dir, ReportsSubdir),
		"--poll-progress-after=2m", "--poll-progress-interval=1m",
		"--timeout=" + SkewTimeout.String()}
	args = append(args, extra...)
	return append(args, "./suites/upgrade")
}

// BehaviorEnv is the environment of the behaviour suites in this phase: the phase's state, and
// the upgrade suite's conformance report, whose baseline they take when it passed
// (baseline.ReuseEnv): the upgrade suite judged the same cluster against the same control plane
// moments before, so a second baseline (~20s) would only repeat it.
func (ph UpgradePhase) BehaviorEnv(statePath string) []string {
	return []string{provision.StateEnv + "=" + statePath,
		baseline.ReuseEnv + "=" + filepath.Join(ph.Dir, ReportsSubdir, report.FileJSON)}
}

// SkewEnv is the environment of the upgrade suite in this phase.
func (ph UpgradePhase) SkewEnv(p UpgradePlan, statePath string) []string {
	return []string{provision.StateEnv + "=" + statePath, SuitePhaseEnv + "=" + string(ph.Skew),
		SuiteFromEnv + "=" + p.From, SuiteToEnv + "=" + p.To}
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
			// Every phase runs the mode Up found or installed; a report of another mode
			// would be a different mesh, never a regression of this one.
			g.Err = report.Comparable(base.Run, cand.Run)
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
			return cp, fmt.Errorf("after %s, istiod of revision %s runs Istio %s (%s), not %s", ph.Action, RevisionName(ph.Revision), orUnknownVersion(cp.Version), cp.Image, ph.Version)
		}
		return cp, nil
	}
	if len(seen) == 0 {
		seen = []string{"none"}
	}
	return mesh.ControlPlane{}, fmt.Errorf("after %s, no istiod of revision %s is found (found: %s)", ph.Action, RevisionName(ph.Revision), strings.Join(seen, "; "))
}

// RevisionName is a revision as messages name it: "" is the default revision.
func RevisionName(rev string) string {
	if rev == "" {
		return istionames.DefaultRevision
	}
	return rev
}

func orUnknownVersion(v string) string {
	if v == "" {
		return "of unknown version"
	}
	return v
}

// BothVersions is preflight's chart check for the gate: FROM's and TO's charts, both before
// anything is created.
func BothVersions(to string) preflight.ChartCheck {
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

// ZtunnelNote is what the gate says before an ambient gate (DATAPLANE_MODE=ambient) about
// ztunnel's in-place upgrade, "" otherwise. ztunnel is one DaemonSet per cluster, shared by
// every revision: the in-place phase upgrades it in place, which restarts the node proxy on
// every node, and every ambient pod on a node loses its connections while that node's ztunnel
// is replaced. The gate does not measure that interruption; what it enforces is that the
// in-place phase is judged only once istio-cni-node and ztunnel are rolled out at TO
// (mesh.Upgrade waits for each DaemonSet: every scheduled node runs a ready, updated pod), and
// the canary phase moves istiod alone (ztunnel and istio-cni stay at the in-place phase's).
func ZtunnelNote(s settings.Settings) string {
	if !s.Ambient() {
		return ""
	}
	return "ambient: the in-place upgrade replaces ztunnel on every node (one DaemonSet, shared by every revision), so ambient pods lose their connections while it rolls; " +
		"the gate judges the in-place phase only once istio-cni-node and ztunnel are rolled out at TO, and does not measure the interruption; the canary phase moves istiod only"
}
