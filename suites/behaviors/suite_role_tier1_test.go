package behaviors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"meshconform/framework/access"
	"meshconform/framework/expect"
	"meshconform/framework/gatewayapi"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/internal/apitest"
	"meshconform/manifests/rbac"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// actor is who makes requests: the admin, or a ServiceAccount bound to one ClusterRole.
type actor struct {
	Kube    kubernetes.Interface
	Istio   istioclient.Interface
	Dynamic dynamic.Interface
	Applier *policy.Applier
}

func adminActor(env *apitest.Environment) actor {
	return actor{Kube: env.Kube, Istio: env.Istio, Dynamic: env.Dynamic, Applier: policy.NewApplier(env.Istio, env.RunID)}
}

// bindSuiteRole binds manifests/rbac/suite-clusterrole.yaml (changed by edit, when not nil)
// with a ClusterRoleBinding to a new ServiceAccount, and nothing else, and returns clients that
// act as it, once the API server's authorizer grants it every permission of the role.
func bindSuiteRole(t *testing.T, env *apitest.Environment, ctx context.Context, name string, edit func(*rbacv1.ClusterRole)) actor {
	t.Helper()
	cr, err := access.ParseClusterRole("manifests/rbac/suite-clusterrole.yaml", rbac.SuiteClusterRole)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cr)
	}
	ns := env.Namespace(t, "suite-role", nil)
	if _, err := env.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := newRBACFixture(t, env, ctx)
	f.binding(name, f.role(name, cr.Rules...), saSubject(ns, name))

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + name}
	cfg.QPS, cfg.Burst = 50, 100
	var a actor
	if a.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if a.Istio, err = istioclient.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if a.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	a.Applier = policy.NewApplier(a.Istio, env.RunID)
	// The role and the binding reach the authorizer through informers.
	perms := access.Permissions(cr)
	err = expect.ConvergeFunc(ctx, expect.Config{Consecutive: 1, Timeout: 30 * time.Second, Poll: 200 * time.Millisecond}, func(ctx context.Context) error {
		missing, err := access.Missing(ctx, a.Kube, perms)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fmt.Errorf("not yet granted:%s", access.Join(missing))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ServiceAccount %s/%s bound to the suite's ClusterRole: %v", ns, name, err)
	}
	return a
}

// without removes verb on resource (of group) from a ClusterRole's rules.
func without(group, resource, verb string) func(*rbacv1.ClusterRole) {
	return func(cr *rbacv1.ClusterRole) {
		var rules []rbacv1.PolicyRule
		for _, r := range cr.Rules {
			if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, resource) || !slices.Contains(r.Verbs, verb) {
				rules = append(rules, r)
				continue
			}
			others := *r.DeepCopy()
			others.Resources = slices.DeleteFunc(others.Resources, func(s string) bool { return s == resource })
			if len(others.Resources) > 0 {
				rules = append(rules, others)
			}
			this := *r.DeepCopy()
			this.Resources = []string{resource}
			this.Verbs = slices.DeleteFunc(this.Verbs, func(s string) bool { return s == verb })
			if len(this.Verbs) > 0 {
				rules = append(rules, this)
			}
		}
		cr.Rules = rules
	}
}

// replay makes a behaviour's writes as a bound ServiceAccount (as), each as a server-side dry
// run, against the state the run would meet: after each write the admin stores for real what
// it would have stored, so that a later one meets it (a second step's apply takes the
// Applier's get-and-update path; a delete finds its object), and removes all of it at the end.
// Every refusal is an error naming the behaviour, the verb and the object; the admin stores
// what the refused write would have stored all the same, so that one run names every refusal
// the Applier reaches (a refused create hides the update after it, though).
type replay struct {
	ctx    context.Context
	who    string
	as     actor
	admin  actor
	mapper meta.RESTMapper
	stored []*unstructured.Unstructured
	errs   []error
}

// clusterOwn labels what the admin stores as the cluster's own (a root-namespace policy of a
// name a behaviour applies, a webhook configuration a behaviour updates).
const clusterOwn = "meshconform.test/cluster-own"

func newReplay(ctx context.Context, who string, as, admin actor, mapper meta.RESTMapper) *replay {
	return &replay{ctx: ctx, who: who, as: as, admin: admin, mapper: mapper}
}

// refusal is how the API server words an RBAC refusal (k8s.io/apiserver's forbiddenMessage):
// `User "…" cannot update resource "sidecars" in API group "networking.istio.io" …`.
var refusal = regexp.MustCompile(`cannot (\w+) resource "`)

