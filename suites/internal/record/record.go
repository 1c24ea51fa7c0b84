// Package record turns what a spec saw into the Ginkgo report entries framework/report
// reads back into the conformance report (report.EntryClassification, report.EntryEvidence):
// a probe's convergence, whether it converged or not, and the verdict of a check that is
// not a probe. It needs no cluster (a probe runs through any probe.Executor), so its tests
// run a small Ginkgo suite against a scripted executor and read the report it writes.
//
// The rule it keeps: the report records only what was observed, after it was judged. A probe
// that did not converge is recorded with its last observation and the history, never with an
// empty outcome; a check is recorded as documented only once it passed.
package record

import (
	"context"
	"errors"
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/suites/cases"
)

// Probe runs p's curl request through ex until it converges on p's expectation, records the
// result (classification, last outcome, history), and fails the spec with the full evidence
// when it does not converge or when p.Check rejects the converged outcome.
func Probe(ctx context.Context, cfg expect.Config, mode expect.Mode, id string, p cases.Probe, env cases.Env,
	ex probe.Executor, req probe.HTTPRequest) probe.Outcome {
	GinkgoHelper()
	return ProbeWith(ctx, cfg, mode, id, p, env, ex, req)
}

// Request is one probe's call: curl's (probe.HTTPRequest) or Istio's echo client's
// (probe.GRPCRequest).
type Request interface {
	probe.HTTPRequest | probe.GRPCRequest
}

// ProbeWith is Probe for either kind of call.
func ProbeWith[R Request](ctx context.Context, cfg expect.Config, mode expect.Mode, id string, p cases.Probe, env cases.Env,
	ex probe.Executor, req R) probe.Outcome {
	GinkgoHelper()
	call := func(ctx context.Context) (probe.Outcome, error) {
		switch r := any(req).(type) {
		case probe.GRPCRequest:
			return probe.GRPC(ctx, ex, r)
		case probe.HTTPRequest:
			return probe.Curl(ctx, ex, r)
		}
		panic("unreachable")
	}
	res, err := expect.Converge(ctx, cfg, mode, p.Expect, call)
	Convergence(id, p.Expect.Name, res, err)
	if err != nil {
		Fail(fmt.Sprintf("%s: %s: %v", id, p.Name, err))
	}
	if p.Check != nil {
		if err := p.Check(env, res.Outcome); err != nil {
			ob := expect.Observation{Outcome: res.Outcome, Class: expect.Deviation, Reason: err.Error()}
			add(id, expect.Deviation, err.Error(), evidence(p.Expect.Name, ob, res.Attempts, nil))
			Fail(fmt.Sprintf("%s: %s: %v\n%s", id, p.Name, err, res.Outcome))
		}
	}
	return res.Outcome
}

// Convergence records how expect.Converge ended for a probe of behaviour id that expected
// the named outcome shape. Converged: the result's classification and reason, its last
// outcome and history. Not converged (*expect.ConvergeError): the error's verdict (see
// ConvergeError.Verdict), its last observation and history. Any other error (an invalid
// configuration) saw nothing, so nothing is recorded; the caller fails the spec.
func Convergence(id, expected string, res expect.Result, err error) {
	if err == nil {
		last := expect.Observation{Outcome: res.Outcome, Class: res.Class, Reason: res.Reason}
		if n := len(res.Observations); n > 0 {
			last = res.Observations[n-1]
		}
		add(id, res.Class, res.Reason, evidence(expected, last, res.Attempts, expect.HistoryLines(res.Observations, res.Attempts)))
		return
	}
	var ce *expect.ConvergeError
	if !errors.As(err, &ce) {
		return
	}
	class, reason := ce.Verdict()
	add(id, class, reason, evidence(expected, ce.Last, ce.Attempts, expect.HistoryLines(ce.Observations, ce.Attempts)))
}

// evidence is one observation as the report holds it. A probe that failed (transport down,
// curl missing) saw no HTTP code and no curl exit, so none is written: 0 would read as
// "000, exit 0".
func evidence(expected string, ob expect.Observation, attempts int, history []string) report.Evidence {
	o := ob.Outcome
	ev := report.Evidence{Text: o.String(), ErrorLine: o.ErrorLine, Body: o.Body, Where: o.Where,
		Attempts: attempts, Expected: expected, History: history}
	if ob.Err != nil {
		ev.Text = "probe failed: " + ob.Err.Error() + "\n" + ev.Text
		return ev
	}
	if o.Tool != probe.ToolOpenSSL && o.HTTPCode >= 0 {
		ev.HTTPCode = new(o.HTTPCode)
	}
	if o.Tool == probe.ToolGRPC {
		// No curl ran: the gRPC status and the echo client's exit are the evidence.
		ev.Fields = map[string]string{"tool": probe.ToolGRPC, "grpcCode": o.GRPCCode, "exit": fmt.Sprint(o.ExitCode)}
	}
	if o.CurlExit >= 0 {
		ev.CurlExit = new(o.CurlExit)
	}
	return ev
}

// Fields records a classification and evidence that is not a curl outcome (certificates,
// log counts). Call it once the classification is known, never before the assertion.
func Fields(id string, class expect.Classification, reason string, fields map[string]string) {
	add(id, class, reason, report.Evidence{Fields: fields})
}

// Check records the verdict of a check that is not a curl probe and fails the spec when it
// failed: documented with reason ok when err is nil, a deviation with err as the reason
// otherwise. fields are what was observed either way.
func Check(id string, err error, ok string, fields map[string]string) {
	GinkgoHelper()
	if err != nil {
		Fields(id, expect.Deviation, err.Error(), fields)
		Fail(fmt.Sprintf("%s: %v", id, err))
	}
	Fields(id, expect.Documented, ok, fields)
}

