// Package posture registers the posture suite: the read-only audit of framework/posture run
// against the suite's own cluster, asserting what a default Istio install lacks and that
// the hardened configuration of the best-practices document (seed 003) fixes it.
//
// Hardening installs a mesh-wide default-deny AuthorizationPolicy, which breaks every other
// spec's traffic while it is there: the whole container is Serial and disruptive, and runs
// only where disruptive specs may (a cluster the suite created, or ALLOW_DISRUPTIVE=1).
package posture

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"meshconform/framework/expect"
	"meshconform/framework/ownership"
	"meshconform/framework/posture"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// audit is one run of the audit, before and after hardening.
type audit struct{ before, after posture.Report }

// want is what a check must say on a default install, and after hardening.
type want struct {
	id            string
	before, after posture.Result
	// findingIn names a workload a finding must point at (the spec deployed it to offend).
	findingIn workload.Sample
	why       string
}

var wants = []want{
	{id: "POSTURE-001", before: posture.Fail, after: posture.Pass, why: "Istio installs PERMISSIVE; hardening adds a mesh-wide STRICT policy"},
	{id: "POSTURE-002", before: posture.Pass, after: posture.Pass, why: "no PeerAuthentication weakens STRICT in the audited namespace"},
	{id: "POSTURE-003", before: posture.Fail, after: posture.Pass, why: "no default deny until hardening adds one"},
	{id: "POSTURE-004", before: posture.Fail, after: posture.Pass, findingIn: workload.PlainClient, why: "plain-client opts out of injection; the allow list then excuses it with a reason"},
	{id: "POSTURE-005", before: posture.Fail, after: posture.Pass, findingIn: workload.HttpbinExcluded, why: "httpbin-excluded bypasses capture; the allow list then excuses it"},
	{id: "POSTURE-006", before: posture.Fail, after: posture.Fail, findingIn: workload.Sleep, why: "without Istio CNI, istio-init needs NET_ADMIN/NET_RAW; hardening does not install CNI"},
	{id: "POSTURE-007", before: posture.Fail, after: posture.Pass, why: "no NetworkPolicy selects istiod until hardening adds one"},
}

var _ = Describe("posture", Ordered, Serial, Label("posture", "disruptive"), func() {
	var a audit

	BeforeAll(func(ctx SpecContext) {
		r := e2e.Current
		if !r.State.DisruptiveAllowed {
			Skip("the posture suite hardens the whole mesh (default deny): it runs only on a cluster the suite created, or with ALLOW_DISRUPTIVE=1")
		}
		s := e2e.Setup(ctx, r, "posture", []cases.Namespace{{Role: cases.Server, Meshed: true,
			Samples: []workload.Sample{workload.Sleep, workload.PlainClient, workload.HttpbinExcluded}}})
		ns := s.Env.NS(cases.Server)
		clients := posture.Clients{Kube: r.Kube, Istio: r.Istio}
		cfg := posture.Config{IstioNamespace: r.State.Istio.Namespace, Revision: r.State.Istio.Revision, Namespaces: []string{ns}}

		var err error
		a.before, err = posture.Run(ctx, clients, cfg)
		Expect(err).NotTo(HaveOccurred(), "audit before hardening")

		h := posture.Hardened(a.before.RootNamespace, posture.WithSystemNamespace(a.before.SystemNamespace),
			posture.WithLabels(ownership.Labels(r.State.RunID)))
		if err := h.Apply(ctx, clients); err != nil {
			Fail(fmt.Sprintf("applying the hardened configuration: %v", err))
		}
		DeferCleanup(func(ctx context.Context) {
			Expect(h.Delete(ctx, clients)).To(Succeed(), "removing the hardened configuration")
		})
		// The exceptions a platform team would write, each with its reason.
		cfg.Allow = posture.AllowList{Entries: []posture.AllowEntry{
			{Workload: ns + "/plain-client", Checks: []string{"POSTURE-004"}, Reason: "conformance client that must stay outside the mesh"},
			{Workload: ns + "/httpbin-excluded", Checks: []string{"POSTURE-005"}, Reason: "MTLS-010's server excludes its port on purpose"},
		}}
		a.after, err = posture.Run(ctx, clients, cfg)
		Expect(err).NotTo(HaveOccurred(), "audit after hardening")
	})

	for _, w := range wants {
		It(fmt.Sprintf("%s: %s", w.id, w.why), e2e.IDLabels(w.id), func() {
			before, ok := a.before.Check(w.id)
			Expect(ok).To(BeTrue(), "the audit has no %s", w.id)
			after, _ := a.after.Check(w.id)
			e2e.RecordFields(w.id, expect.Documented, w.why, map[string]string{
				"before": describe(before), "after": describe(after)})
			Expect(before.Result).To(Equal(w.before), "default install:\n%s", describe(before))
			if w.findingIn != "" {
				Expect(names(before.Findings)).To(ContainElement(HavePrefix(string(w.findingIn))),
					"%s should name the %s workload:\n%s", w.id, w.findingIn, describe(before))
			}
			Expect(after.Result).To(Equal(w.after), "after hardening:\n%s", describe(after))
		})
	}
})

func describe(c posture.CheckResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s: %s (%s)", c.ID, c.Title, c.Result, c.Examined)
	for _, f := range c.Findings {
		fmt.Fprintf(&sb, "\n  - %s %s/%s %s = %s: %s", f.Kind, f.Namespace, f.Name, f.Field, f.Value, f.Message)
	}
	for _, f := range c.Allowed {
		fmt.Fprintf(&sb, "\n  - allowed: %s %s/%s (%s)", f.Kind, f.Namespace, f.Name, f.Allowed.Reason)
	}
	if c.Error != "" {
		fmt.Fprintf(&sb, "\n  error: %s", c.Error)
	}
	return sb.String()
}

func names(fs []posture.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}