// fail records err of doing verb on o; a refusal names the verb the authorizer refused.
func (r *replay) fail(verb string, o cases.Object, err error) {
	if m := refusal.FindStringSubmatch(err.Error()); m != nil {
		verb = m[1]
	}
	r.errs = append(r.errs, fmt.Errorf("%s: %s %s: %w", r.who, verb, describeObject(o), err))
}

func (r *replay) harness(what string, o cases.Object, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s: (test harness) %s %s: %w", r.who, what, describeObject(o), err))
}

// describeObject is "Kind namespace/name" ("Kind name" when cluster-scoped).
func describeObject(o cases.Object) string {
	kind := "?"
	if gvk, err := gvkOf(o); err == nil {
		kind = gvk.Kind
	}
	if o.GetNamespace() == "" {
		return kind + " " + o.GetName()
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}

func gvkOf(o cases.Object) (schema.GroupVersionKind, error) {
	if gvk := o.GetObjectKind().GroupVersionKind(); !gvk.Empty() {
		return gvk, nil
	}
	for _, s := range []*runtime.Scheme{kubescheme.Scheme, istioscheme.Scheme} {
		if kinds, _, err := s.ObjectKinds(o); err == nil && len(kinds) > 0 {
			return kinds[0], nil
		}
	}
	return schema.GroupVersionKind{}, fmt.Errorf("%T: no kind registered", o)
}

// unstructuredOf is o as the API would store it from this request: its kind set, server
// fields cleared.
func unstructuredOf(o cases.Object) (*unstructured.Unstructured, error) {
	gvk, err := gvkOf(o)
	if err != nil {
		return nil, err
	}
	var u *unstructured.Unstructured
	if in, ok := o.(*unstructured.Unstructured); ok {
		u = in.DeepCopy()
	} else {
		data, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		u = &unstructured.Unstructured{}
		if err := json.Unmarshal(data, &u.Object); err != nil {
			return nil, err
		}
	}
	u.SetGroupVersionKind(gvk)
	u.SetResourceVersion("")
	u.SetUID("")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// client is the dynamic client of o's resource, for actor a.
func (r *replay) client(a actor, o cases.Object) (dynamic.ResourceInterface, *unstructured.Unstructured, error) {
	u, err := unstructuredOf(o)
	if err != nil {
		return nil, nil, err
	}
	gvk := u.GroupVersionKind()
	m, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.Dynamic.Resource(m.Resource).Namespace(u.GetNamespace()), u, nil
	}
	return a.Dynamic.Resource(m.Resource), u, nil
}

// present says whether o is stored (asked as the admin).
func (r *replay) present(o cases.Object) bool {
	c, u, err := r.client(r.admin, o)
	if err != nil {
		r.harness("looking up", o, err)
		return false
	}
	_, err = c.Get(r.ctx, u.GetName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		r.harness("reading", o, err)
	}
	return err == nil
}

// store has the admin store o (labels replaced by labels, when not nil), to remove at the end.
func (r *replay) store(o cases.Object, labels map[string]string) {
	c, u, err := r.client(r.admin, o)
	if err != nil {
		r.harness("looking up", o, err)
		return
	}
	if labels != nil {
		u.SetLabels(labels)
	}
	if _, err := c.Create(r.ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.harness("storing", o, err)
		return
	}
	r.stored = append(r.stored, u)
}

// seed stores o as the cluster's own, unless an object of its name is there: what a cluster
// may hold outside the spec's namespaces (a root-namespace policy of that name).
func (r *replay) seed(o cases.Object) {
	if !r.present(o) {
		r.store(o, map[string]string{clusterOwn: "true"})
	}
}

// apply is Scenario.Apply: the Applier creates o, or gets and updates the one there.
func (r *replay) apply(o policy.Object) {
	if u, ok := o.(*unstructured.Unstructured); ok && u.GroupVersionKind().Group == gatewayapi.Group {
		r.applyGatewayAPI(u)
		return
	}
	existed := r.present(o)
	verb := "create"
	if existed {
		verb = "apply over the one there (create, get, update)"
	}
	if err := r.as.Applier.DryRun(r.ctx, o); err != nil {
		r.fail(verb, o, err)
	} else if !existed && r.present(o) {
		r.harness("the dry run stored", o, errors.New("a server-side dry run must store nothing"))
	}
	// Stored even after a refusal, so that the writes after it are checked too.
	if !existed {
		r.stored = append(r.stored, mustUnstructured(o))
	}
	if err := r.admin.Applier.Apply(r.ctx, o.DeepCopyObject().(policy.Object)); err != nil {
		r.harness("applying", o, err)
	}
}

// applyGatewayAPI makes the runner's writes of a Gateway API object (suites/internal/e2e,
// Scenario.Apply: server-side apply, then the readiness wait's get): a dry-run apply as the
// suite's ServiceAccount, stored by the admin, and read back as the ServiceAccount.
func (r *replay) applyGatewayAPI(u *unstructured.Unstructured) {
	existed := r.present(u)
	c, obj, err := r.client(r.as, u)
	if err != nil {
		r.harness("looking up", u, err)
		return
	}
	if _, err := c.Apply(r.ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "meshconform", Force: true, DryRun: []string{metav1.DryRunAll}}); err != nil {
		r.fail("apply (server-side: create, patch)", u, err)
	} else if !existed && r.present(u) {
		r.harness("the dry run stored", u, errors.New("a server-side dry run must store nothing"))
	}
	if !existed {
		r.stored = append(r.stored, obj.DeepCopy())
	}
	ac, aobj, _ := r.client(r.admin, u)
	if _, err := ac.Apply(r.ctx, aobj.GetName(), aobj, metav1.ApplyOptions{FieldManager: "meshconform", Force: true}); err != nil {
		r.harness("applying", u, err)
		return
	}
	if _, err := c.Get(r.ctx, obj.GetName(), metav1.GetOptions{}); err != nil {
		r.fail("get", u, err)
	}
}

