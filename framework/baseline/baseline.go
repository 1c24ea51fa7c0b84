// Package baseline judges the check every run makes before any behaviour: plain reachability
// with no mesh involved, a plain client to a plain server. It tells a broken cluster from a
// broken mesh, as cilium's connectivity test does with its no-policy baseline: when a plain
// request cannot get a 200, or a closed port does not refuse, or curl's timeout does not
// fire as a timeout, every mesh behaviour would fail for the cluster's reasons, so none is
// judged and the report says the cluster is at fault.
//
// The package holds the judgement only (which outcome each probe must show, what the report
// says); it runs the probes through any probe.Executor, so tier 0 tests it with the real curl
// against loopback servers. suites/internal/e2e deploys the plain workloads and calls Run.
package baseline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/report"
)

// Label is the Ginkgo label of the baseline spec: `LABELS=baseline` runs only it.
const Label = "baseline"

// Expected outcomes of the three probes. They are not catalog behaviours (BEHAVIORS.md has no
// ID for them): they describe Kubernetes and curl, not Istio.
var (
	// Reachable: a plain client gets a 200 from a plain server through its Service (DNS,
	// kube-proxy or its replacement, the CNI).
	Reachable = catalog.Expectation{Name: "Reachable", Documented: catalog.Shape{Name: "200", HTTPCode: 200, CurlExit: 0}}
	// Refused: a port nothing listens on, on a pod that exists, refuses the connection: the
	// pod's kernel answers the SYN with a RST (curl exit 7). A timeout instead means something
	// drops packets (a NetworkPolicy, a firewall), which would turn every rejection the mesh
	// makes into a timeout too.
	Refused = catalog.Expectation{Name: "Refused", Documented: catalog.Shape{Name: "connection refused", HTTPCode: 0, CurlExit: 7}}
	// TimedOut: a server that accepts the request and answers too late makes curl give up
	// with exit 28 after the connection was made ("Operation timed out … with 0 bytes
	// received"); a timeout while connecting says "Connection timed out" or "Failed to
	// connect" and does not count, since it would prove nothing about the server.
	TimedOut = catalog.Expectation{Name: "TimedOut", Documented: catalog.Shape{Name: "operation timed out", HTTPCode: 0, CurlExit: 28,
		ErrorContains: "Operation timed out"}}
)

// Targets are what the probes address.
type Targets struct {
	// ServerURL answers 200 (the plain httpbin's Service: http://httpbin.<ns>:8000/get).
	ServerURL string
	// ClosedURL is a port nothing listens on, on a live pod (the httpbin pod's IP on an unused
	// port). Not a Service port without endpoints: kube-proxy rejects those in iptables mode
	// but IPVS and some kube-proxy replacements drop them (exit 28), so the outcome would
	// depend on the cluster's proxy mode rather than on whether it works.
	ClosedURL string
	// SlowURL answers after more than SlowTimeout (go-httpbin's /delay/N with N seconds).
	SlowURL string
	// SlowTimeout is curl's --max-time for SlowURL, below the server's delay.
	SlowTimeout time.Duration
	// RequestTimeout is curl's --max-time for the other probes; 0 means 10s. A dropped
	// connection costs this much per probe.
	RequestTimeout time.Duration
}

// Validate says which target is missing or inconsistent.
func (t Targets) Validate() error {
	var errs []error
	for name, v := range map[string]string{"ServerURL": t.ServerURL, "ClosedURL": t.ClosedURL, "SlowURL": t.SlowURL} {
		if !strings.HasPrefix(v, "http://") {
			errs = append(errs, fmt.Errorf("baseline: %s %q is not an http:// URL", name, v))
		}
	}
	if t.SlowTimeout <= 0 {
		errs = append(errs, fmt.Errorf("baseline: SlowTimeout %v: set curl's --max-time below the slow server's delay", t.SlowTimeout))
	}
	return errors.Join(errs...)
}

// Check is one baseline probe: the request and the outcome it must converge on.
type Check struct {
	Name    string
	Purpose string
	Expect  catalog.Expectation
	Request probe.HTTPRequest
}

// DefaultRequestTimeout bounds the probes that should end fast (a 200, a refusal).
const DefaultRequestTimeout = 10 * time.Second

// Checks are the three probes of the baseline for targets, in report order.
func Checks(t Targets) []Check {
	requestTimeout := cmp.Or(t.RequestTimeout, DefaultRequestTimeout)
	return []Check{
		{Name: "plain client to plain server", Purpose: "the cluster carries plain HTTP: DNS, Service, pod network",
			Expect: Reachable, Request: probe.HTTPRequest{URL: t.ServerURL, Timeout: requestTimeout}},
		{Name: "plain client to a closed port", Purpose: "a port nothing listens on refuses (RST), it is not dropped",
			Expect: Refused, Request: probe.HTTPRequest{URL: t.ClosedURL, Timeout: requestTimeout}},
		{Name: "plain client to a slow server", Purpose: "curl's --max-time ends a request the server answers too late (exit 28)",
			Expect: TimedOut, Request: probe.HTTPRequest{URL: t.SlowURL, Timeout: t.SlowTimeout}},
	}
}

