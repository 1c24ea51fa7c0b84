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
	"errors"
	"fmt"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"meshconform/framework/ownership"
	"meshconform/framework/posture"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
	"meshconform/suites/internal/record"
)

// audit is one run of the audit, before and after hardening.
type audit struct{ before, after posture.Report }

// Want is what a check must say on a default install, and after hardening.
type Want struct {
	ID            string
	Before, After posture.Result
	// FindingIn names a workload a finding must point at (the spec deployed it to offend).
	FindingIn workload.Sample
	Why       string
}

var wants = []Want{
	{ID: "POSTURE-001", Before: posture.Fail, After: posture.Pass, Why: "Istio installs PERMISSIVE; hardening adds a mesh-wide STRICT policy"},
	{ID: "POSTURE-002", Before: posture.Pass, After: posture.Pass, Why: "no PeerAuthentication weakens STRICT in the audited namespace"},
	{ID: "POSTURE-003", Before: posture.Fail, After: posture.Pass, Why: "no default deny until hardening adds one"},
	{ID: "POSTURE-004", Before: posture.Fail, After: posture.Pass, FindingIn: workload.PlainClient, Why: "plain-client opts out of injection; the allow list then excuses it with a reason"},
	{ID: "POSTURE-005", Before: posture.Fail, After: posture.Pass, FindingIn: workload.HttpbinExcluded, Why: "httpbin-excluded bypasses capture; the allow list then excuses it"},
	{ID: "POSTURE-006", Before: posture.Fail, After: posture.Fail, FindingIn: workload.Sleep, Why: "without Istio CNI, istio-init needs NET_ADMIN/NET_RAW; hardening does not install CNI"},
	{ID: "POSTURE-007", Before: posture.Fail, After: posture.Pass, Why: "no NetworkPolicy selects istiod until hardening adds one"},
}

// Verify is the body of one check's spec: it judges what the audit said before and after
// hardening against w, then records it: documented only when everything w expects held, a
// deviation naming each difference otherwise (the spec then fails), and no classification
// when the audit could not evaluate the check. Both audits' words are the evidence either way.
// Exported so that the recording test (suites/internal/record) runs it without a cluster.
func Verify(w Want, before, after posture.CheckResult) {
	GinkgoHelper()
	fields := map[string]string{"before": describe(before), "after": describe(after)}
	if before.Result == posture.Error || after.Result == posture.Error {
		record.Unjudged(w.ID, fmt.Errorf("the audit could not evaluate %s: before hardening %q, after %q", w.ID, before.Error, after.Error), fields)
	}
	record.Check(w.ID, w.judge(before, after), w.Why, fields)
}

// judge lists every way the audit differs from w, nil when none.
func (w Want) judge(before, after posture.CheckResult) error {
	var diffs []string
	if before.Result != w.Before {
		diffs = append(diffs, fmt.Sprintf("default install: %s is %s, want %s", w.ID, before.Result, w.Before))
	}
	if w.FindingIn != "" && !slices.ContainsFunc(names(before.Findings), func(n string) bool { return strings.HasPrefix(n, string(w.FindingIn)) }) {
		diffs = append(diffs, fmt.Sprintf("default install: %s names no %s workload among its findings %v", w.ID, w.FindingIn, names(before.Findings)))
	}
	if after.Result != w.After {
		diffs = append(diffs, fmt.Sprintf("after hardening: %s is %s, want %s", w.ID, after.Result, w.After))
	}
	if len(diffs) == 0 {
		return nil
	}
	return errors.New(strings.Join(diffs, "; ") + " (" + w.Why + ")")
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
		It(fmt.Sprintf("%s: %s", w.ID, w.Why), e2e.IDLabels(w.ID), func() {
			before, ok := a.before.Check(w.ID)
			if !ok {
				Fail(fmt.Sprintf("the audit has no %s: framework/posture must run every POSTURE check", w.ID))
			}
			after, ok := a.after.Check(w.ID)
			if !ok {
				Fail(fmt.Sprintf("the audit after hardening has no %s: framework/posture must run every POSTURE check", w.ID))
			}
			Verify(w, before, after)
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
