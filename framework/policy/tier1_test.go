package policy

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/ownership"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPeerAuthenticationLifecycle(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-pa", nil)
	a := NewApplier(env.Istio, env.RunID)
	client := env.Istio.SecurityV1().PeerAuthentications(ns)

	pa := PeerAuthentication(ns, "server", Selector(map[string]string{"app": "server"}),
		Mode(MTLSStrict), PortMTLS(8080, MTLSPermissive))
	if err := a.Apply(ctx, pa); err != nil {
		t.Fatal(err)
	}
	if pa.ResourceVersion == "" || pa.UID == "" {
		t.Errorf("Apply did not fill the object from the server: resourceVersion %q uid %q", pa.ResourceVersion, pa.UID)
	}
	got, err := client.Get(ctx, "server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := PeerAuthentication(ns, "server", Selector(map[string]string{"app": "server"}),
		Mode(MTLSStrict), PortMTLS(8080, MTLSPermissive))
	if !proto.Equal(&got.Spec, &want.Spec) {
		t.Errorf("stored spec %v, want %v", &got.Spec, &want.Spec)
	}
	if !ownership.Owned(got.Labels, env.RunID) {
		t.Errorf("stored labels %v lack the ownership labels of run %s", got.Labels, env.RunID)
	}

	// Apply the same value again (it now holds a resourceVersion): still fine, no change.
	if err := a.Apply(ctx, pa); err != nil {
		t.Fatalf("re-applying the applied value: %v", err)
	}

	// Apply again with a change: an update of the same object.
	changed := PeerAuthentication(ns, "server", Selector(map[string]string{"app": "server"}), Mode(MTLSPermissive))
	if err := a.Apply(ctx, changed); err != nil {
		t.Fatal(err)
	}
	got, err = client.Get(ctx, "server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != pa.UID || got.Spec.GetMtls().GetMode() != MTLSPermissive || len(got.Spec.PortLevelMtls) != 0 {
		t.Errorf("after update: uid %s (was %s), mode %v, portLevelMtls %v; want the same object, PERMISSIVE, no port settings",
			got.UID, pa.UID, got.Spec.GetMtls().GetMode(), got.Spec.PortLevelMtls)
	}

	if err := a.Delete(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(ctx, "server", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete, get = %v, want NotFound", err)
	}
	if err := a.Delete(ctx, changed); err != nil {
		t.Errorf("deleting an absent object: %v, want nil", err)
	}
}

func TestDestinationRuleLifecycle(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-dr", nil)
	a := NewApplier(env.Istio, env.RunID)
	client := env.Istio.NetworkingV1().DestinationRules(ns)
	host := "server." + ns + ".svc.cluster.local"

	build := func(opts ...DestinationRuleOption) *networkingv1.DestinationRule {
		return DestinationRule(ns, "server", host, opts...)
	}
	dr := build(TLSMode(TLSIstioMutual), PortTLS(9000, TLSDisable), ExportTo("."))
	if err := a.Apply(ctx, dr); err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, "server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := build(TLSMode(TLSIstioMutual), PortTLS(9000, TLSDisable), ExportTo("."))
	if !proto.Equal(&got.Spec, &want.Spec) {
		t.Errorf("stored spec %v, want %v", &got.Spec, &want.Spec)
	}
	if got.Spec.GetTrafficPolicy().GetPortLevelSettings()[0].GetTls() == nil {
		t.Error("port 9000's tls (DISABLE, the zero value) was lost on the way: want a present tls block")
	}

	if err := a.Apply(ctx, build(TLSMode(TLSDisable))); err != nil {
		t.Fatal(err)
	}
	got, err = client.Get(ctx, "server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tls := got.Spec.GetTrafficPolicy().GetTls(); tls == nil || tls.GetMode() != TLSDisable || len(got.Spec.GetTrafficPolicy().GetPortLevelSettings()) != 0 {
		t.Errorf("after update: trafficPolicy %v, want tls DISABLE and no port settings", got.Spec.GetTrafficPolicy())
	}

	if err := a.Delete(ctx, dr); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(ctx, "server", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete, get = %v, want NotFound", err)
	}
}