// Unjudged fails a spec whose check could not be evaluated (logs unreadable, the audit
// errored): the evidence is recorded with the error, and no classification, because the
// behaviour was not observed at all.
func Unjudged(id string, err error, fields map[string]string) {
	GinkgoHelper()
	AddReportEntry(report.EntryEvidence, report.Evidence{Text: "not judged: " + err.Error(), Fields: fields}.For(id),
		ReportEntryVisibilityFailureOrVerbose)
	Fail(fmt.Sprintf("%s could not be judged: %v", id, err))
}

func add(id string, class expect.Classification, reason string, ev report.Evidence) {
	AddReportEntry(report.EntryClassification, report.Classified(report.Classification(class), reason).For(id),
		ReportEntryVisibilityFailureOrVerbose)
	AddReportEntry(report.EntryEvidence, ev.For(id), ReportEntryVisibilityFailureOrVerbose)
}

// WriteReport builds the conformance report from a suite's Ginkgo report (in its
// ReportAfterSuite), adds the phases the suite measured outside any spec's entries (the specs
// phase), and writes conformance.json and .yaml into dir.
func WriteReport(dir string, r types.Report, phases ...report.Phase) (report.Report, error) {
	rep, err := report.FromGinkgo([]types.Report{r})
	if err != nil {
		return rep, fmt.Errorf("building the conformance report: %w", err)
	}
	if len(phases) > 0 {
		if rep.Timings == nil {
			rep.Timings = &report.Timings{Processes: r.SuiteConfig.ParallelTotal}
		}
		rep.Timings.Add(phases...)
	}
	if err := rep.WriteFiles(dir); err != nil {
		return rep, fmt.Errorf("writing the conformance report into %s: %w", dir, err)
	}
	return rep, nil
}

// Baseline records the run's baseline (framework/baseline's verdict) into the report. Call it
// once per run, in process 1's SynchronizedBeforeSuite, before any behaviour runs.
func Baseline(b report.Baseline) {
	AddReportEntry(report.EntryBaseline, b, ReportEntryVisibilityNever)
}

// GateOnBaseline registers, at the top level of a suite, what makes the baseline a
// precondition of every behaviour; current returns this process's baseline (nil: none yet,
// the suite's setup failed). When the baseline failed:
//   - every other spec records an EntryNotJudged and is skipped before its body runs, so the
//     report shows it as not judged, neither failed nor skipped;
//   - the spec labelled baselineLabel fails with the baseline's probes;
//   - process 1's SynchronizedAfterSuite fails, so the run exits non-zero even when the label
//     filter left the baseline spec out (LABELS=MTLS-002).
//
// When it passed, the baseline spec passes; when the user turned it off, the baseline spec is
// skipped with the reason.
func GateOnBaseline(baselineLabel string, current func() *report.Baseline) bool {
	BeforeEach(func() {
		b := current()
		if !b.Failed() || slices.Contains(CurrentSpecReport().Labels(), baselineLabel) {
			return
		}
		v := report.NotJudgedValue{Reason: "the cluster baseline failed (" + report.ClusterAtFault + "); see the report's baseline section"}
		AddReportEntry(report.EntryNotJudged, v, ReportEntryVisibilityNever)
		Skip(v.String())
	})
	It("cluster baseline: a plain client to a plain server, no mesh (200, refused, timed out)", Label(baselineLabel), func() {
		b := current()
		switch {
		case b == nil:
			Fail("no baseline was run: the suite's setup did not record one")
		case b.Status == report.BaselineSkipped:
			Skip(b.Verdict)
		case b.Failed():
			Fail(b.String())
		}
		AddReportEntry("baseline", b.String(), ReportEntryVisibilityFailureOrVerbose)
	})
	SynchronizedAfterSuite(func() {}, func() {
		if b := current(); b.Failed() {
			Fail("the run fails because its baseline failed: " + b.String())
		}
	})
	return true
}

// LeaveOut registers, at the top level of a suite, a BeforeEach that leaves out on purpose
// every spec for which why returns a reason (given the spec's labels): the spec records an
// EntryLeftOut with the reason and is skipped before its body (and before any BeforeAll of
// its container) runs, so the report shows it as left out, with the reason, neither failed
// nor skipped. why runs in every process, after the suite's setup.
func LeaveOut(why func(labels []string) string) bool {
	BeforeEach(func() {
		reason := why(CurrentSpecReport().Labels())
		if reason == "" {
			return
		}
		v := report.LeftOutValue{Reason: reason}
		AddReportEntry(report.EntryLeftOut, v, ReportEntryVisibilityNever)
		Skip(v.String())
	})
	return true
}

// LeftOutBy is the reason function of LeaveOut for a run's settings: with ISTIO_INSTALL=none
// every spec but the baseline (labelled baselineLabel) needs the Istio the run does not have;
// with DATAPLANE=0 the specs labelled catalog.LabelDataPlane need a running data plane.
func LeftOutBy(s settings.Settings, baselineLabel string) func(labels []string) string {
	return func(labels []string) string {
		switch {
		case slices.Contains(labels, baselineLabel):
			return ""
		case s.NoMesh():
			return "needs Istio; this run has none (ISTIO_INSTALL=none)"
		case s.NoDataPlane && slices.Contains(labels, catalog.LabelDataPlane):
			return "needs a running data plane (sidecar, gateway or ztunnel); this run has none (DATAPLANE=0)"
		}
		return ""
	}
}
