package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// Real Ginkgo output, written by cmd/meshconform/testdata/ginkgo-fixture/gen.sh.
const fixtures = "../../cmd/meshconform/testdata/ginkgo"

// One run read from Ginkgo's JSON report and from its JUnit XML gives the same behaviours:
// the report entries reach both.
func TestGinkgoJSONAndJUnitAgree(t *testing.T) {
	for _, n := range []string{"base", "candidate"} {
		fromJSON, err := Read(filepath.Join(fixtures, n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		fromJUnit, err := Read(filepath.Join(fixtures, n+".junit.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(fromJSON.Behaviors) == 0 {
			t.Fatalf("%s: no behaviours", n)
		}
		for i := range fromJSON.Behaviors {
			a, b := fromJSON.Behaviors[i], fromJUnit.Behaviors[i]
			if !reflect.DeepEqual(a, b) {
				ja, _ := json.MarshalIndent(a, "", " ")
				jb, _ := json.MarshalIndent(b, "", " ")
				t.Errorf("%s %s differs:\nfrom JSON:  %s\nfrom JUnit: %s", n, a.ID, ja, jb)
			}
		}
		ra, rb := fromJSON.Run, fromJUnit.Run
		ra.Source, rb.Source, ra.Date, rb.Date = "", "", time.Time{}, time.Time{}
		if !reflect.DeepEqual(ra, rb) {
			t.Errorf("%s: run from JSON %+v, from JUnit %+v", n, ra, rb)
		}
		if d := fromJSON.Run.Date.Sub(fromJUnit.Run.Date); d < 0 || d >= time.Second {
			t.Errorf("%s: dates %s (JSON) and %s (JUnit) are not the same second", n, fromJSON.Run.Date, fromJUnit.Run.Date)
		}
	}
}

func TestBuiltFromRealGinkgoReport(t *testing.T) {
	r, err := Read(filepath.Join(fixtures, "candidate.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Run{ID: "fx-candidate", IstioVersion: "1.31.1", KubernetesVersion: "1.37.0", NodeImage: "kindest/node:v1.37.0",
		Mode: ModeSidecar, Cluster: ClusterCreated}
	got := r.Run
	got.Date, got.Source = time.Time{}, ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("run is %+v, want %+v (from the meshconform.run entry)", got, want)
	}
	if r.Run.Date.IsZero() {
		t.Error("run has no date; the suite's start time should give one")
	}
	for _, c := range []struct {
		id     string
		result Result
		class  Classification
		specs  int
		seen   string
	}{
		{"MTLS-002", Fail, Deviation, 1, "HTTP 200, curl exit 0"},
		{"MTLS-005", Skip, "", 1, "needs a cluster the suite created (disruptive)"},
		{"CERT-002", Pass, "", 1, "openssl s_client: 2 certificates"},
		// two specs, one failed: the behaviour fails, and shows what the failed one saw
		{"AUTHZ-002", Fail, Documented, 2, "HTTP 403"},
		// one spec for two IDs, classified per ID
		{"AUTHZ-001", Pass, Documented, 1, "HTTP 403"},
		{"AUTHZ-005", Pass, Equivalent, 1, "HTTP 200"},
	} {
		b, ok := r.Behavior(c.id)
		if !ok {
			t.Errorf("%s missing", c.id)
			continue
		}
		if b.Result != c.result || b.Classification != c.class || len(b.Specs) != c.specs || !strings.HasPrefix(b.Seen(), c.seen) {
			t.Errorf("%s is %s with %d specs, seen %q; want %s/%s with %d, seen %q…", c.id, b.State(), len(b.Specs), b.Seen(), c.result, c.class, c.specs, c.seen)
		}
	}
	if a1, _ := r.Behavior("AUTHZ-001"); len(a1.Evidence) != 1 || a1.Evidence[0].ID != "AUTHZ-001" {
		t.Errorf("AUTHZ-001 evidence %+v: the entry scoped to AUTHZ-005 leaked in", a1.Evidence)
	}
	for _, b := range r.Behaviors {
		for _, s := range b.Specs {
			if strings.Contains(s.Name, "without a behaviour ID") {
				t.Errorf("%s carries the spec %q, which has no behaviour ID", b.ID, s.Name)
			}
		}
	}
	if r.Summary.Behaviors != len(r.Behaviors) || r.Summary.Passed+r.Summary.Failed+r.Summary.Skipped != len(r.Behaviors) {
		t.Errorf("summary %+v does not add up to %d behaviours", r.Summary, len(r.Behaviors))
	}
}

func ginkgoSpec(state types.SpecState, labels []string, entries ...types.ReportEntry) types.SpecReport {
	return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: "spec " + strings.Join(labels, " "),
		LeafNodeLabels: labels, State: state, ReportEntries: entries, RunTime: 1500 * time.Millisecond}
}

func entry(name string, v any) types.ReportEntry {
	return types.ReportEntry{Name: name, Value: types.WrapEntryValue(v)}
}

// Entries go through Ginkgo's own JSON encoding, as in a real report file.
func roundTrip(t *testing.T, suites ...types.Report) []types.Report {
	t.Helper()
	data, err := json.Marshal(suites)
	if err != nil {
		t.Fatal(err)
	}
	var out []types.Report
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEntries(t *testing.T) {
	suite := types.Report{StartTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), SpecReports: []types.SpecReport{
		ginkgoSpec(types.SpecStatePassed, []string{"MTLS-002", "mtls"},
			entry(EntryClassification, Classified(Documented, "saw 56")),
			// several probes: the worst classification wins
			entry(EntryClassification, Classified(Equivalent, "saw 52")),
			// a value recorded as a string holding JSON is read too
			entry(EntryEvidence, `{"text":"as a string","httpCode":0}`),
			entry("someone.else", map[string]int{"x": 1})),
	}}
	r, err := FromGinkgo(roundTrip(t, suite))
	if err != nil {
		t.Fatal(err)
	}
	b := r.Behaviors[0]
	if b.Classification != Equivalent || b.Reason != "saw 52" {
		t.Errorf("classification %s (%s), want equivalent (saw 52)", b.Classification, b.Reason)
	}
	if len(b.Evidence) != 1 || b.Evidence[0].Text != "as a string" || b.Evidence[0].HTTPCode == nil || *b.Evidence[0].HTTPCode != 0 {
		t.Errorf("evidence %+v", b.Evidence)
	}
	if b.DurationSeconds != 1.5 {
		t.Errorf("duration %v, want 1.5", b.DurationSeconds)
	}

	bad := types.Report{SpecReports: []types.SpecReport{ginkgoSpec(types.SpecStatePassed, []string{"MTLS-002"},
		entry(EntryClassification, Classified("fine", "")))}}
	if _, err := FromGinkgo(roundTrip(t, bad)); err == nil || !strings.Contains(err.Error(), `class "fine"`) {
		t.Errorf("an unknown class gave %v, want an error naming it", err)
	}
}

func TestSuitesOfOneRunMustAgreeOnVersions(t *testing.T) {
	suite := func(istio string) types.Report {
		return types.Report{SpecReports: []types.SpecReport{
			{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStatePassed,
				ReportEntries: []types.ReportEntry{entry(EntryRun, Run{IstioVersion: istio})}},
			ginkgoSpec(types.SpecStatePassed, []string{"MTLS-001"}),
		}}
	}
	if _, err := FromGinkgo(roundTrip(t, suite("1.2.3"), suite("1.2.3"))); err != nil {
		t.Errorf("two suites on one version: %v", err)
	}
	if _, err := FromGinkgo(roundTrip(t, suite("1.2.3"), suite("1.2.4"))); err == nil || !strings.Contains(err.Error(), "1.2.3 and 1.2.4") {
		t.Errorf("two suites on two versions gave %v, want an error naming both", err)
	}
	if _, err := FromGinkgo(roundTrip(t, suite("1.2.3")), WithRun(Run{IstioVersion: "9.9.9"})); err == nil {
		t.Error("a flag contradicting the recorded version was accepted")
	}
}

func TestSuiteFailureAndDryRun(t *testing.T) {
	failed := types.Report{SpecReports: []types.SpecReport{
		{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStateFailed,
			Failure: types.Failure{Message: "istiod not ready after 5m\nmore"}},
		ginkgoSpec(types.SpecStateSkipped, []string{"MTLS-001"}),
	}}
	r, err := FromGinkgo(roundTrip(t, failed))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"[SynchronizedBeforeSuite] istiod not ready after 5m"}; !slices.Equal(r.Run.SuiteFailures, want) {
		t.Errorf("suite failures %q, want %q", r.Run.SuiteFailures, want)
	}
	dry := types.Report{SuiteConfig: types.SuiteConfig{DryRun: true}, SpecReports: []types.SpecReport{ginkgoSpec(types.SpecStatePassed, []string{"MTLS-001"})}}
	r, err = FromGinkgo(roundTrip(t, dry))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Run.DryRun || r.Behaviors[0].Result != Skip {
		t.Errorf("dry run gave %s (dryRun %v); nothing ran, so it must be a skip", r.Behaviors[0].Result, r.Run.DryRun)
	}
}

func TestJUnitVariants(t *testing.T) {
	x := `<?xml version="1.0"?>
<testsuite name="other" timestamp="2026-01-02T03:04:05">
  <testcase name="[It] panics [MTLS-001]" status="panicked"><error message="boom" type="panicked">stack</error></testcase>
  <testcase name="[It] plain junit with no status [MTLS-002, mtls]"></testcase>
  <testcase name="[It] pending [MTLS-003]" status="pending"><skipped message="pending"></skipped></testcase>
  <testcase name="[It] text [with brackets] inside [MTLS-004]" status="passed"></testcase>
</testsuite>`
	r, err := Parse([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Result{"MTLS-001": Fail, "MTLS-002": Pass, "MTLS-003": Skip, "MTLS-004": Pass}
	for id, res := range want {
		if b, ok := r.Behavior(id); !ok || b.Result != res {
			t.Errorf("%s: %v %s, want %s", id, ok, b.Result, res)
		}
	}
	if b, _ := r.Behavior("MTLS-004"); b.Specs[0].Name != "text [with brackets] inside" {
		t.Errorf("spec name %q", b.Specs[0].Name)
	}
	if !r.Run.Date.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("date %s", r.Run.Date)
	}
}

func TestReadErrorsNameTheProblem(t *testing.T) {
	for _, c := range []struct{ data, problem string }{
		{"", "empty file"},
		{"   \n", "empty file"},
		{"hello", "plain text"},
		{"{\"kind\": \"Other\"}", `kind is "Other"`},
		{"{\"kind\": \"ConformanceReport\", \"behaviours\": []}", "malformed conformance report"},
		{"[1, 2]", "not a Ginkgo JSON report"},
		{"<a/>", "<a>"},
		{"<testsuites", "not well-formed XML"},
		{"<testsuites><testsuite><testcase name=\"[It] x\"/></testsuite></testsuites>", "no behaviour IDs"},
	} {
		_, err := Parse([]byte(c.data))
		var ie *InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("Parse(%q) = %v, want an InputError saying %q", c.data, err, c.problem)
		}
	}
	if _, err := Read("testdata/does-not-exist.json"); err == nil || err.Error() != "testdata/does-not-exist.json: not found" {
		t.Errorf("missing file: %v", err)
	}
}

func TestWriteAndReadBack(t *testing.T) {
	r, err := Read(filepath.Join(fixtures, "base.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FileJSON, FileYAML} {
		back, err := Read(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		back.Run.Source = r.Run.Source
		if !reflect.DeepEqual(back, r) {
			t.Errorf("%s does not read back as written", f)
		}
	}
}

func TestCompare(t *testing.T) {
	b := func(r Result, c Classification) Behavior { return Behavior{Result: r, Classification: c} }
	for _, c := range []struct {
		base, cand Behavior
		kind       ChangeKind
	}{
		{b(Pass, Documented), b(Pass, Documented), Unchanged},
		{b(Pass, Documented), b(Fail, Documented), Regression},
		{b(Pass, Documented), b(Pass, Equivalent), Regression},
		{b(Pass, Documented), b(Fail, Deviation), Regression},
		{b(Pass, Equivalent), b(Fail, Deviation), Regression},
		{b(Pass, Equivalent), b(Pass, Deviation), Regression},
		{b(Pass, ""), b(Skip, ""), Regression},
		{b(Skip, ""), b(Fail, ""), Regression},
		{b(Fail, Deviation), b(Pass, Documented), Improvement},
		{b(Pass, Equivalent), b(Pass, Documented), Improvement},
		{b(Fail, ""), b(Skip, ""), Improvement},
		{b(Fail, ""), b(Fail, ""), Unchanged},
		// better result, worse classification: worse in one respect gates
		{b(Fail, Documented), b(Pass, Equivalent), Regression},
		// one side unclassified: not compared
		{b(Pass, Documented), b(Pass, ""), Unchanged},
	} {
		if k, why := compare(c.base, c.cand); k != c.kind {
			t.Errorf("%s → %s is %s (%v), want %s", c.base.State(), c.cand.State(), k, why, c.kind)
		}
	}
}

// The matrix depends on the runs, not on the order they are given in.
func TestMergeIsDeterministic(t *testing.T) {
	runs := sampleRuns()
	var a, b bytes.Buffer
	if err := Merge(runs...).HTML(&a); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(runs)
	if err := Merge(runs...).HTML(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the HTML page changes with the order of the runs")
	}
	m := Merge(runs...)
	if got := m.IstioVersions(); len(got) < 1 || compareVersions(got[0], got[len(got)-1]) < 0 {
		t.Errorf("columns are not newest Istio first: %v", got)
	}
	// Self-contained: no tag loads anything (evidence text may quote URLs; tags may not).
	if loads := regexp.MustCompile(`<[a-z]+[^>]*\s(src|href)=|<link|@import|url\(`).FindString(a.String()); loads != "" {
		t.Errorf("the page loads something from outside itself: %s", loads)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.9.0", "1.10.0", -1}, {"1.31.1", "1.31.1", 0}, {"v1.37.0", "1.36.4", 1}, {"1.30", "1.30.1", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestFromGinkgoInProcess: a serial run's ReportAfterSuite gets Ginkgo's in-process report,
// whose entries hold Go values and no AsJSON yet; they must read as a file's do.
func TestFromGinkgoInProcess(t *testing.T) {
	suite := types.Report{SpecReports: []types.SpecReport{ginkgoSpec(types.SpecStateFailed, []string{"MTLS-002", "mtls"},
		entry(EntryClassification, Classified(Deviation, "saw 200").For("MTLS-002")),
		entry(EntryEvidence, Evidence{HTTPCode: new(200), CurlExit: new(0), History: []string{"#1 +0.0s deviation http_code=200 exit=0"}}.For("MTLS-002")))}}
	r, err := FromGinkgo([]types.Report{suite})
	if err != nil {
		t.Fatalf("in-process report: %v", err)
	}
	b, _ := r.Behavior("MTLS-002")
	if b.State() != "fail/deviation" || b.Reason != "saw 200" || len(b.Evidence) != 1 || *b.Evidence[0].HTTPCode != 200 || len(b.Evidence[0].History) != 1 {
		t.Errorf("in-process report read as %s %q %+v", b.State(), b.Reason, b.Evidence)
	}
}

// The data-plane mode: a report without one ran sidecars; two modes are never compared as one
// (Comparable, which report diff and the gate check first), never combined into one report,
// and never share a matrix column.
func TestModes(t *testing.T) {
	old := Run{ID: "old", IstioVersion: "1.31.1", KubernetesVersion: "1.37.0"} // before the field
	side := Run{ID: "s", IstioVersion: "1.31.1", KubernetesVersion: "1.37.0", Mode: ModeSidecar}
	amb := Run{ID: "a", IstioVersion: "1.31.1", KubernetesVersion: "1.37.0", Mode: ModeAmbient}
	if RunMode(old) != ModeSidecar {
		t.Errorf("a report without a mode reads as %q", RunMode(old))
	}
	if err := Comparable(old, side); err != nil {
		t.Errorf("old vs sidecar: %v", err)
	}
	for _, pair := range [][2]Run{{side, amb}, {amb, old}} {
		err := Comparable(pair[0], pair[1])
		if err == nil || !strings.Contains(err.Error(), "results of two modes are never compared as one") {
			t.Errorf("%s vs %s: %v, want a refusal", RunMode(pair[0]), RunMode(pair[1]), err)
		}
	}
	r := side
	if err := r.mergeRun(amb); err == nil || !strings.Contains(err.Error(), "different data-plane modes (sidecar and ambient)") {
		t.Errorf("one report of two modes: %v", err)
	}
	rep := func(run Run, res Result) Report {
		run.Source = run.ID + ".json"
		return Report{Run: run, Behaviors: []Behavior{{ID: "MTLS-002", Result: res}}}
	}
	m := Merge(rep(amb, Fail), rep(side, Pass), rep(old, Pass))
	if len(m.Columns) != 2 {
		t.Fatalf("columns %v, want sidecar (old and new reports) and ambient apart", m.Columns)
	}
	if got := m.Columns[0].Label() + " | " + m.Columns[1].Label(); got != "1.31.1 / k8s 1.37.0 sidecar | 1.31.1 / k8s 1.37.0 ambient" {
		t.Errorf("columns %s", got)
	}
	if len(m.Columns[0].Runs) != 2 || m.Rows[0].Cells[1].Status() == m.Rows[0].Cells[0].Status() {
		t.Errorf("cells %v / %v", m.Rows[0].Cells[0].Status(), m.Rows[0].Cells[1].Status())
	}
	if v := m.Versions(); !strings.HasSuffix(v, "× sidecar, ambient data plane") {
		t.Errorf("matrix header %q does not name both modes", v)
	}
	if d := amb.Describe(); !strings.Contains(d, "ambient data plane") {
		t.Errorf("Describe() = %q", d)
	}
}

// The ingress API: a report without one used Istio's (the gateway chart); INGRESS-001/002 of
// two ingress APIs are never compared as one (Comparable) and never share a matrix column, and
// a run of the Gateway API says so.
func TestIngressAPIs(t *testing.T) {
	old := Run{ID: "old", IstioVersion: "1.31.1", KubernetesVersion: "1.37.0", Mode: ModeSidecar}
	gw := old
	gw.ID, gw.IngressAPI = "gw", IngressGatewayAPI
	if RunIngress(old) != IngressIstio || RunIngress(gw) != IngressGatewayAPI {
		t.Errorf("RunIngress: %q, %q", RunIngress(old), RunIngress(gw))
	}
	if err := Comparable(old, old); err != nil {
		t.Errorf("istio vs istio: %v", err)
	}
	for _, pair := range [][2]Run{{old, gw}, {gw, old}} {
		if err := Comparable(pair[0], pair[1]); err == nil || !strings.Contains(err.Error(), "INGRESS-001/002 of two ingress APIs are never compared as one; compare two runs of the same INGRESS_API") {
			t.Errorf("%s vs %s: %v, want a refusal", RunIngress(pair[0]), RunIngress(pair[1]), err)
		}
	}
	rep := func(run Run, res Result) Report {
		run.Source = run.ID + ".json"
		return Report{Run: run, Behaviors: []Behavior{{ID: "INGRESS-001", Result: res}}}
	}
	m := Merge(rep(old, Pass), rep(gw, Fail))
	if len(m.Columns) != 2 {
		t.Fatalf("columns %v, want the two ingress APIs apart", m.Columns)
	}
	if got := m.Columns[0].Label() + " | " + m.Columns[1].Label(); got != "1.31.1 / k8s 1.37.0 sidecar | 1.31.1 / k8s 1.37.0 sidecar gateway-api ingress" {
		t.Errorf("columns %s", got)
	}
	if d := gw.Describe(); !strings.Contains(d, "sidecar data plane, Gateway API ingress") {
		t.Errorf("Describe() = %q", d)
	}
	if d := old.Describe(); strings.Contains(d, "ingress") {
		t.Errorf("Describe() of the default = %q", d)
	}
	r := Run{}
	if err := r.mergeRun(gw); err != nil || r.IngressAPI != IngressGatewayAPI {
		t.Errorf("mergeRun: %v, %q", err, r.IngressAPI)
	}
}
