package behaviors

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

// The posture audit: framework/posture's read-only audit run against the suite's own cluster,
// asserting what a default Istio install lacks and that the hardened configuration of the
// best-practices document (seed 003) fixes it. The audit runs once, before and after
// hardening, for the seven POSTURE behaviours (posture_00N.go), which judge its two reports.
//
// Hardening installs a mesh-wide default-deny AuthorizationPolicy, which breaks every other
// spec's traffic while it is there: the group is Serial and disruptive (the catalog's label),
// and left out where disruptive specs may not run.
const postureAudit = "posture audit"

// audited is the group's two reports, set by its setup.
var audited struct{ before, after posture.Report }

var _ = e2e.RegisterGroup(e2e.Group{Name: postureAudit, Writes: hardeningWrites, Setup: func(ctx context.Context) {
	r := e2e.Current
	s := e2e.Setup(ctx, r, "posture", []cases.Namespace{{Role: cases.Server, Meshed: true,
		Samples: []workload.Sample{workload.Sleep, workload.PlainClient, workload.HttpbinExcluded}}})
	ns := s.Env.NS(cases.Server)
	clients := posture.Clients{Kube: r.Kube, Istio: r.Istio}
	cfg := posture.Config{IstioNamespace: r.State.Istio.Namespace, Revision: r.State.Istio.Revision, Namespaces: []string{ns}}

	var err error
	audited.before, err = posture.Run(ctx, clients, cfg)
	Expect(err).NotTo(HaveOccurred(), "audit before hardening")

	h := posture.Hardened(audited.before.RootNamespace, posture.WithSystemNamespace(audited.before.SystemNamespace),
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
	audited.after, err = posture.Run(ctx, clients, cfg)
	Expect(err).NotTo(HaveOccurred(), "audit after hardening")
}})

// hardeningWrites are the hardening's objects, created after the first audit and deleted after
// the group (the NetworkPolicy goes to istiod's namespace, here the root namespace).
func hardeningWrites(e cases.Env) []cases.Write {
	h := posture.Hardened(e.RootNamespace)
	var ws []cases.Write
	for _, o := range []cases.Object{h.PeerAuthentication, h.AuthorizationPolicy, h.NetworkPolicy} {
		ws = append(ws, cases.Write{Object: o, Verbs: []cases.Verb{cases.Create, cases.Delete}})
	}
	return ws
}

// registerPosture registers the POSTURE behaviour w judges, in the audit's group.
func registerPosture(w Want, extra ...func(*e2e.Behavior)) bool {
	b := e2e.Behavior{ID: w.ID, Name: w.Why, Group: postureAudit, Serial: true,
		Run: func(ctx context.Context, t *e2e.T) {
			before, ok := audited.before.Check(w.ID)
			if !ok {
				Fail(fmt.Sprintf("the audit has no %s: framework/posture must run every POSTURE check", w.ID))
			}
			after, ok := audited.after.Check(w.ID)
			if !ok {
				Fail(fmt.Sprintf("the audit after hardening has no %s: framework/posture must run every POSTURE check", w.ID))
			}
			Verify(w, before, after)
		}}
	for _, f := range extra {
		f(&b)
	}
	return e2e.Register(b)
}

// Want is what a check must say on a default install, and after hardening.
type Want struct {
	ID            string
	Before, After posture.Result
	// FindingIn names a workload a finding must point at (the spec deployed it to offend).
	FindingIn workload.Sample
	Why       string
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
