package behaviors

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/internal/apitest"
)

// JudgeRejection passes only a webhook's denial that carries Istio's message; the live tier
// (scripts/live.sh) sees the real one from istiod.
func TestJudgeRejection(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string // "" passes; else a part of the verdict
	}{
		{"denied by istiod", errors.New(`admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: DENY action without ` + "`rules`" + ` is meaningless as it will never be triggered, add an empty rule ` + "`{}`" + ` if you want it be triggered for every request`), ""},
		{"accepted", nil, "accepted"},
		{"denied for another reason", errors.New(`admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: cannot parse`), "not with"},
		{"not a webhook", errors.New(`authorizationpolicies.security.istio.io is forbidden: User "x" cannot create resource`), "not by a validating webhook"},
	} {
		got := JudgeRejection(c.err)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%s: %v", c.name, got)
		case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
			t.Errorf("%s: verdict %v; want one saying %q", c.name, got, c.want)
		}
	}
}

// The premise of VALID-001, on a real API server with Istio's CRDs and no istiod: the CRD
// schema accepts the policy (only Istio's webhook can refuse it), the dry run stores nothing,
// and the judge calls that acceptance a failure.
func TestDenyWithoutRulesPassesTheSchema(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	ns := env.Namespace(t, "valid-001", nil)
	ap := DenyWithoutRules(ns, "")
	if got := ap.Labels["istio.io/rev"]; got != "default" {
		t.Errorf("the policy is labelled istio.io/rev=%q; want default, which the default revision's webhook selects", got)
	}
	if ap.Spec.Rules != nil || ap.Spec.Action.String() != "DENY" {
		t.Fatalf("the policy is not DENY without rules: %v", &ap.Spec)
	}
	err := DryRunCreate(ctx, env.Istio, ap)
	if err != nil {
		t.Fatalf("the API server refused the policy without any webhook: %v (the CRD schema should accept it)", err)
	}
	if v := JudgeRejection(err); v == nil || !strings.Contains(v.Error(), "accepted") {
		t.Errorf("an accepted dry run is judged %v; want a failure saying it was accepted", v)
	}
	list, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("the dry run stored %d policies", len(list.Items))
	}
	if rev := DenyWithoutRules(ns, "canary").Labels["istio.io/rev"]; rev != "canary" {
		t.Errorf("a canary run's policy is labelled istio.io/rev=%q", rev)
	}
}
