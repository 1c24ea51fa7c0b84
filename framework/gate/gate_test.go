package gate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshconform/framework/mesh"
	"meshconform/framework/provision"
	"meshconform/framework/report"
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

func TestPlanUpgradePhases(t *testing.T) {
	s := loadSettings(t, map[string]string{"REPORTS_DIR": "/r"})
	p, err := PlanUpgrade(s, " 1.30.5", "1.31.1 ")
	if err != nil {
		t.Fatal(err)
	}
	if p.From != "1.30.5" || p.To != "1.31.1" || p.Dir != "/r/upgrade" {
		t.Errorf("plan %+v", p)
	}
	want := []UpgradePhase{
		{Name: "base", Skew: Before, Action: ActionInstall, Version: "1.30.5", Revision: "", Dir: "/r/upgrade/base"},
		{Name: "inplace", Skew: AfterInPlace, Action: ActionUpgradeInPlace, Version: "1.31.1", Revision: "", Dir: "/r/upgrade/inplace"},
		{Name: "canary", Skew: AfterCanary, Action: ActionInstallCanary, Version: "1.31.1", Revision: "canary", Dir: "/r/upgrade/canary"},
	}
	if len(p.Phases) != len(want) {
		t.Fatalf("phases %+v", p.Phases)
	}
	for i := range want {
		if p.Phases[i] != want[i] {
			t.Errorf("phase %d:\n got %+v\nwant %+v", i, p.Phases[i], want[i])
		}
	}
	// The upgrade suite's phases, in its own order.
	for i, ph := range Phases() {
		if p.Phases[i].Skew != ph {
			t.Errorf("phase %d runs the upgrade suite's %s, want %s", i, p.Phases[i].Skew, ph)
		}
	}
	diffs := p.Diffs()
	wantDiffs := []DiffPair{{"inplace", "/r/upgrade/base", "/r/upgrade/inplace"}, {"canary", "/r/upgrade/base", "/r/upgrade/canary"}}
	if len(diffs) != 2 || diffs[0] != wantDiffs[0] || diffs[1] != wantDiffs[1] {
		t.Errorf("diffs %+v, want %+v", diffs, wantDiffs)
	}

	// A user's revision is the one upgraded in place; the canary is beside it.
	s.IstioRevision = "stable"
	p, err = PlanUpgrade(s, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Phases[0].Revision != "stable" || p.Phases[1].Revision != "stable" || p.Phases[2].Revision != CanaryRevision {
		t.Errorf("revisions %q %q %q", p.Phases[0].Revision, p.Phases[1].Revision, p.Phases[2].Revision)
	}
	us := p.UpgradeSettings(s)
	if us.IstioVersion != "1.30.5" || us.Install != settings.InstallYes {
		t.Errorf("Up settings: version %s, install %s", us.IstioVersion, us.Install)
	}
}

func TestPlanUpgradeRefusals(t *testing.T) {
	for _, c := range []struct {
		name     string
		env      map[string]string
		from, to string
		want     []string
	}{
		{"neither set", nil, "", "",
			[]string{"FROM is not set: name the Istio release to upgrade from, a full version like ", "TO is not set: name the Istio release to upgrade to"}},
		{"minor only and a leading v", nil, "1.30", "v1.31.1",
			[]string{`FROM="1.30" is not a release: use a full version like `, "(give the patch release too)", `TO="v1.31.1" is not a release`, "(drop the leading v)"}},
		{"same", nil, "1.31.1", "1.31.1", []string{"FROM and TO are both 1.31.1: nothing to upgrade; set TO to a newer release"}},
		{"downgrade", nil, "1.31.1", "1.30.5", []string{"FROM=1.31.1 is newer than TO=1.30.5: the gate upgrades, it does not downgrade; swap them"}},
		{"pre-release before its release is an upgrade", nil, "1.32.0-beta.0", "1.32.0", nil},
		{"existing cluster and reuse", map[string]string{"KUBE_CONTEXT": "prod", "REUSE_CLUSTER": "1"}, "1.30.5", "1.31.1",
			[]string{"KUBE_CONTEXT=prod is set: the upgrade gate upgrades Istio in place", "unset KUBE_CONTEXT"}},
		{"ISTIO_VERSION other than FROM", map[string]string{"ISTIO_VERSION": "1.29.0"}, "1.30.5", "1.31.1",
			[]string{"ISTIO_VERSION=1.29.0 conflicts with FROM=1.30.5: unset ISTIO_VERSION"}},
		{"ISTIO_VERSION equal to FROM", map[string]string{"ISTIO_VERSION": "1.30.5"}, "1.30.5", "1.31.1", nil},
		{"canary revision taken", map[string]string{"ISTIO_REVISION": "canary"}, "1.30.5", "1.31.1",
			[]string{"ISTIO_REVISION=canary is the revision the gate installs TO as"}},
		{"install no", map[string]string{"ISTIO_INSTALL": "no"}, "1.30.5", "1.31.1", []string{"ISTIO_INSTALL=no: the gate installs and upgrades Istio itself"}},
		{"install none", map[string]string{"ISTIO_INSTALL": "none"}, "1.30.5", "1.31.1", []string{"ISTIO_INSTALL=none: the gate installs and upgrades Istio itself"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := PlanUpgrade(loadSettings(t, c.env), c.from, c.to)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPhaseSettingsAndState(t *testing.T) {
	s := loadSettings(t, map[string]string{"REPORTS_DIR": "/r", "STRICT": "1"})
	p, err := PlanUpgrade(s, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	st := provision.State{RunID: "abc123", Context: "kind-x", RunDir: "/r/run", Settings: p.UpgradeSettings(s),
		Istio:  provision.Istio{Version: "1.30.5", Namespace: "istio-system", TrustDomain: "cluster.local"},
		Phases: []report.Phase{report.Measured(report.PhaseIstio, time.Minute, 50*time.Second)}}
	canary := p.Phases[2]
	cs := canary.PhaseState(st)
	// Up's phases are the base phase's; the canary's report times its own install.
	if bs := p.Phases[0].PhaseState(st); len(bs.Phases) != 1 || len(cs.Phases) != 0 || len(p.Phases[1].PhaseState(st).Phases) != 0 {
		t.Errorf("phases: base %+v, canary %+v; want Up's for base only", bs.Phases, cs.Phases)
	}
	if cs.Settings.ReportsDir != "/r/upgrade/canary" || cs.Istio.Version != "1.31.1" || cs.Istio.Revision != "canary" ||
		cs.Settings.IstioRevision != "canary" || cs.Settings.IstioVersion != "1.31.1" {
		t.Errorf("canary state: %+v / %+v", cs.Istio, cs.Settings)
	}
	if cs.RunID != st.RunID || cs.Context != st.Context || cs.RunDir != st.RunDir || !cs.Settings.Strict || cs.Istio.TrustDomain != "cluster.local" {
		t.Errorf("the phase state must keep the run: %+v", cs)
	}
	if st.Istio.Revision != "" || st.Settings.ReportsDir != "/r" {
		t.Error("PhaseState changed the run's own state")
	}
	if got := canary.StatePath(st.RunDir); got != "/r/run/state-canary.json" {
		t.Errorf("state path %s", got)
	}

	// ISTIO_AGENT_IMAGE tagged with FROM's version follows each phase's version; another stays.
	sa := loadSettings(t, map[string]string{"ISTIO_AGENT_IMAGE": "hub.test/istio/pilot-agent:1.30.5"})
	pa, err := PlanUpgrade(sa, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	sta := provision.State{Settings: pa.UpgradeSettings(sa)}
	for i, want := range []string{"hub.test/istio/pilot-agent:1.30.5", "hub.test/istio/pilot-agent:1.31.1", "hub.test/istio/pilot-agent:1.31.1"} {
		if got := pa.Phases[i].PhaseState(sta).Settings.AgentImage; got != want {
			t.Errorf("phase %s: agent image %s, want %s", pa.Phases[i].Name, got, want)
		}
	}
	for _, c := range [][2]string{{"hub.test/istio/pilot-agent:custom", "hub.test/istio/pilot-agent:custom"}, {"", ""}, {"hub.test/a@sha256:1.30.5", "hub.test/a@sha256:1.30.5"}} {
		if got := AgentImageFor(c[0], "1.30.5", "1.31.1"); got != c[1] {
			t.Errorf("AgentImageFor(%q) = %q, want %q", c[0], got, c[1])
		}
	}

	if l := ConformanceLabels("MTLS-002 || slow"); l != "MTLS-002 || slow" {
		t.Errorf("LABELS not respected: %s", l)
	}

	got := strings.Join(p.Phases[0].SkewArgs([]string{"-v"}), " ")
	want := "tool ginkgo --tags=e2e --junit-report=junit.xml --json-report=report.json --output-dir=/r/upgrade/base/upgrade --poll-progress-after=2m --poll-progress-interval=1m --timeout=1h0m0s -v ./suites/upgrade"
	if got != want {
		t.Errorf("upgrade suite:\n got %s\nwant %s", got, want)
	}
	env := strings.Join(p.Phases[2].SkewEnv(p, "/r/run/state-canary.json"), " ")
	if env != "MESHCONFORM_STATE=/r/run/state-canary.json MESHCONFORM_UPGRADE_PHASE=after-canary MESHCONFORM_UPGRADE_FROM=1.30.5 MESHCONFORM_UPGRADE_TO=1.31.1" {
		t.Errorf("upgrade suite env: %s", env)
	}
	// The behaviour suites take the baseline from the report the upgrade suite just wrote.
	env = strings.Join(p.Phases[1].BehaviorEnv("/r/run/state-inplace.json"), " ")
	if env != "MESHCONFORM_STATE=/r/run/state-inplace.json MESHCONFORM_BASELINE_FROM=/r/upgrade/inplace/upgrade/conformance.json" {
		t.Errorf("behaviour suites env: %s", env)
	}
}

// The upgrade-gate workflow diffs $REPORTS_DIR/upgrade/base against every other directory
// beside it, after make e2e-upgrade: the layout the plan writes.
func TestWorkflowReadsThePlansLayout(t *testing.T) {
	wf, err := os.ReadFile("../../.github/workflows/upgrade-gate.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`make e2e-upgrade FROM="$FROM" TO="$TO"`, `base="$REPORTS_DIR/upgrade/base"`, `"$REPORTS_DIR"/upgrade/*/`} {
		if !strings.Contains(string(wf), want) {
			t.Errorf("upgrade-gate.yml lacks %s", want)
		}
	}
	p, err := PlanUpgrade(loadSettings(t, map[string]string{"REPORTS_DIR": "reports"}), "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range p.Phases {
		if filepath.Dir(ph.Dir) != p.Dir || filepath.Base(p.Dir) != "upgrade" {
			t.Errorf("phase %s writes to %s, not a directory of %s", ph.Name, ph.Dir, p.Dir)
		}
	}
	if p.Diffs()[0].Base != filepath.Join(p.Dir, "base") {
		t.Errorf("base is %s", p.Diffs()[0].Base)
	}
}

// writeRun writes one suite's conformance report into dir, behaviours as "ID=result/class".
func writeRun(t *testing.T, dir, version string, behaviours ...string) {
	t.Helper()
	r := report.Report{Run: report.Run{ID: "run1", IstioVersion: version, KubernetesVersion: "v1.35.0", Mode: report.ModeSidecar}}
	for _, b := range behaviours {
		id, state, _ := strings.Cut(b, "=")
		res, class, _ := strings.Cut(state, "/")
		r.Behaviors = append(r.Behaviors, report.Behavior{ID: id, Result: report.Result(res), Classification: report.Classification(class),
			Specs: []report.SpecResult{{Name: id + " spec", Result: report.Result(res)}}})
	}
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
}

// phaseDirs writes a gate's reports as the flow lays them out: per phase, the behaviour suites'
// report in <phase>/conformance and the upgrade suite's in <phase>/upgrade.
func phaseDirs(t *testing.T, conformance, skew map[string][]string) UpgradePlan {
	t.Helper()
	s := loadSettings(t, map[string]string{"REPORTS_DIR": t.TempDir()})
	p, err := PlanUpgrade(s, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range p.Phases {
		if bs, ok := conformance[ph.Name]; ok {
			writeRun(t, filepath.Join(ph.Dir, "conformance"), ph.Version, bs...)
		}
		if bs, ok := skew[ph.Name]; ok {
			writeRun(t, filepath.Join(ph.Dir, ReportsSubdir), ph.Version, bs...)
		}
	}
	return p
}

func TestGate(t *testing.T) {
	good := []string{"MTLS-002=pass/documented", "MTLS-004=pass/documented", "AUTHZ-001=pass/documented"}
	skewGood := []string{"MTLS-002=pass/documented", "MTLS-004=pass/documented"}
	all := func(bs []string) map[string][]string {
		return map[string][]string{"base": bs, "inplace": bs, "canary": bs}
	}
	for _, c := range []struct {
		name              string
		conformance, skew map[string][]string
		skewFailed        []string
		code              int
		want, not         []string
	}{
		{name: "nothing got worse", conformance: all(good), skew: all(skewGood), code: 0,
			want: []string{"base → inplace  PASS: no behaviour got worse", "base → canary   PASS: no behaviour got worse"}},
		{name: "a behaviour fails after the canary only",
			conformance: map[string][]string{"base": good, "inplace": good, "canary": {"MTLS-002=pass/documented", "MTLS-004=pass/documented", "AUTHZ-001=fail/deviation"}},
			skew:        all(skewGood), code: 1,
			want: []string{"base → inplace  PASS", "base → canary   FAIL: 1 behaviour got worse", "AUTHZ-001", "pass/documented → fail/deviation"}},
		{name: "the skew check fails after the in-place upgrade: a regression of MTLS-004 although the behaviour suites pass",
			conformance: all(good),
			skew:        map[string][]string{"base": skewGood, "inplace": {"MTLS-002=pass/documented", "MTLS-004=fail/deviation"}, "canary": skewGood},
			skewFailed:  []string{"inplace"}, code: 1,
			want: []string{"base → inplace  FAIL: 1 behaviour got worse", "MTLS-004", "upgrade suite failed in phase inplace"}},
		{name: "the upgrade suite failed on FROM already: no regression, still a failed gate",
			conformance: all(good), skew: all(skewGood), skewFailed: []string{"base"}, code: 1,
			want: []string{"PASS: no behaviour got worse", "upgrade suite failed in phase base"}},
		{name: "a behaviour missing after the upgrade", conformance: map[string][]string{"base": good, "inplace": good[:2], "canary": good},
			skew: all(skewGood), code: 1, want: []string{"AUTHZ-001", "missing from the candidate"}},
		{name: "an improvement does not gate",
			conformance: map[string][]string{"base": {"MTLS-002=pass/documented", "MTLS-004=pass/equivalent"}, "inplace": good[:2], "canary": good[:2]},
			code:        0, want: []string{"Improvements (1)", "equivalent → documented"}},
		{name: "the canary phase wrote no reports", conformance: map[string][]string{"base": good, "inplace": good}, code: 2,
			want: []string{"cannot compare: candidate: ", "canary: not found", "base → canary   unreadable input (exit 2)"}},
		{name: "missing input wins over a regression", conformance: map[string][]string{"base": good, "inplace": good[:1]}, code: 2,
			want: []string{"base → inplace  FAIL", "unreadable input (exit 2)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := phaseDirs(t, c.conformance, c.skew)
			results := RunGate(p.Diffs())
			var out strings.Builder
			PrintGate(&out, results, c.skewFailed)
			if got := GateCode(results, c.skewFailed); got != c.code {
				t.Errorf("exit %d, want %d\n%s", got, c.code, out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	if GateCode(nil, nil) != 2 {
		t.Error("a gate that compared nothing passed")
	}
}

func TestControlPlaneFor(t *testing.T) {
	def := mesh.ControlPlane{Namespace: "istio-system", Deployment: "istiod", Version: "1.31.1", VersionFrom: "image", Image: "docker.io/istio/pilot:1.31.1"}
	can := mesh.ControlPlane{Namespace: "istio-system", Deployment: "istiod-canary", Revision: "canary", Version: "1.31.1", Image: "docker.io/istio/pilot:1.31.1"}
	p, err := PlanUpgrade(loadSettings(t, nil), "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := ControlPlaneFor([]mesh.ControlPlane{def, can}, p.Phases[2]); err != nil || cp.Deployment != "istiod-canary" {
		t.Errorf("canary: %v %v", cp, err)
	}
	if cp, err := ControlPlaneFor([]mesh.ControlPlane{def, can}, p.Phases[1]); err != nil || cp.Deployment != "istiod" {
		t.Errorf("in place: %v %v", cp, err)
	}
	old := def
	old.Version, old.Image = "1.30.5", "docker.io/istio/pilot:1.30.5"
	_, err = ControlPlaneFor([]mesh.ControlPlane{old}, p.Phases[1])
	if err == nil || !strings.Contains(err.Error(), "after upgrade in place, istiod of revision default runs Istio 1.30.5 (docker.io/istio/pilot:1.30.5), not 1.31.1") {
		t.Errorf("stale istiod: %v", err)
	}
	_, err = ControlPlaneFor([]mesh.ControlPlane{def}, p.Phases[2])
	if err == nil || !strings.Contains(err.Error(), "after install canary, no istiod of revision canary is found (found: istiod istio-system/istiod (revision default, 1.31.1") {
		t.Errorf("no canary: %v", err)
	}
	_, err = ControlPlaneFor(nil, p.Phases[0])
	if err == nil || !strings.Contains(err.Error(), "(found: none)") {
		t.Errorf("nothing: %v", err)
	}
}

// The chart check of the gate asks for both versions and names the one that is missing.
func TestBothVersionsChartCheck(t *testing.T) {
	s := loadSettings(t, map[string]string{"ISTIO_CHART_DIR": localCharts(t)}) // 1.31.1
	s.IstioVersion = "1.30.5"
	err := BothVersions("1.31.1")(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "FROM=1.30.5: ") || strings.Contains(err.Error(), "TO=") {
		t.Fatalf("FROM missing: %v", err)
	}
	if !strings.Contains(err.Error(), "1.31.1") {
		t.Errorf("the error does not point at the version that exists: %v", err)
	}
	s.IstioVersion = "1.31.1"
	if err := BothVersions("1.32.0")(context.Background(), s); err == nil || !strings.Contains(err.Error(), "TO=1.32.0: ") || strings.Contains(err.Error(), "FROM=") {
		t.Errorf("TO missing: %v", err)
	}
}

// localCharts is a chart directory holding the three charts at 1.31.1 only, for ISTIO_CHART_DIR.
func localCharts(t *testing.T) string {
	dir := t.TempDir()
	for _, c := range []string{"base", "istiod", "gateway"} {
		os.MkdirAll(filepath.Join(dir, c), 0o755)
		os.WriteFile(filepath.Join(dir, c, "Chart.yaml"), []byte("apiVersion: v2\nname: "+c+"\nversion: 1.31.1\n"), 0o644)
	}
	return dir
}

// PHASES narrows the gate to one flow: base always, the others in order; an unknown phase and
// canary without inplace are refused with the fix.
func TestPlanOnly(t *testing.T) {
	p, err := PlanUpgrade(settings.Settings{ReportsDir: "/r"}, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	names := func(p UpgradePlan) string {
		var n []string
		for _, ph := range p.Phases {
			n = append(n, ph.Name)
		}
		return strings.Join(n, ",")
	}
	for in, want := range map[string]string{"": "base,inplace,canary", "inplace": "base,inplace", "canary inplace": "base,inplace,canary", "base,inplace": "base,inplace"} {
		got, err := p.Only(in)
		if err != nil || names(got) != want {
			t.Errorf("PHASES=%q: %s %v, want %s", in, names(got), err, want)
		}
		if d := got.Diffs(); len(d) != len(got.Phases)-1 || d[len(d)-1].Candidate != got.Phases[len(got.Phases)-1].Dir {
			t.Errorf("PHASES=%q: diffs %+v", in, d)
		}
	}
	for in, want := range map[string]string{
		"inplce": `PHASES=inplce: no phase "inplce"; the phases are base, inplace, canary`,
		"canary": "PHASES=canary: the canary phase runs after the in-place one",
	} {
		if _, err := p.Only(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PHASES=%q: %v, want %q", in, err, want)
		}
	}
}

// The gate carries the mode: every phase's state and settings keep the run's data-plane mode,
// and a phase whose report is of another mode is refused (exit 2), never diffed.
func TestGateModes(t *testing.T) {
	s := loadSettings(t, map[string]string{"REPORTS_DIR": t.TempDir(), "DATAPLANE_MODE": "ambient"})
	p, err := PlanUpgrade(s, "1.30.5", "1.31.1")
	if err != nil {
		t.Fatal(err)
	}
	st := provision.State{Settings: p.UpgradeSettings(s)}
	st.Istio.DataplaneMode = "ambient"
	for _, ph := range p.Phases {
		if got := ph.PhaseState(st); got.Mode() != "ambient" || !got.Settings.Ambient() {
			t.Errorf("phase %s runs mode %q (settings %q)", ph.Name, got.Mode(), got.Settings.Mode())
		}
	}
	base, cand := t.TempDir(), t.TempDir()
	writeRun(t, base, "1.30.5", "MTLS-002=pass/documented")
	r := report.Report{Run: report.Run{ID: "run2", IstioVersion: "1.31.1", KubernetesVersion: "v1.35.0", Mode: report.ModeAmbient},
		Behaviors: []report.Behavior{{ID: "MTLS-002", Result: report.Pass, Specs: []report.SpecResult{{Name: "MTLS-002 spec", Result: report.Pass}}}}}
	if err := r.WriteFiles(cand); err != nil {
		t.Fatal(err)
	}
	res := RunGate([]DiffPair{{Name: "inplace", Base: base, Candidate: cand}})
	if res[0].Code() != 2 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "results of two modes are never compared as one") {
		t.Errorf("gate over two modes: code %d, %v", res[0].Code(), res[0].Err)
	}
}

// TestZtunnelNote: an ambient gate says what ztunnel's in-place upgrade does to node traffic and
// what the gate enforces about it; a sidecar gate says nothing.
func TestZtunnelNote(t *testing.T) {
	if n := ZtunnelNote(settings.Settings{DataplaneMode: settings.ModeSidecar}); n != "" {
		t.Errorf("sidecar gate: %q, want nothing", n)
	}
	n := ZtunnelNote(settings.Settings{DataplaneMode: settings.ModeAmbient})
	for _, want := range []string{"replaces ztunnel on every node", "lose their connections", "rolled out at TO", "does not measure the interruption", "canary phase moves istiod only"} {
		if !strings.Contains(n, want) {
			t.Errorf("ambient gate note %q lacks %q", n, want)
		}
	}
}
