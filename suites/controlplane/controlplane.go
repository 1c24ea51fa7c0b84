// Package controlplane registers the control-plane specs: health (CP-001..003), istiod's logs
// read for the patterns seed 000 tells operators to grep for, and istiod's RBAC; and istiod's
// configuration validation (VALID-001, validation.go).
//
// They are Serial so that, in a parallel run, Ginkgo runs them after the other specs: the
// logs then hold the suite's own traffic and policy churn.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/workload"
	"meshconform/suites/checks"
	"meshconform/suites/internal/e2e"
	"meshconform/suites/internal/record"
)

// CP-001's warm-up rule (seed 000: these errors are usually transient): when istiod has
// logged TLS handshake errors, its logs are watched for settleWindow, read every settlePoll;
// any growth over the window is a persistent error.
const (
	settleWindow = 45 * time.Second
	settlePoll   = 15 * time.Second
)

func scan(ctx context.Context) (checks.LogFindings, string, error) {
	r := e2e.Current
	text, err := checks.IstiodLogs(ctx, r.Kube, r.State.Istio.Namespace, r.State.Istio.Revision, r.State.Started)
	return checks.ScanIstiodLog(text), text, err
}

func fields(f checks.Finding, lines int) map[string]string {
	m := map[string]string{"pattern": f.Pattern, "matches": fmt.Sprint(f.Count), "lines scanned": fmt.Sprint(lines)}
	for i, ex := range f.Examples {
		m[fmt.Sprintf("example %d", i+1)] = ex
	}
	if f.Equivalent > 0 {
		m["equivalent matches"] = fmt.Sprint(f.Equivalent)
	}
	return m
}

var _ = Describe("controlplane", Serial, func() {
	It("CP-001: istiod logs no persistent TLS handshake errors (bad certificate)", e2e.IDLabels("CP-001"), SpecTimeout(5*time.Minute), func(ctx SpecContext) {
		r := e2e.Current
		TLSErrors(ctx, r.Kube, r.State.Istio.Namespace, r.State.Istio.Revision, r.State.Started, settleWindow, settlePoll)
	})

	It("CP-002: istiod can list what it watches (no RBAC gap)", e2e.IDLabels("CP-002"), func(ctx SpecContext) {
		f, _, err := scan(ctx)
		if err != nil {
			Fail(fmt.Sprintf("CP-002: reading istiod's logs: %v", err))
		}
		r := e2e.Current
		var opts []checks.RBACOption
		if r.State.Istio.Revision != "" {
			opts = append(opts, checks.ForRevision(r.State.Istio.Revision))
		}
		// One verdict, one evidence entry: the logs, then the RBAC.
		record.Check("CP-002", errors.Join(f.CannotList.Absent(), checks.CheckIstiodRBAC(ctx, r.Kube, r.State.Istio.Namespace, opts...)),
			"no 'cannot list resource' errors; istiod's service account is bound to the permissions it needs", fields(f.CannotList, f.Lines))
	})

	It("VALID-001: istiod's validating webhook rejects an AuthorizationPolicy with action DENY and no rules", e2e.IDLabels("VALID-001"), func(ctx SpecContext) {
		r := e2e.Current
		ns, err := workload.Namespace(ctx, r.Kube, workload.NamespaceSpec{Prefix: "valid-001", RunID: r.State.RunID, Injection: workload.InjectionOff})
		if err != nil {
			Fail(fmt.Sprintf("VALID-001: creating its namespace: %v", err))
		}
		DeferCleanup(func(ctx context.Context) { _ = workload.DeleteNamespaces(ctx, r.Kube, ns) })
		ap := DenyWithoutRules(ns, r.State.Istio.Revision)
		var last error
		// istiod turns its webhook to failurePolicy Fail, with its caBundle, once it serves
		// (until then the chart's Ignore lets everything through): N rejections in a row.
		err = expect.ConvergeFunc(ctx, r.Expect, func(ctx context.Context) error {
			last = DryRunCreate(ctx, r.Istio, ap)
			return JudgeRejection(last)
		})
		fs := map[string]string{"policy": ns + "/" + ap.Name + " (action DENY, no rules, " + istionames.RevisionLabel + "=" + ap.Labels[istionames.RevisionLabel] + ")",
			"request": "server-side dry run (create)", "answer": answer(last)}
		record.Check("VALID-001", err, "rejected by istiod's validating webhook: "+DenyWithoutRulesMessage, fs)
	})

	It("CP-003: no CA authentication failures", e2e.IDLabels("CP-003"), func(ctx SpecContext) {
		f, _, err := scan(ctx)
		if err != nil {
			Fail(fmt.Sprintf("CP-003: reading istiod's logs: %v", err))
		}
		record.Check("CP-003", f.CAAuthFailed.Absent(), "no serverca JWT authentication failures", fields(f.CAAuthFailed, f.Lines))
	})
})

func answer(err error) string {
	if err == nil {
		return "accepted (no error)"
	}
	return err.Error()
}

// TLSErrors is CP-001's spec body: it scans istiod's logs since logsSince and passes at once
// when no line matches `TLS handshake error.*bad certificate`; otherwise it applies the
// warm-up rule with checks.TLSErrorsSettle over window (reading every poll) and records
// what that saw: documented when the count did not grow, a deviation when it did, and no
// classification when the logs could not be read. Exported so that the recording test
// (suites/internal/record) runs it against a loopback API server.
func TLSErrors(ctx context.Context, kube kubernetes.Interface, istioNamespace, revision string, logsSince time.Time, window, poll time.Duration) {
	GinkgoHelper()
	const id = "CP-001"
	text, err := checks.IstiodLogs(ctx, kube, istioNamespace, revision, logsSince)
	before := checks.ScanIstiodLog(text)
	if err != nil {
		record.Unjudged(id, fmt.Errorf("reading istiod's logs: %w", err), fields(before.TLSBadCertificate, before.Lines))
	}
	if before.TLSBadCertificate.Count == 0 {
		record.Check(id, nil, "no TLS handshake errors (bad certificate) in istiod's logs", fields(before.TLSBadCertificate, before.Lines))
		return
	}
	By(fmt.Sprintf("%d TLS errors so far: watching istiod's logs for %v for new ones", before.TLSBadCertificate.Count, window))
	after, err := checks.TLSErrorsSettle(ctx, kube, istioNamespace, revision, logsSince, window, poll)
	f := fields(after.TLSBadCertificate, after.Lines)
	f["matches before the window"] = fmt.Sprint(before.TLSBadCertificate.Count)
	f["window"] = window.String()
	switch grew := checks.CheckTLSErrorsSettled(before, after); {
	case err == nil:
		record.Check(id, nil, fmt.Sprintf("%d TLS handshake errors, none new over a %v window: warm-up transients", after.TLSBadCertificate.Count, window), f)
	case grew != nil:
		// The logs show the growth, whatever ended the window: that is the deviation.
		f["window ended"] = strings.SplitN(err.Error(), "\n", 2)[0]
		record.Check(id, grew, "", f)
	default:
		record.Unjudged(id, err, f)
	}
}
