package record_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"meshconform/framework/report"
)

// TestRecordingSuite is the recording suite itself; TestRecordedReport runs it in a child
// process (Ginkgo runs one suite per process), with specs that are meant to fail.
func TestRecordingSuite(t *testing.T) {
	if os.Getenv(envReportsDir) == "" {
		t.Skip("run by TestRecordedReport")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "recording")
}

// TestRecordedReport runs the recording suite (no cluster: a scripted executor and a
// loopback API server) and reads the conformance report it wrote: every field a spec
// recorded must be what it observed.
func TestRecordedReport(t *testing.T) {
	dir, out, err := runRecordingSuite()
	if dir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the recording suite has failing specs on purpose, so it must exit non-zero; got %v\n%s", err, out)
	}
	rep, err := report.Read(filepath.Join(dir, report.FileJSON))
	if err != nil {
		t.Fatalf("the suite wrote no readable conformance report: %v\n%s", err, out)
	}
	ginkgoJSON, err := os.ReadFile(filepath.Join(dir, "ginkgo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var suites []types.Report
	if err := json.Unmarshal(ginkgoJSON, &suites); err != nil {
		t.Fatal(err)
	}

	get := func(id string) report.Behavior {
		t.Helper()
		b, ok := rep.Behavior(id)
		if !ok {
			t.Fatalf("the report has no %s:\n%s", id, out)
		}
		return b
	}
	one := func(b report.Behavior) report.Evidence {
		t.Helper()
		if len(b.Evidence) == 0 {
			t.Fatalf("%s: no evidence recorded", b.ID)
		}
		return b.Evidence[len(b.Evidence)-1]
	}
	code := func(p *int) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprintf("%03d", *p)
	}
	exitOf := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	expect := func(id, what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s = %v, want %v", id, what, got, want)
		}
	}
	contains := func(id, what, s, sub string) {
		t.Helper()
		if !strings.Contains(s, sub) {
			t.Errorf("%s: %s lacks %q:\n%s", id, what, sub, s)
		}
	}
	history := func(b report.Behavior, ev report.Evidence, want ...string) {
		t.Helper()
		h := strings.Join(ev.History, "\n")
		if len(ev.History) == 0 || len(ev.History) != min(ev.Attempts, 64) {
			t.Errorf("%s: %d history lines for %d attempts:\n%s", b.ID, len(ev.History), ev.Attempts, h)
		}
		for _, w := range want {
			contains(b.ID, "history", h, w)
		}
	}

	// Converged on the documented shape.
	b := get("REC-001")
	ev := one(b)
	expect(b.ID, "state", b.State(), "pass/documented")
	contains(b.ID, "reason", b.Reason, "the documented PlaintextRejected")
	expect(b.ID, "HTTP code", code(ev.HTTPCode), "000")
	expect(b.ID, "curl exit", exitOf(ev.CurlExit), 56)
	expect(b.ID, "error line", ev.ErrorLine, "curl: (56) Recv failure: Connection reset by peer")
	expect(b.ID, "attempts", ev.Attempts, 3)
	expect(b.ID, "expected", ev.Expected, "PlaintextRejected")
	expect(b.ID, "where", ev.Where, "pod rec/client-0 container curl")
	history(b, ev, "#1 +", "documented http_code=000 exit=56")

	// Converged, with an equivalent outcome in the streak: equivalent, and the reason says so.
	b = get("REC-002")
	ev = one(b)
	expect(b.ID, "state", b.State(), "pass/equivalent")
	contains(b.ID, "reason", b.Reason, "equivalent to PlaintextRejected (empty reply")
	if strings.Contains(b.Reason, "documented PlaintextRejected {") {
		t.Errorf("%s: an equivalent result with a reason that says documented: %q", b.ID, b.Reason)
	}
	expect(b.ID, "HTTP code (the last outcome)", code(ev.HTTPCode), "000")
	expect(b.ID, "curl exit (the last outcome)", exitOf(ev.CurlExit), 56)
	history(b, ev, "equivalent http_code=000 exit=52", "documented http_code=000 exit=56")

	// Never converges: stuck on 200 where a reset is expected. The report shows the 200.
	b = get("REC-003")
	ev = one(b)
	expect(b.ID, "state", b.State(), "fail/deviation")
	contains(b.ID, "reason", b.Reason, "did not converge: PlaintextRejected not seen 3 times in a row")
	contains(b.ID, "reason", b.Reason, "saw http_code=200 exit=0: not PlaintextRejected")
	expect(b.ID, "HTTP code", code(ev.HTTPCode), "200")
	expect(b.ID, "curl exit", exitOf(ev.CurlExit), 0)
	expect(b.ID, "body", ev.Body, "ok")
	if ev.Attempts < 2 {
		t.Errorf("%s: attempts %d, want the probes of the whole wait", b.ID, ev.Attempts)
	}
	history(b, ev, "deviation http_code=200 exit=0")
	contains(b.ID, "failure message", b.Specs[0].Message, "last outcome (deviation")

	// Never converges: flapping between the reset and a 200.
	b = get("REC-004")
	ev = one(b)
	expect(b.ID, "state", b.State(), "fail/deviation")
	contains(b.ID, "reason", b.Reason, "longest streak 2")
	history(b, ev, "documented http_code=000 exit=56", "deviation http_code=200 exit=0")

	// Converged, then the probe's own check rejected the outcome.
	b = get("REC-005")
	expect(b.ID, "state", b.State(), "fail/deviation")
	expect(b.ID, "reason", b.Reason, "XFCC names spiffe://cluster.local/ns/rec/sa/other, want sa/client")
	expect(b.ID, "HTTP code", code(one(b).HTTPCode), "200")

	// The transport failed on every probe: nothing was seen, so no HTTP code or exit is written.
	b = get("REC-006")
	ev = one(b)
	expect(b.ID, "state", b.State(), "fail/deviation")
	contains(b.ID, "reason", b.Reason, "no probe could be judged")
	expect(b.ID, "HTTP code", code(ev.HTTPCode), "none")
	expect(b.ID, "curl exit", exitOf(ev.CurlExit), -1)
	contains(b.ID, "text", ev.Text, "probe failed: curl http://httpbin.rec:8000/get via pod rec/client-0 container curl: no usable output")
	history(b, ev, "error: curl http://httpbin.rec:8000/get")

	// A 503 keeps its body in the evidence, whichever wording converged: MTLS-008's body rests
	// on Envoy's code alone, so the report must show what a real run saw.
	b = get("REC-011")
	ev = one(b)
	expect(b.ID, "state", b.State(), "pass/documented")
	expect(b.ID, "HTTP code", code(ev.HTTPCode), "503")
	expect(b.ID, "body", ev.Body, "upstream connect error or disconnect/reset before headers. reset reason: connection termination")
	b = get("REC-012")
	ev = one(b)
	expect(b.ID, "state", b.State(), "pass/equivalent")
	expect(b.ID, "body", ev.Body, "upstream connect error or disconnect/reset before headers. reset reason: remote reset")

	// A posture check that fails after hardening: recorded as what the audit said.
	b = get("REC-007")
	ev = one(b)
	expect(b.ID, "state", b.State(), "fail/deviation")
	contains(b.ID, "reason", b.Reason, "after hardening: REC-007 is fail, want pass")
	contains(b.ID, "before", ev.Fields["before"], "REC-007 scripted check: fail (3 pods in 1 meshed namespace)\n  - Pod rec/plain-client-5d8f")
	contains(b.ID, "after", ev.Fields["after"], "REC-007 scripted check: fail")
	if len(b.Evidence) != 1 {
		t.Errorf("%s: %d evidence entries, want the one recorded after the judgement", b.ID, len(b.Evidence))
	}
	b = get("REC-008")
	expect(b.ID, "state", b.State(), "pass/documented")
	expect(b.ID, "reason", b.Reason, "hardening fixes it")

	// CP-001: the window saw the errors grow in one spec (deviation) and settle in the other.
	b = get("CP-001")
	expect(b.ID, "state", b.State(), "fail/deviation")
	contains(b.ID, "reason", b.Reason, "CP-001: istiod's lines matching \"TLS handshake error.*bad certificate\" grew from 2 to")
	specs := map[string]report.Result{}
	for _, s := range b.Specs {
		specs[s.Name] = s.Result
	}
	expect(b.ID, "settling spec", specs["recording CP-001: errors that settle"], report.Pass)
	expect(b.ID, "persisting spec", specs["recording CP-001: errors that persist"], report.Fail)
	for _, e := range b.Evidence {
		switch e.Spec {
		case "recording CP-001: errors that settle":
			expect(b.ID, "settled matches", e.Fields["matches"], "2")
			expect(b.ID, "settled window", e.Fields["window"], "200ms")
		case "recording CP-001: errors that persist":
			if e.Fields["matches"] == "" || e.Fields["matches"] == "2" || e.Fields["matches before the window"] != "2" {
				t.Errorf("%s: persisting evidence %v: want the grown count and 2 before the window", b.ID, e.Fields)
			}
		}
	}
	// The settling spec on its own: documented, with the reason of the window.
	settled := onlySpec(t, suites, "recording CP-001: errors that settle")
	if sb, _ := settled.Behavior("CP-001"); sb.State() != "pass/documented" || !strings.Contains(sb.Reason, "2 TLS handshake errors, none new over a 200ms window") {
		t.Errorf("CP-001 settled: %s %q; want pass/documented with the window's reason", sb.State(), sb.Reason)
	}

	// Timings: each spec that did something records where its time went, measured; a part
	// that did not happen is absent, and a spec that neither set up nor waited has none.
	timings := func(id string) report.SpecTimings {
		t.Helper()
		st := get(id).Specs[0].Timings
		if st == nil {
			t.Fatalf("%s: no timings recorded", id)
		}
		return *st
	}
	val := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	atLeast := func(id, what string, p *float64, min float64) {
		t.Helper()
		if val(p) < min {
			t.Errorf("%s: %s = %v, want at least %v", id, what, val(p), min)
		}
	}
	absent := func(id, what string, p *float64) {
		t.Helper()
		if p != nil {
			t.Errorf("%s: %s = %v, want absent (it did not happen)", id, what, *p)
		}
	}
	// Converged at once: all convergence, no waiting for the mesh, no setup or teardown.
	tm := timings("REC-001")
	atLeast("REC-001", "convergence", tm.ConvergenceSeconds, 0.01) // three probes, two 5ms pauses
	if m := val(tm.MeshWaitSeconds); m < 0 || m > 0.004 {
		t.Errorf("REC-001: waited %vs for the mesh, want (almost) none: the first probe showed the outcome", m)
	}
	if val(tm.WaitSeconds) != val(tm.ConvergenceSeconds) {
		t.Errorf("REC-001: waits %v, convergence %v: the only wait was the probe's", val(tm.WaitSeconds), val(tm.ConvergenceSeconds))
	}
	absent("REC-001", "setup", tm.SetupSeconds)
	absent("REC-001", "teardown", tm.TeardownSeconds)
	absent("REC-001", "diagnostics", tm.DiagnosticsSeconds)
	// Never converged: the whole 500ms wait was spent waiting for the mesh.
	tm = timings("REC-003")
	atLeast("REC-003", "convergence", tm.ConvergenceSeconds, 0.5)
	if val(tm.MeshWaitSeconds) != val(tm.ConvergenceSeconds) {
		t.Errorf("REC-003: waited %v for the mesh of %v: a probe that never converged waited all along", val(tm.MeshWaitSeconds), val(tm.ConvergenceSeconds))
	}
	// No wait and no setup: no timings at all.
	for _, id := range []string{"REC-007", "REC-008"} {
		if st := get(id).Specs[0].Timings; st != nil {
			t.Errorf("%s: timings %+v, want none: nothing was timed", id, *st)
		}
	}
	// Every part, as the runner times them.
	for _, id := range []string{"REC-009", "REC-010"} {
		tm := timings(id)
		atLeast(id, "setup", tm.SetupSeconds, 0.08)
		atLeast(id, "waiting for the mesh", tm.MeshWaitSeconds, 0.04) // two unmet probes, 20ms apart
		if streak := val(tm.ConvergenceSeconds) - val(tm.MeshWaitSeconds); streak < 0.04 {
			t.Errorf("%s: convergence %v, of which %v waiting for the mesh: the final streak (two 20ms pauses) took %v", id, val(tm.ConvergenceSeconds), val(tm.MeshWaitSeconds), streak)
		}
		atLeast(id, "teardown", tm.TeardownSeconds, 0.05)
		// Waits: the setup's 60ms window, the convergence, the teardown's 40ms window; not the
		// sleeps around them (30ms). Each figure is rounded to the millisecond on its own, so
		// the bounds give 1.5ms either way (seen in CI: waits 0.192 against a bound of
		// 0.19199999999999998, the sleeps' 30ms all but exactly).
		waits := val(tm.WaitSeconds)
		if lo, hi := val(tm.ConvergenceSeconds)+0.1-0.0015, val(tm.SetupSeconds)+val(tm.ConvergenceSeconds)+val(tm.TeardownSeconds)-0.03+0.0015; waits < lo || waits > hi {
			t.Errorf("%s: waits %v, want between %v and %v", id, waits, lo, hi)
		}
		// Each figure is rounded to the millisecond on its own, so three parts may sum up to
		// 1.5ms above the rounded whole (seen: 0.213s against 0.214s).
		if parts := val(tm.SetupSeconds) + val(tm.ConvergenceSeconds) + val(tm.TeardownSeconds); get(id).Specs[0].DurationSeconds < parts-0.0015 {
			t.Errorf("%s: the spec took %vs, less than its parts' %vs", id, get(id).Specs[0].DurationSeconds, parts)
		}
	}
	absent("REC-009", "diagnostics", timings("REC-009").DiagnosticsSeconds)
	atLeast("REC-010", "diagnostics", timings("REC-010").DiagnosticsSeconds, 0.015)
	expect("REC-010", "state", get("REC-010").State(), "fail/documented")
	// CP-001's window is the rule, not a wait for the mesh.
	for _, sp := range get("CP-001").Specs {
		if sp.Timings == nil || val(sp.Timings.ConvergenceSeconds) <= 0 || val(sp.Timings.MeshWaitSeconds) != 0 {
			t.Errorf("CP-001 %q: timings %+v, want its window as convergence, none of it waiting for the mesh", sp.Name, sp.Timings)
		}
	}

	// The Ginkgo JSON report reads to the same conformance report.
	fromJSON, err := report.Read(filepath.Join(dir, "ginkgo.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"REC-001", "REC-009", "REC-010"} {
		a, _ := rep.Behavior(id)
		c, _ := fromJSON.Behavior(id)
		if !reflect.DeepEqual(a.Specs[0].Timings, c.Specs[0].Timings) {
			t.Errorf("%s: conformance.json's timings %+v, the Ginkgo JSON report's %+v", id, a.Specs[0].Timings, c.Specs[0].Timings)
		}
	}
	for _, id := range []string{"REC-001", "REC-002", "REC-003", "REC-007", "CP-001"} {
		a, _ := rep.Behavior(id)
		c, _ := fromJSON.Behavior(id)
		if a.State() != c.State() || a.Reason != c.Reason || len(a.Evidence) != len(c.Evidence) {
			t.Errorf("%s: conformance.json says %s %q, the Ginkgo JSON report %s %q", id, a.State(), a.Reason, c.State(), c.Reason)
		}
	}
	if t.Failed() {
		t.Logf("recording suite output:\n%s", out)
	}
}

// onlySpec is the conformance report of one spec of the Ginkgo reports.
func onlySpec(t *testing.T, suites []types.Report, name string) report.Report {
	t.Helper()
	var rs []types.Report
	for _, s := range suites {
		var keep types.SpecReports
		for _, sr := range s.SpecReports {
			if sr.FullText() == name {
				keep = append(keep, sr)
			}
		}
		s.SpecReports = keep
		rs = append(rs, s)
	}
	r, err := report.FromGinkgo(rs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
