package behaviors

// VALID-001: istiod's validating webhook rejects a policy that the CRD schema accepts. The
// schema (the CRD's openAPIV3Schema) allows an AuthorizationPolicy with action DENY and no
// rules; only Istio's own validation, served by istiod at /validate behind the
// ValidatingWebhookConfiguration istio-validator[-<rev>]-<istio namespace> (istio-discovery
// chart, templates/validatingwebhookconfiguration.yaml), refuses it. The policy is created by
// a server-side dry run, which calls the webhooks and persists nothing.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// DenyWithoutRulesMessage is what Istio's validation says of an AuthorizationPolicy with action
// DENY and no rules (pkg/config/validation/validation.go at release-1.30 9739e10eb9d7 and
// release-1.31 eed52ebb66ad: "DENY action without `rules` is meaningless as it will never be
// triggered, add an empty rule `{}` if you want it be triggered for every request").
const DenyWithoutRulesMessage = "DENY action without `rules` is meaningless"

// deniedByWebhook is how the API server words a validating webhook's refusal
// (k8s.io/apiserver admission webhook errors: `admission webhook "<name>" denied the request: <reason>`).
const deniedByWebhook = "denied the request"

// DenyWithoutRules is VALID-001's policy in namespace ns, labelled istio.io/rev=<revision> so
// that the run's own control plane validates it: each revision's webhook selects the objects
// of its revision ("default" for the default one).
func DenyWithoutRules(ns, revision string) *securityv1.AuthorizationPolicy {
	if revision == "" {
		revision = istionames.DefaultRevision
	}
	return policy.AuthorizationPolicy(ns, "valid-001-deny-without-rules", policy.Action(policy.Deny),
		policy.Labels(map[string]string{istionames.RevisionLabel: revision}))
}

// DryRunCreate asks the API server to create ap as a server-side dry run: admission (and so
// istiod's validating webhook) runs, nothing is stored. It returns the API server's answer.
func DryRunCreate(ctx context.Context, istio istioclient.Interface, ap *securityv1.AuthorizationPolicy) error {
	_, err := istio.SecurityV1().AuthorizationPolicies(ap.Namespace).Create(ctx, ap, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

// JudgeRejection says whether the answer to DryRunCreate is the documented rejection: nil when
// a webhook denied the request with Istio's message; otherwise what was seen instead.
func JudgeRejection(err error) error {
	switch {
	case err == nil:
		return errors.New("accepted: the dry run of an AuthorizationPolicy with action DENY and no rules succeeded, so no validating webhook refused it (is istiod's ValidatingWebhookConfiguration there, with failurePolicy Fail?)")
	case strings.Contains(err.Error(), deniedByWebhook) && strings.Contains(err.Error(), DenyWithoutRulesMessage):
		return nil
	case strings.Contains(err.Error(), deniedByWebhook):
		return fmt.Errorf("rejected by a webhook, but not with %q: %v", DenyWithoutRulesMessage, err)
	}
	return fmt.Errorf("refused, but not by a validating webhook (want %q and %q): %v", deniedByWebhook, DenyWithoutRulesMessage, err)
}

var _ = e2e.Register(e2e.Behavior{
	ID: "VALID-001", Name: "istiod's validating webhook rejects an AuthorizationPolicy with action DENY and no rules",
	Serial:     true, // with the other control-plane specs, after the parallel ones
	Namespaces: []cases.Namespace{{Role: cases.Server}},
	Objects: func(e cases.Env) []policy.Object {
		return []policy.Object{DenyWithoutRules(e.NS(cases.Server), "")}
	},
	Run: func(ctx context.Context, t *e2e.T) {
		ns := t.Env.NS(cases.Server)
		ap := DenyWithoutRules(ns, t.Run.State.Istio.Revision)
		var last error
		// istiod turns its webhook to failurePolicy Fail, with its caBundle, once it serves
		// (until then the chart's Ignore lets everything through): N rejections in a row.
		err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
			last = DryRunCreate(ctx, t.Run.Istio, ap)
			return JudgeRejection(last)
		})
		fs := map[string]string{"policy": ns + "/" + ap.Name + " (action DENY, no rules, " + istionames.RevisionLabel + "=" + ap.Labels[istionames.RevisionLabel] + ")",
			"request": "server-side dry run (create)", "answer": answer(last)}
		t.Check(err, "rejected by istiod's validating webhook: "+DenyWithoutRulesMessage, fs)
	},
})

func answer(err error) string {
	if err == nil {
		return "accepted (no error)"
	}
	return err.Error()
}
