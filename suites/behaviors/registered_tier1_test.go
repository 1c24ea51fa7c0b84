package behaviors

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/internal/apitest"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// TestBehaviorsDryRunOnRealAPIServer applies every behaviour's workloads and every object it
// applies (its steps' and its Objects) to a real API server with Istio's CRDs, as a server-side dry-run: a schema or CEL
// error in case data (a typo'd mode, portLevelMtls without selector, a bad host) fails here.
func TestBehaviorsDryRunOnRealAPIServer(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	root := "istio-system"
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: root}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	applier := policy.NewApplier(env.Istio, env.RunID)
	// A dry-run stores nothing, so one namespace per role serves every case (creating and
	// deleting namespaces per case would make this test mostly waiting).
	e := cases.Env{Namespaces: map[cases.Role]string{}, TrustDomain: "cluster.local", RootNamespace: root,
		Gateway: cases.GatewayRef{Namespace: "istio-ingress", Service: "istio-ingressgateway", Port: 80,
			Selector: map[string]string{"istio": "ingressgateway"}}}
	for _, r := range []cases.Role{cases.Server, cases.Client, cases.Other} {
		ns, err := workload.Namespace(ctx, env.Kube, workload.NamespaceSpec{Prefix: "dry-" + string(r), RunID: env.RunID, Injection: workload.InjectionOn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.DeleteNamespace(context.Background(), ns) })
		e.Namespaces[r] = ns
	}
	for _, c := range e2e.Registered() {
		t.Run(c.Text(), func(t *testing.T) {
			for _, n := range c.Namespaces {
				if len(n.Samples) == 0 {
					continue
				}
				if err := workload.DryRun(ctx, env.Kube, e.NS(n.Role), n.Samples...); err != nil {
					t.Errorf("workloads of role %s: %v", n.Role, err)
				}
			}
			objs := c.AllObjects(e)
			for _, o := range objs {
				if err := applier.DryRun(ctx, o); err != nil {
					t.Errorf("%s %s/%s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName(), err)
				}
			}
			// The dry-run stored nothing.
			for _, ns := range append(mapValues(e.Namespaces), root) {
				pas, err := env.Istio.SecurityV1().PeerAuthentications(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if len(pas.Items) != 0 {
					t.Errorf("dry-run stored %d PeerAuthentications in %s", len(pas.Items), ns)
				}
			}
		})
	}
}

// TestDryRunCatchesBrokenCaseData proves the test above can fail: a PeerAuthentication
// with portLevelMtls and no selector is what a careless edit of MTLS-011 would produce.
func TestDryRunCatchesBrokenCaseData(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t, "dry-broken", nil)
	bad := policy.PeerAuthentication(ns, "multiport", policy.Mode(policy.MTLSStrict), policy.PortMTLS(8081, policy.MTLSPermissive))
	err := policy.NewApplier(env.Istio, env.RunID).DryRun(ctx, bad)
	if err == nil {
		t.Fatal("dry-run accepted portLevelMtls without a selector")
	}
	t.Logf("rejected as expected: %v", err)
}

func mapValues(m map[cases.Role]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