func TestAuthorizationPolicyLifecycle(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-ap", nil)
	a := NewApplier(env.Istio, env.RunID)
	client := env.Istio.SecurityV1().AuthorizationPolicies(ns)

	build := func() *securityv1.AuthorizationPolicy {
		return AuthorizationPolicy(ns, "deny-admin", Selector(map[string]string{"app": "server"}), Action(Deny),
			Rule(FromPrincipals("cluster.local/ns/"+ns+"/sa/client"), FromNamespaces("other"),
				ToMethods("GET", "POST"), ToPorts(8080), ToPaths("/admin*")))
	}
	ap := build()
	if err := a.Apply(ctx, ap); err != nil {
		t.Fatal(err)
	}
	got, err := client.Get(ctx, "deny-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := build(); !proto.Equal(&got.Spec, &want.Spec) {
		t.Errorf("stored spec %v, want %v", &got.Spec, &want.Spec)
	}

	// Updated to the empty spec: allow-nothing (deny all).
	denyAll := AuthorizationPolicy(ns, "deny-admin")
	if err := a.Apply(ctx, denyAll); err != nil {
		t.Fatal(err)
	}
	got, err = client.Get(ctx, "deny-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.GetAction() != Allow || len(got.Spec.GetRules()) != 0 || got.Spec.GetSelector() != nil {
		t.Errorf("after update to the empty spec: action %v, %d rules, selector %v; want ALLOW with no rules and no selector",
			got.Spec.GetAction(), len(got.Spec.GetRules()), got.Spec.GetSelector())
	}

	if err := a.Delete(ctx, denyAll); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get(ctx, "deny-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Delete, get = %v, want NotFound", err)
	}
}

// The CRDs' schemas and CEL rules reject these; the error must carry the API server's words,
// which name the field.
func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-invalid", nil)
	a := NewApplier(env.Istio, env.RunID)

	typo, err := FromYAML([]byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: typo, namespace: ` + ns + `}
spec:
  mtls: {mode: STRCT}
