// Package controlplane registers the control-plane health specs (CP-001..003): istiod's logs
// read for the patterns seed 000 tells operators to grep for, and istiod's RBAC.
//
// They are Serial so that, in a parallel run, Ginkgo runs them after the other specs: the
// logs then hold the suite's own traffic and policy churn.
package controlplane

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/expect"
	"meshconform/suites/checks"
	"meshconform/suites/internal/e2e"
)

// settlePoll paces the quiet window of CP-001's warm-up rule: the count of TLS errors must stop
// growing over it (three reads in a row, this far apart).
const settlePoll = 15 * time.Second

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

func verdict(id string, err error, ok string, f map[string]string) {
	if err != nil {
		e2e.RecordFields(id, expect.Deviation, err.Error(), f)
		Fail(fmt.Sprintf("%s: %v", id, err))
	}
	e2e.RecordFields(id, expect.Documented, ok, f)
}

var _ = Describe("controlplane", Serial, func() {
	It("CP-001: istiod logs no persistent TLS handshake errors (bad certificate)", e2e.IDLabels("CP-001"), SpecTimeout(5*time.Minute), func(ctx SpecContext) {
		before, _, err := scan(ctx)
		if err != nil {
			Fail(fmt.Sprintf("CP-001: reading istiod's logs: %v", err))
		}
		after := before
		if before.TLSBadCertificate.Total() > 0 {
			By(fmt.Sprintf("%d TLS errors so far: waiting for the count to stop growing", before.TLSBadCertificate.Total()))
			cfg := e2e.Current.Expect
			cfg.Poll, cfg.Timeout = settlePoll, 4*time.Minute
			prev := before.TLSBadCertificate.Total()
			_ = expect.ConvergeFunc(ctx, cfg, func(ctx context.Context) error {
				f, _, err := scan(ctx)
				if err != nil {
					return err
				}
				after = f
				if n := f.TLSBadCertificate.Total(); n != prev {
					prev = n
					return fmt.Errorf("TLS handshake errors grew to %d", n)
				}
				return nil
			})
		}
		verdict("CP-001", checks.CheckTLSErrorsSettled(before, after), "no persistent TLS handshake errors",
			fields(after.TLSBadCertificate, after.Lines))
	})

	It("CP-002: istiod can list what it watches (no RBAC gap)", e2e.IDLabels("CP-002"), func(ctx SpecContext) {
		f, _, err := scan(ctx)
		if err != nil {
			Fail(fmt.Sprintf("CP-002: reading istiod's logs: %v", err))
		}
		fs := fields(f.CannotList, f.Lines)
		verdict("CP-002", f.CannotList.Absent(), "", fs)
		r := e2e.Current
		var opts []checks.RBACOption
		if r.State.Istio.Revision != "" {
			opts = append(opts, checks.ForRevision(r.State.Istio.Revision))
		}
		verdict("CP-002", checks.CheckIstiodRBAC(ctx, r.Kube, r.State.Istio.Namespace, opts...),
			"no 'cannot list resource' errors; istiod's service account is bound to the permissions it needs", fs)
	})

	It("CP-003: no CA authentication failures", e2e.IDLabels("CP-003"), func(ctx SpecContext) {
		f, _, err := scan(ctx)
		if err != nil {
			Fail(fmt.Sprintf("CP-003: reading istiod's logs: %v", err))
		}
		verdict("CP-003", f.CAAuthFailed.Absent(), "no serverca JWT authentication failures", fields(f.CAAuthFailed, f.Lines))
	})
})