func mustUnstructured(o cases.Object) *unstructured.Unstructured {
	u, err := unstructuredOf(o)
	if err != nil {
		panic(err)
	}
	return u
}

// write makes w's verbs in order.
func (r *replay) write(w cases.Write) {
	for _, v := range w.Verbs {
		switch v {
		case cases.Create:
			r.create(w.Object)
		case cases.Get:
			r.get(w.Object)
		case cases.Update:
			r.update(w.Object)
		case cases.Delete:
			r.delete(w.Object)
		default:
			r.harness("verb "+string(v)+" on", w.Object, errors.New("unknown verb"))
		}
	}
}

func (r *replay) create(o cases.Object) {
	if r.present(o) {
		r.harness("creating", o, errors.New("it is already there: the run would get AlreadyExists"))
		return
	}
	c, u, err := r.client(r.as, o)
	if err != nil {
		r.harness("looking up", o, err)
		return
	}
	if _, err := c.Create(r.ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		r.fail("create", o, err)
	} else if r.present(o) {
		r.harness("the dry run stored", o, errors.New("a server-side dry run must store nothing"))
	}
	r.store(o, nil)
}

// get reads o, which the cluster holds (the admin stores it first when it does not).
func (r *replay) get(o cases.Object) {
	if !r.present(o) {
		r.store(o, map[string]string{clusterOwn: "true"})
	}
	c, u, err := r.client(r.as, o)
	if err != nil {
		r.harness("looking up", o, err)
		return
	}
	if _, err := c.Get(r.ctx, u.GetName(), metav1.GetOptions{}); err != nil {
		r.fail("get", o, err)
	}
}