// Run converges every check (cfg: N in a row, strict: only the documented shape counts, since
// the baseline has no tolerance to give) through ex, side by side, and judges the result. It
// returns an error only for an invalid configuration; a cluster that fails shows as a failed
// Baseline, with every probe's last outcome and history.
func Run(ctx context.Context, cfg expect.Config, ex probe.Executor, checks []Check) (report.Baseline, error) {
	if err := cfg.Validate(); err != nil {
		return report.Baseline{}, err
	}
	if len(checks) == 0 {
		return report.Baseline{}, errors.New("baseline: no checks to run")
	}
	probes := make([]report.BaselineProbe, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			res, err := expect.Converge(ctx, cfg, expect.Strict, c.Expect, func(ctx context.Context) (probe.Outcome, error) {
				return probe.Curl(ctx, ex, c.Request)
			})
			probes[i] = judge(c, res, err)
		})
	}
	wg.Wait()
	return Judge(probes), nil
}

// judge turns one convergence into the report's probe.
func judge(c Check, res expect.Result, err error) report.BaselineProbe {
	p := report.BaselineProbe{Name: c.Name, Purpose: c.Purpose}
	if err == nil {
		p.Result, p.Reason = report.Pass, res.Reason
		last := expect.Observation{Outcome: res.Outcome, Class: res.Class, Reason: res.Reason}
		p.Evidence = evidence(c, last, res.Attempts, expect.HistoryLines(res.Observations, res.Attempts))
		return p
	}
	p.Result = report.Fail
	var ce *expect.ConvergeError
	if !errors.As(err, &ce) {
		p.Reason = err.Error()
		return p
	}
	_, p.Reason = ce.Verdict()
	p.Evidence = evidence(c, ce.Last, ce.Attempts, expect.HistoryLines(ce.Observations, ce.Attempts))
	return p
}

// evidence is an observation as the report holds it (as suites/internal/record writes a
// behaviour's): no HTTP code or exit when the probe itself failed.
func evidence(c Check, ob expect.Observation, attempts int, history []string) report.Evidence {
	o := ob.Outcome
	ev := report.Evidence{Text: o.String(), ErrorLine: o.ErrorLine, Body: o.Body, Where: o.Where,
		Attempts: attempts, Expected: c.Expect.String(), History: history}
	if ob.Err != nil {
		ev.Text = "probe failed: " + ob.Err.Error() + "\n" + ev.Text
		return ev
	}
	ev.HTTPCode, ev.CurlExit = new(o.HTTPCode), new(o.CurlExit)
	return ev
}

// Judge is the baseline's verdict over its probes: passed only when every probe passed.
func Judge(probes []report.BaselineProbe) report.Baseline {
	b := report.Baseline{Status: report.BaselinePassed, Probes: probes,
		Verdict: "plain traffic without the mesh behaves as Kubernetes promises (200, refused, timed out): behaviour results are the mesh's"}
	var failed []string
	for _, p := range probes {
		if p.Result != report.Pass {
			failed = append(failed, fmt.Sprintf("%s (%s)", p.Name, firstLine(p.Reason)))
		}
	}
	if len(failed) > 0 {
		b.Status = report.BaselineFailed
		b.Verdict = report.ClusterAtFault + ". A plain client to a plain server, with no mesh involved, failed: " +
			strings.Join(failed, "; ") +
			". Fix the cluster first (pods' network, DNS, Services, NetworkPolicies, node firewalls); " +
			"the evidence of each probe is in the report's baseline section"
	}
	return b
}

// Skipped is the baseline section of a run whose user turned the baseline off; why names how.
func Skipped(why string) report.Baseline {
	return report.Baseline{Status: report.BaselineSkipped,
		Verdict: "no baseline was run (" + why + "): a failing behaviour may be the cluster's fault, not the mesh's"}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// ReuseEnv names a conformance report whose passed baseline a suite takes as its own instead of
// judging the cluster again: the upgrade gate sets it for a phase's behaviour suites to the
// report of the upgrade suite that ran just before them on the same cluster, against the same
// control plane. A baseline that did not pass is never reused: the suite judges its own.
const ReuseEnv = "MESHCONFORM_BASELINE_FROM"

// Reuse is the baseline section of a suite that takes b, judged by the suite whose report is
// at from, age before: the same status and probes (their evidence is what was observed), and a
// verdict that says where they come from. ok is false, with the reason, when b cannot stand
// for this suite: it did not pass, or it is older than MaxReuseAge.
func Reuse(b *report.Baseline, from string, age time.Duration) (reused report.Baseline, ok bool, why string) {
	switch {
	case b == nil:
		return report.Baseline{}, false, from + " has no baseline"
	case b.Status != report.BaselinePassed:
		return report.Baseline{}, false, fmt.Sprintf("the baseline of %s is %s, not passed", from, b.Status)
	case age > MaxReuseAge || age < -time.Minute:
		return report.Baseline{}, false, fmt.Sprintf("the baseline of %s was judged %s ago (at most %s is reused)", from, age.Round(time.Second), MaxReuseAge)
	}
	reused = *b
	reused.Verdict = fmt.Sprintf("judged %s earlier on the same cluster by the suite of %s (%s): %s",
		age.Round(time.Second), from, ReuseEnv, b.Verdict)
	return reused, true, ""
}

// MaxReuseAge bounds how old a reused baseline may be: a gate phase's upgrade suite runs for
// about a minute before the behaviour suites.
const MaxReuseAge = 15 * time.Minute
