package report

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the code produces now")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./framework/report -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (rerun with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func sec(s float64) *float64 { return &s }

// timedRun is a run of seven specs on two processes, with every phase measured. The numbers
// are chosen so that the shares can be worked out by hand (TestShares).
func timedRun() Report {
	spec := func(name string, r Result, seconds float64, t *SpecTimings) SpecResult {
		return SpecResult{Name: name, Result: r, DurationSeconds: seconds, Timings: t}
	}
	authz := spec("authz AUTHZ-001 and AUTHZ-005: empty-spec policy, then removed", Pass, 60,
		&SpecTimings{SetupSeconds: sec(25), ConvergenceSeconds: sec(20), MeshWaitSeconds: sec(14), TeardownSeconds: sec(12), WaitSeconds: sec(55)})
	r := Report{
		Run: Run{ID: "timed", IstioVersion: "1.31.4", KubernetesVersion: "v1.36.4", Mode: ModeSidecar},
		Timings: &Timings{Processes: 2, TotalSeconds: sec(640), Phases: []Phase{
			{Name: PhasePreflight, DurationSeconds: 1.2, WaitSeconds: sec(0)},
			{Name: PhaseCluster, DurationSeconds: 45.1, WaitSeconds: sec(12)},
			{Name: PhaseImages, DurationSeconds: 123.4, WaitSeconds: sec(0)},
			{Name: PhaseIstio, DurationSeconds: 90.2, WaitSeconds: sec(70.5)},
			{Name: PhaseCompile, DurationSeconds: 40.2},
			{Name: PhaseBaseline, DurationSeconds: 20.1, WaitSeconds: sec(15.3)},
			{Name: PhaseSpecs, DurationSeconds: 300},
			{Name: PhaseCleanup, DurationSeconds: 12.3, WaitSeconds: sec(0)},
		}},
		Behaviors: []Behavior{
			{ID: "MTLS-002", Result: Pass, Specs: []SpecResult{spec("mtls MTLS-002: namespace STRICT rejects plaintext", Pass, 41.5,
				&SpecTimings{SetupSeconds: sec(20), ConvergenceSeconds: sec(6.2), MeshWaitSeconds: sec(5.1), TeardownSeconds: sec(12), WaitSeconds: sec(35)})}},
			{ID: "MTLS-007", Result: Fail, Specs: []SpecResult{spec("mtls MTLS-007: mesh-wide STRICT", Fail, 95,
				&SpecTimings{SetupSeconds: sec(30), ConvergenceSeconds: sec(60), MeshWaitSeconds: sec(60), TeardownSeconds: sec(3), DiagnosticsSeconds: sec(1.5), WaitSeconds: sec(91)})}},
			{ID: "MTLS-009", Result: LeftOut, Specs: []SpecResult{{Name: "mtls MTLS-009: non-mesh workloads", Result: LeftOut, DurationSeconds: 0.001,
				Message: LeftOutValue{Reason: "needs a running data plane; this run has none (DATAPLANE=0)"}.String()}}},
			{ID: "MTLS-012", Result: Pass, Specs: []SpecResult{spec("mtls MTLS-012: MySQL under PERMISSIVE vs STRICT", Pass, 192.4,
				&SpecTimings{SetupSeconds: sec(170), ConvergenceSeconds: sec(12), MeshWaitSeconds: sec(8), TeardownSeconds: sec(10), WaitSeconds: sec(185)})}},
			{ID: "CERT-003", Result: Pass, Specs: []SpecResult{spec("identity CERT-003: injector webhook has a CA bundle", Pass, 3.2,
				&SpecTimings{ConvergenceSeconds: sec(3), MeshWaitSeconds: sec(0), WaitSeconds: sec(3)})}},
			{ID: "AUTHZ-001", Result: Pass, Specs: []SpecResult{authz}},
			{ID: "AUTHZ-005", Result: Pass, Specs: []SpecResult{authz}},
			{ID: "PROBE-001", Result: Pass, Specs: []SpecResult{spec("health probes PROBE-001: probes keep working under STRICT", Pass, 50,
				&SpecTimings{SetupSeconds: sec(22), ConvergenceSeconds: sec(15), MeshWaitSeconds: sec(1), TeardownSeconds: sec(11), WaitSeconds: sec(47)})}},
		},
	}
	for i := range r.Behaviors {
		for _, s := range r.Behaviors[i].Specs {
			r.Behaviors[i].DurationSeconds += s.DurationSeconds
		}
	}
	r.finish()
	return r
}