// update reads o and writes it back as o says, as a dry run.
func (r *replay) update(o cases.Object) {
	if !r.present(o) {
		r.store(o, map[string]string{clusterOwn: "true"})
	}
	c, u, err := r.client(r.as, o)
	if err != nil {
		r.harness("looking up", o, err)
		return
	}
	cur, err := c.Get(r.ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		r.fail("get", o, err)
		return
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	if _, err := c.Update(r.ctx, u, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		r.fail("update", o, err)
	}
}

// delete deletes o as a dry run, then the admin deletes it for real.
func (r *replay) delete(o cases.Object) {
	if !r.present(o) {
		r.store(o, map[string]string{clusterOwn: "true"})
	}
	c, u, err := r.client(r.as, o)
	if err != nil {
		r.harness("looking up", o, err)
		return
	}
	if err := c.Delete(r.ctx, u.GetName(), metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		r.fail("delete", o, err)
	} else if !r.present(o) {
		r.harness("the dry run deleted", o, errors.New("a server-side dry run must delete nothing"))
	}
	ac, _, _ := r.client(r.admin, o)
	if err := ac.Delete(r.ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		r.harness("deleting", o, err)
	}
}

// cleanup has the admin remove what the replay stored.
func (r *replay) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range slices.Backward(r.stored) {
		c, _, err := r.client(r.admin, u)
		if err == nil {
			err = c.Delete(ctx, u.GetName(), metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			r.harness("removing", u, err)
		}
	}
}

// replayBehavior makes b's writes as actor as, in the runner's order (suites/internal/e2e):
// its namespaces' workloads, the root namespace's snapshot when the spec protects it, each
// step's applies and deletes (or Run's Objects, then its Writes), and the restore. Applied
// objects outside the spec's namespaces meet one of their name there first: a cluster may
// hold one (a root-namespace policy), and the Applier then gets and updates it.
func replayBehavior(ctx context.Context, as, admin actor, mapper meta.RESTMapper, e cases.Env, b e2e.Behavior) []error {
	r := newReplay(ctx, b.ID, as, admin, mapper)
	nss, steps := b.Namespaces, b.Steps
	if b.Proxyless != nil {
		// The proxyless table's workloads and writes too (DATAPLANE_MODE=proxyless).
		nss, steps = append(slices.Clone(nss), b.Proxyless.Namespaces...), append(slices.Clone(steps), b.Proxyless.Steps...)
	}
	for _, n := range nss {
		if len(n.Samples) == 0 {
			continue
		}
		if err := workload.DryRun(ctx, as.Kube, e.NS(n.Role), n.Samples...); err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: workloads of role %s: %w", b.ID, n.Role, err))
		}
	}
	own := map[string]bool{}
	for _, ns := range e.Namespaces {
		own[ns] = true
	}
	for _, o := range b.AllObjects(e) {
		if !own[o.GetNamespace()] {
			r.seed(o)
		}
	}
	var snap *policy.Snapshot
	if b.ProtectsRootNamespace() {
		var err error
		if snap, err = as.Applier.Snapshot(ctx, e.RootNamespace); err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: snapshot of the root namespace %s: %w", b.ID, e.RootNamespace, err))
		}
	}
	for _, s := range steps {
		if s.Apply != nil {
			for _, o := range s.Apply(e) {
				r.apply(o)
			}
		}
		if s.Delete != nil {
			for _, o := range s.Delete(e) {
				r.delete(o)
			}
		}
	}
	if b.Objects != nil {
		for _, o := range b.Objects(e) {
			r.apply(o)
		}
	}
	if b.Writes != nil {
		for _, w := range b.Writes(e) {
			r.write(w)
		}
	}
	if snap != nil {
		if rep, err := as.Applier.Restore(ctx, snap); err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: restoring the root namespace %s (%s): %w", b.ID, e.RootNamespace, rep, err))
		}
	}
	r.cleanup()
	return r.errs
}

// replayGroup makes a group's Writes as actor as; who names the group and its behaviours.
func replayGroup(ctx context.Context, as, admin actor, mapper meta.RESTMapper, e cases.Env, who string, g e2e.Group) []error {
	r := newReplay(ctx, who, as, admin, mapper)
	for _, w := range g.Writes(e) {
		r.write(w)
	}
	r.cleanup()
	return r.errs
}

// replayWorld is what replays run in: the cluster's namespaces (root, the gateway's), made
// by the admin, and one namespace per role, made by as as the runner makes them. A dry run
// stores nothing and a replay removes what it stored, so they serve every behaviour.
func replayWorld(t *testing.T, env *apitest.Environment, ctx context.Context, as actor) (cases.Env, meta.RESTMapper) {
	t.Helper()
	e := cases.Env{Namespaces: map[cases.Role]string{}, TrustDomain: "cluster.local", RootNamespace: "istio-system",
		Gateway: cases.GatewayRef{Namespace: "istio-ingress", Service: "istio-ingressgateway", Port: 80, HTTPSPort: 443,
			Selector: map[string]string{"istio": "ingressgateway"}}}
	for _, ns := range []string{e.RootNamespace, e.Gateway.Namespace} {
		if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, r := range []cases.Role{cases.Server, cases.Client, cases.Other} {
		ns, err := workload.Namespace(ctx, as.Kube, workload.NamespaceSpec{Prefix: "dry-" + string(r), RunID: env.RunID, Injection: workload.InjectionOn})
		if err != nil {
			t.Fatalf("creating the %s namespace as the suite's ServiceAccount: %v", r, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := workload.DeleteNamespaces(ctx, as.Kube, ns); err != nil {
				t.Errorf("deleting %s as the suite's ServiceAccount: %v", ns, err)
			}
		})
		e.Namespaces[r] = ns
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return e, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
}

// groupsOf is each group the behaviours name, with its behaviours' IDs.
func groupsOf(bs []e2e.Behavior) (names []string, members map[string][]string) {
	members = map[string][]string{}
	for _, b := range bs {
		if b.Group == "" {
			continue
		}
		if _, ok := members[b.Group]; !ok {
			names = append(names, b.Group)
		}
		members[b.Group] = append(members[b.Group], b.ID)
	}
	return names, members
}

func groupWho(name string, ids []string) string {
	return fmt.Sprintf("group %q (%s)", name, strings.Join(ids, ", "))
}
