package behaviors

import (
	"context"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/framework/waypoint"
	"meshconform/internal/apitest"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// TestBehaviorsDryRunOnRealAPIServer makes every behaviour's writes on a real API server with
// Istio's CRDs, as a ServiceAccount bound only to the suite's ClusterRole
// (manifests/rbac/suite-clusterrole.yaml), each as a server-side dry run: its workloads, every
// object it applies (its steps' and its Objects) and deletes, what its Run writes itself
// (Writes: INGRESS-002's Secret, CERT-005's webhook configuration), the root-namespace
// snapshot and restore of a disruptive spec, and its group's writes (the posture hardening).
// A schema or CEL error in case data (a typo'd mode, portLevelMtls without selector, a bad
// host) fails here, and so does a verb the role lacks, naming the behaviour, the verb and the
// object: what would otherwise fail only on an existing cluster bound to that role.
func TestBehaviorsDryRunOnRealAPIServer(t *testing.T) {
	t.Parallel() // its own namespaces and ServiceAccount: the waits for their deletion overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 5*time.Minute)
	as := bindSuiteRole(t, env, ctx, "suite", nil)
	admin := adminActor(env)
	e, mapper := replayWorld(t, env, ctx, as)
	bs := e2e.Registered()
	for _, b := range bs {
		t.Run(b.Text(), func(t *testing.T) {
			for _, err := range replayBehavior(ctx, as, admin, mapper, e, b) {
				t.Error(err)
			}
		})
	}
	names, members := groupsOf(bs)
	for _, name := range names {
		g, ok := e2e.RegisteredGroup(name)
		if !ok || g.Writes == nil {
			continue
		}
		t.Run("group "+name, func(t *testing.T) {
			for _, err := range replayGroup(ctx, as, admin, mapper, e, groupWho(name, members[name]), g) {
				t.Error(err)
			}
		})
	}
}

// TestSuiteRoleRefusalsNameBehaviourVerbAndObject proves the test above can fail on the role:
// with update on Sidecars and delete on Secrets taken out of it, EGRESS-001 (its second step
// applies the client's Sidecar over the first's) and INGRESS-002 (its Secret goes after the
// spec) fail with that one refusal each, naming the behaviour, the verb and the object.
func TestSuiteRoleRefusalsNameBehaviourVerbAndObject(t *testing.T) {
	t.Parallel() // its own namespaces and ServiceAccount: the waits for their deletion overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	as := bindSuiteRole(t, env, ctx, "suite-less", func(cr *rbacv1.ClusterRole) {
		without("networking.istio.io", "sidecars", "update")(cr)
		without("", "secrets", "delete")(cr)
	})
	e, mapper := replayWorld(t, env, ctx, as)
	want := map[string]string{
		"EGRESS-001":  "EGRESS-001: update Sidecar " + e.NS(cases.Client) + "/default: ",
		"INGRESS-002": "INGRESS-002: delete Secret " + e.Gateway.Namespace + "/" + tlsSecretName(e) + ": ",
	}
	for _, b := range e2e.Registered() {
		w, ok := want[b.ID]
		if !ok {
			continue
		}
		errs := replayBehavior(ctx, as, adminActor(env), mapper, e, b)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), w) || !strings.Contains(errs[0].Error(), "forbidden") {
			t.Errorf("%s: got %v, want one refusal starting %q", b.ID, errs, w)
			continue
		}
		t.Logf("refused as expected: %v", errs[0])
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

// TestGatewayAPIIngressDryRunOnRealAPIServer: with INGRESS_API=gateway-api, INGRESS-001's and
// INGRESS-002's writes (their Gateway of class istio and HTTPRoutes, server-side applied and
// read back as the runner does; INGRESS-002's Secret, now in the server namespace) pass the
// Gateway API v1.6.0 CRDs' schema and CEL rules and the suite's ClusterRole, as the suite's
// ServiceAccount; and the run's check for the Gateway API (cases.FindGatewayAPI) passes as
// that ServiceAccount once the CRDs and GatewayClass istio are there.
func TestGatewayAPIIngressDryRunOnRealAPIServer(t *testing.T) {
	t.Parallel() // its own namespaces and ServiceAccount: the waits for their deletion overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 5*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	class := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gatewayapi.Group + "/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": gatewayapi.IngressClass}, "spec": map[string]any{"controllerName": istionames.GatewayController}}}
	if _, err := env.Dynamic.Resource(waypoint.GatewayClassResource).Create(ctx, class, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	as := bindSuiteRole(t, env, ctx, "suite-gwapi", nil)
	admin := adminActor(env)
	e, mapper := replayWorld(t, env, ctx, as)
	ref, err := cases.FindGatewayAPI(ctx, as.Kube, as.Dynamic)
	if err != nil {
		t.Fatalf("cases.FindGatewayAPI as the suite's ServiceAccount: %v", err)
	}
	ref.Namespace = e.Namespaces[cases.Server] // as the runner's Setup does
	e.Gateway = ref
	for _, b := range e2e.Registered() {
		if b.ID != "INGRESS-001" && b.ID != "INGRESS-002" {
			continue
		}
		t.Run(b.Text(), func(t *testing.T) {
			kinds := map[string]int{}
			for _, o := range b.AllObjects(e) {
				kinds[o.GetObjectKind().GroupVersionKind().Kind]++
			}
			if kinds["Gateway"] != 1 || kinds["HTTPRoute"] == 0 || kinds["VirtualService"] != 0 {
				t.Errorf("objects under INGRESS_API=gateway-api: %v; want one Gateway API Gateway and its HTTPRoutes, no VirtualService", kinds)
			}
			for _, err := range replayBehavior(ctx, as, admin, mapper, e, b) {
				t.Error(err)
			}
		})
	}
}