`))
	if err != nil {
		t.Fatal(err)
	}
	noSelector := PeerAuthentication(ns, "ports", PortMTLS(8080, MTLSDisable))
	saAndNamespace := AuthorizationPolicy(ns, "sa-and-ns", Rule(From(Namespaces("a"), ServiceAccounts("a/client"))))

	// The messages are kube-apiserver 1.37's with istio.io/api 1.31's CRDs, as seen.
	cases := []struct {
		name, field string
		obj         Object
		want        []string
	}{
		{"mtls mode typo", "spec.mtls.mode", typo[0], []string{
			`PeerAuthentication.security.istio.io "typo" is invalid: `,
			`spec.mtls.mode: Unsupported value: "STRCT": supported values: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"`,
		}},
		{"portLevelMtls without selector", "spec", noSelector, []string{
			`PeerAuthentication.security.istio.io "ports" is invalid: spec: Invalid value: portLevelMtls requires selector`,
		}},
		{"serviceAccounts with namespaces", "spec.rules[0].from[0].source", saAndNamespace, []string{
			`AuthorizationPolicy.security.istio.io "sa-and-ns" is invalid: spec.rules[0].from[0].source: Invalid value: Cannot set serviceAccounts with namespaces`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, op := range []struct {
				name string
				do   func(context.Context, Object) error
			}{{"Apply", a.Apply}, {"DryRun", a.DryRun}} {
				err := op.do(ctx, c.obj)
				if err == nil {
					t.Fatalf("%s accepted the object", op.name)
				}
				if !apierrors.IsInvalid(err) {
					t.Errorf("%s: error is not Invalid (apierrors cannot see through the wrapping?): %v", op.name, err)
				}
				for _, want := range c.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s error:\n  %v\nwant it to contain:\n  %s", op.name, err, want)
					}
				}
				var status apierrors.APIStatus
				if !errors.As(err, &status) || !hasCause(status.Status(), c.field) {
					t.Errorf("%s error does not carry a cause for field %s: %v", op.name, c.field, err)
				}
			}
		})
	}
	// Nothing was stored.
	pas, err := env.Istio.SecurityV1().PeerAuthentications(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aps, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pas.Items)+len(aps.Items) != 0 {
		t.Errorf("rejected objects were stored: %d PeerAuthentications, %d AuthorizationPolicies", len(pas.Items), len(aps.Items))
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-dryrun", nil)
	a := NewApplier(env.Istio, env.RunID)

	objs := []Object{
		PeerAuthentication(ns, "pa", Mode(MTLSStrict)),
		AuthorizationPolicy(ns, "ap", Action(Deny), Rule(ToMethods("DELETE"))),
		DestinationRule(ns, "dr", "h."+ns+".svc.cluster.local", TLSMode(TLSIstioMutual)),
	}
	yamlObjs, err := FromYAML([]byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-yaml, namespace: ` + ns + `}
spec: {mtls: {mode: PERMISSIVE}}
`))
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, yamlObjs[0])
	for _, o := range objs {
		if err := a.DryRun(ctx, o); err != nil {
			t.Errorf("DryRun(%s): %v", describe(o), err)
		}
		if o.GetResourceVersion() != "" || len(o.GetLabels()) != 0 {
			t.Errorf("DryRun changed the caller's %s: resourceVersion %q labels %v", describe(o), o.GetResourceVersion(), o.GetLabels())
		}
	}
	assertEmpty(ctx, t, env, ns)

	// On an existing object, DryRun validates the content as an update and changes nothing.
	pa := PeerAuthentication(ns, "pa", Mode(MTLSStrict))
	if err := a.Apply(ctx, pa); err != nil {
		t.Fatal(err)
	}
	if err := a.DryRun(ctx, PeerAuthentication(ns, "pa", Mode(MTLSDisable))); err != nil {
		t.Errorf("DryRun over an existing object: %v", err)
	}
	if err := a.DryRun(ctx, PeerAuthentication(ns, "pa", PortMTLS(1, MTLSDisable))); err == nil || !strings.Contains(err.Error(), "portLevelMtls requires selector") {
		t.Errorf("DryRun of an invalid update: %v, want the CEL rule's message", err)
	}
	got, err := env.Istio.SecurityV1().PeerAuthentications(ns).Get(ctx, "pa", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.GetMtls().GetMode() != MTLSStrict || got.ResourceVersion != pa.ResourceVersion {
		t.Errorf("after dry-run updates the stored object changed: mode %v resourceVersion %s (was %s)",
			got.Spec.GetMtls().GetMode(), got.ResourceVersion, pa.ResourceVersion)
	}
}

func TestUnstructuredApplyAndDelete(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-unstructured", nil)
	a := NewApplier(env.Istio, env.RunID)
	objs, err := FromYAML([]byte(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr, namespace: ` + ns + `}
spec: {host: h, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	u := objs[0]
	if err := a.Apply(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := env.Istio.NetworkingV1().DestinationRules(ns).Get(ctx, "dr", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.GetTrafficPolicy().GetTls().GetMode() != TLSIstioMutual || !ownership.Owned(got.Labels, env.RunID) {
		t.Errorf("stored %v with labels %v", &got.Spec, got.Labels)
	}
	if u.GetUID() == "" {
		t.Error("Apply did not fill the unstructured object from the server")
	}
	// Again: an update.
	if err := a.Apply(ctx, u); err != nil {
		t.Fatalf("second Apply (update): %v", err)
	}
	if err := a.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, u); err != nil {
		t.Errorf("deleting an absent object: %v", err)
	}
	assertEmpty(ctx, t, env, ns)
}

func TestDeleteAllTakesOnlyThisRunsObjects(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-deleteall", nil)
	mine := NewApplier(env.Istio, env.RunID)
	other := NewApplier(env.Istio, ownership.NewRunID())

	for _, o := range []Object{
		PeerAuthentication(ns, "mine", Mode(MTLSStrict)),
		AuthorizationPolicy(ns, "mine"),
		DestinationRule(ns, "mine", "h", TLSMode(TLSIstioMutual)),
	} {
		if err := mine.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Apply(ctx, PeerAuthentication(ns, "other-run", Mode(MTLSStrict))); err != nil {
		t.Fatal(err)
	}
	// Made by someone else entirely: no labels.
	if _, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).Create(ctx, AuthorizationPolicy(ns, "foreign"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := mine.DeleteAll(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if got, want := names(ctx, t, env, ns), []string{"AuthorizationPolicy/foreign", "PeerAuthentication/other-run"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after DeleteAll the namespace holds %v, want %v", got, want)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	root := env.Namespace(t, "policy-root", nil)
	a := NewApplier(env.Istio, env.RunID)
	sec, netw := env.Istio.SecurityV1(), env.Istio.NetworkingV1()

	// What the cluster's owner had, made without the Applier (no run labels).
	pre := []Object{
		PeerAuthentication(root, "default", Mode(MTLSStrict), Labels(map[string]string{"owner": "platform"})),
		AuthorizationPolicy(root, "keep", Action(Deny), Rule(FromNamespaces("bad"))),
		AuthorizationPolicy(root, "removed-by-run", Action(Allow), Rule(ToMethods("GET")), Annotations(map[string]string{"why": "audit"})),
		DestinationRule(root, "keep-dr", "*.local", TLSMode(TLSIstioMutual)),
	}
	for _, o := range pre {
		var err error
		switch o := o.(type) {
		case *securityv1.PeerAuthentication:
			_, err = sec.PeerAuthentications(root).Create(ctx, o, metav1.CreateOptions{})
		case *securityv1.AuthorizationPolicy:
			_, err = sec.AuthorizationPolicies(root).Create(ctx, o, metav1.CreateOptions{})
		case *networkingv1.DestinationRule:
			_, err = netw.DestinationRules(root).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	snap, err := a.Snapshot(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot: %s", snap)
	if len(snap.PeerAuthentications) != 1 || len(snap.AuthorizationPolicies) != 2 || len(snap.DestinationRules) != 1 {
		t.Fatalf("snapshot holds %s, want the 4 objects made above", snap)
	}

	// The disruptive spec: changes the mesh-wide PeerAuthentication, removes one policy,
	// adds one; meanwhile someone else adds one.
	if err := a.Apply(ctx, PeerAuthentication(root, "default", Mode(MTLSPermissive))); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, AuthorizationPolicy(root, "removed-by-run")); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx, AuthorizationPolicy(root, "added-by-run", Action(Deny))); err != nil {
		t.Fatal(err)
	}
	if _, err := sec.AuthorizationPolicies(root).Create(ctx, AuthorizationPolicy(root, "foreign"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rep, err := a.Restore(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %s", rep)
	wantRep := RestoreReport{
		Deleted: []string{"AuthorizationPolicy/added-by-run"},
		Created: []string{"AuthorizationPolicy/removed-by-run"},
		Updated: []string{"PeerAuthentication/default"},
		Kept:    []string{"AuthorizationPolicy/foreign"},
	}
	if !reflect.DeepEqual(rep, wantRep) {
		t.Errorf("Restore report %+v, want %+v", rep, wantRep)
	}

	// The namespace holds exactly the snapshot again (plus the foreign addition).
	after, err := a.Snapshot(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(ctx, t, env, root), []string{"AuthorizationPolicy/foreign", "AuthorizationPolicy/keep",
		"AuthorizationPolicy/removed-by-run", "DestinationRule/keep-dr", "PeerAuthentication/default"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after Restore the namespace holds %v, want %v", got, want)
	}
	c := a.peerAuthentications(root)
	for i, w := range snap.PeerAuthentications {
		if !c.sameContent(after.PeerAuthentications[i], w) {
			t.Errorf("PeerAuthentication %s after Restore: labels %v spec %v; snapshot had labels %v spec %v",
				w.Name, after.PeerAuthentications[i].Labels, &after.PeerAuthentications[i].Spec, w.Labels, &w.Spec)
		}
	}
	apc := a.authorizationPolicies(root)
	for _, w := range snap.AuthorizationPolicies {
		var found bool
		for _, g := range after.AuthorizationPolicies {
			if g.Name == w.Name {
				found = true
				if !apc.sameContent(g, w) {
					t.Errorf("AuthorizationPolicy %s after Restore: labels %v annotations %v spec %v; snapshot had %v %v %v",
						w.Name, g.Labels, g.Annotations, &g.Spec, w.Labels, w.Annotations, &w.Spec)
				}
			}
		}
		if !found {
			t.Errorf("AuthorizationPolicy %s missing after Restore", w.Name)
		}
	}
	drc := a.destinationRules(root)
	if !drc.sameContent(after.DestinationRules[0], snap.DestinationRules[0]) {
		t.Errorf("DestinationRule changed across Restore: %v", &after.DestinationRules[0].Spec)
	}

	// A second Restore has nothing left to do.
	rep, err = a.Restore(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted)+len(rep.Created)+len(rep.Updated) != 0 {
		t.Errorf("second Restore did %s, want nothing", rep)
	}
}

func hasCause(st metav1.Status, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

func assertEmpty(ctx context.Context, t *testing.T, env *apitest.Environment, ns string) {
	t.Helper()
	if got := names(ctx, t, env, ns); len(got) != 0 {
		t.Errorf("namespace %s holds %v, want nothing", ns, got)
	}
}

// names lists "Kind/name" of the three policy kinds in ns, sorted.
func names(ctx context.Context, t *testing.T, env *apitest.Environment, ns string) []string {
	t.Helper()
	var out []string
	pas, err := env.Istio.SecurityV1().PeerAuthentications(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pas.Items {
		out = append(out, "PeerAuthentication/"+o.Name)
	}
	aps, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range aps.Items {
		out = append(out, "AuthorizationPolicy/"+o.Name)
	}
	drs, err := env.Istio.NetworkingV1().DestinationRules(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range drs.Items {
		out = append(out, "DestinationRule/"+o.Name)
	}
	sort.Strings(out)
	return out
}

// TestAuthorizationPolicyTargetRefs: the targetRefs form (ambient's waypoint attachment) is
// applied by the Applier and stored as built, Service and Gateway targets alike; with a selector
// too, the API server refuses it (the CRD's rule), and the error names it.
func TestAuthorizationPolicyTargetRefs(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-targetrefs", nil)
	a := NewApplier(env.Istio, env.RunID)
	build := func() *securityv1.AuthorizationPolicy {
		return AuthorizationPolicy(ns, "get-only", Action(Allow), TargetRefs(ServiceRef("httpbin"), GatewayRef("waypoint")),
			Rule(FromPrincipals("cluster.local/ns/"+ns+"/sa/client"), ToMethods("GET")))
	}
	if err := a.Apply(ctx, build()); err != nil {
		t.Fatal(err)
	}
	got, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).Get(ctx, "get-only", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := build(); !proto.Equal(&got.Spec, &want.Spec) {
		t.Errorf("stored spec %v, want %v", &got.Spec, &want.Spec)
	}
	refs := got.Spec.GetTargetRefs()
	if len(refs) != 2 || refs[0].GetKind() != "Service" || refs[0].GetGroup() != "" || refs[0].GetName() != "httpbin" ||
		refs[1].GetKind() != "Gateway" || refs[1].GetGroup() != "gateway.networking.k8s.io" || refs[1].GetName() != "waypoint" || got.Spec.GetSelector() != nil {
		t.Errorf("stored targetRefs %v, selector %v", refs, got.Spec.GetSelector())
	}
	both := AuthorizationPolicy(ns, "both", TargetRefs(ServiceRef("httpbin")), Selector(map[string]string{"app": "httpbin"}))
	err = a.Apply(ctx, both)
	if err == nil || !strings.Contains(err.Error(), "only one of targetRefs or selector can be set") {
		t.Errorf("targetRefs with a selector: %v; want the CRD's refusal", err)
	}
}

// TestForWaypointAccepted: what ForWaypoint makes of a selector AuthorizationPolicy, a
// namespace-wide one and a selector RequestAuthentication is accepted by Istio's CRDs as built
// (the selector gone, so the CRD's rule against both holds).
func TestForWaypointAccepted(t *testing.T) {
	env := apitest.Env(t)
	ctx := ctxT(t)
	ns := env.Namespace(t, "policy-forwaypoint", nil)
	a := NewApplier(env.Istio, env.RunID)
	services := map[string]map[string]string{"httpbin": {"app": "httpbin"}}
	ra := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
		"metadata": map[string]any{"name": "jwt", "namespace": ns},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "httpbin"}},
			"jwtRules": []any{map[string]any{"issuer": "https://issuer.example"}}}}}
	for _, o := range []Object{
		AuthorizationPolicy(ns, "allow-get", Selector(map[string]string{"app": "httpbin"}), Action(Allow), Rule(ToPaths("/get"))),
		AuthorizationPolicy(ns, "allow-nothing"),
		ra,
	} {
		w, err := ForWaypoint(o, ns, "waypoint", services)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(ctx, w); err != nil {
			t.Errorf("%s: %v", o.GetName(), err)
		}
	}
	got, err := env.Istio.SecurityV1().RequestAuthentications(ns).Get(ctx, "jwt", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if refs := got.Spec.GetTargetRefs(); len(refs) != 1 || refs[0].GetName() != "httpbin" || got.Spec.GetSelector() != nil {
		t.Errorf("stored RequestAuthentication: targetRefs %v, selector %v", refs, got.Spec.GetSelector())
	}
}