// TestShares works the shares out by hand: the phases' waits as measured, the specs phase
// split as the specs' summed times are (416s of waits in 442.101s of specs, over a 300s
// phase), kind, Docker and Helm as the provisioning phases outside the waiter, meshconform
// the rest of the total. A spec under two behaviour IDs counts once.
func TestShares(t *testing.T) {
	sh, ok := timedRun().Shares()
	if !ok {
		t.Fatal("no shares")
	}
	specs := 300 * 416 / 442.101
	want := map[string]float64{
		"of":          640,
		"waiting":     12 + 70.5 + 15.3 + specs,
		"tools":       (45.1 - 12) + 123.4 + (90.2 - 70.5) + 12.3,
		"meshconform": 640 - (12 + 70.5 + 15.3 + specs) - ((45.1 - 12) + 123.4 + (90.2 - 70.5) + 12.3),
	}
	got := map[string]float64{"of": sh.Of.Seconds(), "waiting": sh.Waiting.Seconds(), "tools": sh.Tools.Seconds(), "meshconform": sh.Meshconform.Seconds()}
	for k, w := range want {
		if math.Abs(got[k]-w) > 0.01 {
			t.Errorf("%s = %.3fs, want %.3fs", k, got[k], w)
		}
	}
	if !sh.Measured || !sh.Approx || sh.Processes != 2 {
		t.Errorf("shares %+v: want measured against the total, marked approximate, 2 processes", sh)
	}

	// Without a total, the phases recorded are what is divided.
	r := timedRun()
	r.Timings.TotalSeconds = nil
	if sh, ok := r.Shares(); !ok || sh.Measured || math.Abs(sh.Of.Seconds()-632.5) > 0.01 {
		t.Errorf("without a total: %+v, want the 632.5s of the phases, not measured", sh)
	}
	// Spec timings without the specs phase they fell in cannot be scaled: no shares.
	r.Timings.Phases = r.Timings.Phases[:6]
	if _, ok := r.Shares(); ok {
		t.Error("shares computed without the specs phase")
	}
	if _, ok := (Report{}).Shares(); ok {
		t.Error("shares of a report without timings")
	}
}

// TestClosingTable: the closing table lists the five slowest specs (a spec under two IDs
// once), what each spent in each part (absent parts left out), the specs' parts summed, the
// phases and the shares, marked approximate.
func TestClosingTable(t *testing.T) {
	text := timedRun().SummaryText()
	golden(t, "closing-table.golden", text)
	var slow []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "  slowest specs:"):
			in = true
		case in && strings.HasPrefix(l, "    "):
			slow = append(slow, strings.TrimSpace(l))
		default:
			in = false
		}
	}
	wantFirst := []string{"3m12s  mtls MTLS-012", "1m35s  mtls MTLS-007", "1m0s  authz AUTHZ-001", "50s  health probes PROBE-001", "41.5s  mtls MTLS-002"}
	if len(slow) != slowest {
		t.Fatalf("%d slowest specs, want %d:\n%s", len(slow), slowest, text)
	}
	for i, w := range wantFirst {
		if !strings.HasPrefix(slow[i], w) {
			t.Errorf("slowest #%d is %q, want %q…", i+1, slow[i], w)
		}
	}
	for _, want := range []string{
		"time: 10m40s, from preflight to cleanup\n",
		"(setup 2m50s, convergence 12s (8s waiting for the mesh), teardown 10s)",
		"diagnostics 1.5s)",
		"specs: 7m22s summed over 7 on 2 processes: setup 4m27s, convergence 1m56s (1m28s waiting for the mesh), teardown 48s, diagnostics 1.5s, their own work 9.4s",
		"≈: the specs phase is split as its specs' summed times are, which overlap on 2 processes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("closing table lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "CERT-003: injector webhook has a CA bundle (setup") {
		t.Errorf("a spec without setup shows one:\n%s", text)
	}
}

// A report from before timings reads as it did, and its closing table says nothing of time.
func TestOldReportsHaveNoTimings(t *testing.T) {
	for _, f := range []string{"base.json", "candidate.junit.xml"} {
		r, err := Read(filepath.Join(fixtures, f))
		if err != nil {
			t.Fatal(err)
		}
		if r.Timings != nil || r.TimeText() != "" || strings.Contains(r.SummaryText(), "time:") {
			t.Errorf("%s: timings %+v, time text %q", f, r.Timings, r.TimeText())
		}
		for _, s := range r.specs() {
			if s.Timings != nil {
				t.Errorf("%s: spec %q has timings %+v", f, s.Name, s.Timings)
			}
		}
	}
	old, err := Read("../../cmd/meshconform/testdata/base.json")
	if err != nil || old.Timings != nil {
		t.Errorf("an old conformance report: %v, timings %+v", err, old.Timings)
	}
}

// The suites' entries reach the report through Ginkgo's JSON report and its JUnit XML alike:
// the run's phases from the suite-level node, each spec's timings from its own entry (a spec
// that recorded none has none), the processes from Ginkgo's configuration.
func TestTimingsFromEntries(t *testing.T) {
	phases := Timings{Phases: []Phase{Measured(PhaseCluster, 41*time.Second, 3*time.Second), {Name: PhaseCompile, DurationSeconds: 12.5}}}
	st := SpecTimings{SetupSeconds: sec(20), ConvergenceSeconds: sec(6.2), MeshWaitSeconds: sec(0), WaitSeconds: sec(24)}
	suite := types.Report{SuiteConfig: types.SuiteConfig{ParallelTotal: 2}, SpecReports: []types.SpecReport{
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStatePassed, ReportEntries: []types.ReportEntry{entry(EntryTimings, phases)}},
		ginkgoSpec(types.SpecStatePassed, []string{"MTLS-002"}, entry(EntrySpecTimings, st)),
		ginkgoSpec(types.SpecStateSkipped, []string{"MTLS-003"}),
	}}
	check := func(how string, r Report) {
		t.Helper()
		if r.Timings == nil || r.Timings.Processes != 2 || !reflect.DeepEqual(r.Timings.Phases, phases.Phases) {
			t.Errorf("%s: timings %+v, want the phases recorded and 2 processes", how, r.Timings)
		}
		b, _ := r.Behavior("MTLS-002")
		if b.Specs[0].Timings == nil || !reflect.DeepEqual(*b.Specs[0].Timings, st) {
			t.Errorf("%s: spec timings %+v, want %+v", how, b.Specs[0].Timings, st)
		}
		if b.Specs[0].Timings != nil && b.Specs[0].Timings.MeshWaitSeconds == nil {
			t.Errorf("%s: a measured 0 was dropped", how)
		}
		if s, _ := r.Behavior("MTLS-003"); s.Specs[0].Timings != nil {
			t.Errorf("%s: a spec that recorded no timings has %+v", how, s.Specs[0].Timings)
		}
	}
	fromJSON, err := FromGinkgo(roundTrip(t, suite))
	if err != nil {
		t.Fatal(err)
	}
	check("Ginkgo JSON", fromJSON)
	inProcess, err := FromGinkgo([]types.Report{suite})
	if err != nil {
		t.Fatal(err)
	}
	check("in process", inProcess)

	pj, _ := json.Marshal(phases)
	sj, _ := json.Marshal(st)
	x := `<testsuites><testsuite name="s" timestamp="2026-01-02T03:04:05">
  <properties><property name="ParallelTotal" value="2"></property></properties>
  <testcase name="[SynchronizedBeforeSuite]" status="passed"><properties><property name="` + EntryTimings + `" value='` + string(pj) + `'></property></properties></testcase>
  <testcase name="[It] spec MTLS-002 [MTLS-002]" status="passed" time="1.5"><properties><property name="` + EntrySpecTimings + `" value='` + string(sj) + `'></property></properties></testcase>
  <testcase name="[It] spec MTLS-003 [MTLS-003]" status="skipped"><skipped message="skipped"></skipped></testcase>
</testsuite></testsuites>`
	fromJUnit, err := Parse([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	check("JUnit", fromJUnit)

	// Written and read back, as conformance.json and .yaml.
	dir := t.TempDir()
	if err := fromJSON.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FileJSON, FileYAML} {
		back, err := Read(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		check(f+" read back", back)
	}
}

// RecordEnd adds the cleanup and the total to this run's report, and leaves another run's
// alone.
func TestRecordEnd(t *testing.T) {
	dir := t.TempDir()
	if _, err := RecordEnd(dir, "r1", Measured(PhaseCleanup, time.Second, 0), time.Minute); err == nil || !strings.Contains(err.Error(), "the suites wrote none") {
		t.Errorf("no report: %v", err)
	}
	r := timedRun()
	r.Timings.TotalSeconds = nil
	r.Timings.Phases = r.Timings.Phases[:7] // no cleanup yet
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, FileJSON))
	if _, err := RecordEnd(dir, "r2", Measured(PhaseCleanup, time.Second, 0), time.Minute); err == nil || !strings.Contains(err.Error(), `run "timed"'s, not this run's (r2)`) {
		t.Errorf("another run's report: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, FileJSON)); string(after) != string(before) {
		t.Error("another run's report was rewritten")
	}
	got, err := RecordEnd(dir, "timed", Measured(PhaseCleanup, 12300*time.Millisecond, 0), 640*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FileJSON, FileYAML} {
		back, err := Read(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		p, ok := back.Timings.Phase(PhaseCleanup)
		if !ok || p.DurationSeconds != 12.3 || back.Timings.TotalSeconds == nil || *back.Timings.TotalSeconds != 640 {
			t.Errorf("%s: cleanup %+v (%v), total %v", f, p, ok, back.Timings.TotalSeconds)
		}
		if len(back.Timings.Phases) != 8 || back.Timings.Phases[7].Name != PhaseCleanup {
			t.Errorf("%s: phases %+v, want cleanup last", f, back.Timings.Phases)
		}
	}
	if got.SummaryText() != timedRun().SummaryText() {
		t.Errorf("the amended report's closing table differs from the run's:\n%s", got.SummaryText())
	}
}

// The matrix shows each column's run time when its runs measured one ("—" where not), and each
// cell's time beside it when asked; a report from before timings gives the matrix it gave.
func TestMatrixDurations(t *testing.T) {
	untimed := Report{Run: Run{IstioVersion: "1.30.8", KubernetesVersion: "v1.35.8", Source: "old/conformance.json"},
		Behaviors: []Behavior{{ID: "MTLS-002", Result: Pass, DurationSeconds: 38.25,
			Specs: []SpecResult{{Name: "mtls MTLS-002: namespace STRICT rejects plaintext", Result: Pass, DurationSeconds: 38.25}}}}}
	untimed.finish()
	timed := timedRun()
	timed.Run.Source = "timed/conformance.json"
	m := Merge(timed, untimed)
	if got := []string{m.Columns[0].RunTime(), m.Columns[1].RunTime()}; got[0] != "10m40s" || got[1] != "" {
		t.Errorf("run times %q, want 10m40s and none", got)
	}
	var plain, with strings.Builder
	if err := m.Markdown(&plain); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plain.String(), "| | **run time** | 10m40s | — |") || strings.Contains(plain.String(), "✅ 41.5s") {
		t.Errorf("without -durations: want the run time row and no cell times:\n%s", plain.String())
	}
	m.Durations = true
	if err := m.Markdown(&with); err != nil {
		t.Fatal(err)
	}
	golden(t, "matrix-durations.md.golden", with.String())
	for _, want := range []string{"| MTLS-002 | Namespace STRICT rejects plaintext | ✅ 41.5s | ✅ 38.3s |", "❌ FAIL 1m35s", "⬜ left out |",
		"  time: setup 30s, convergence 1m0s (1m0s waiting for the mesh), teardown 3s, diagnostics 1.5s\n"} {
		if !strings.Contains(with.String(), want) {
			t.Errorf("with -durations, the matrix lacks %q:\n%s", want, with.String())
		}
	}

	var page strings.Builder
	if err := m.HTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-duration="41.5s"`, `data-duration="1m35s"`, `<input type="checkbox" id="show-durations" checked>`,
		`<td class="runtime" data-col="0">10m40s</td><td class="runtime" data-col="1">—</td>`} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	// Two runs of one column add up; a column where only some measured says so.
	again := timedRun()
	again.Run.Source, again.Run.ID = "again/conformance.json", "again"
	if got := Merge(timed, again).Columns[0].RunTime(); got != "21m20s (2 runs)" {
		t.Errorf("two timed runs: %q", got)
	}
	old := timedRun()
	old.Run.Source, old.Timings = "old/conformance.json", nil
	if got := Merge(timed, old).Columns[0].RunTime(); got != "10m40s (1 of 2 runs)" {
		t.Errorf("one of two timed: %q", got)
	}
	if Merge(untimed).HasRunTimes() {
		t.Error("a matrix of untimed runs has run times")
	}
}
