package behaviors

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meshconform/framework/wait"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// chartRules are the rules of Istio's istiod ClusterRole (istio-discovery
// templates/clusterrole.yaml) that matter here, as the chart writes them.
var chartRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{"config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"},
		Verbs: []string{"get", "watch", "list"}, Resources: []string{"*"}},
	{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"pods", "nodes", "services", "namespaces", "endpoints"}, Verbs: []string{"get", "list", "watch"}},
}

// rbacFixture creates cluster-scoped RBAC objects named for the test and deletes them after.
type rbacFixture struct {
	t    *testing.T
	kube kubernetes.Interface
	ctx  context.Context
	pfx  string
}

func newRBACFixture(t *testing.T, env *apitest.Environment, ctx context.Context) *rbacFixture {
	return &rbacFixture{t: t, kube: env.Kube, ctx: ctx, pfx: "meshconform-" + env.RunID + "-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))}
}

func (f *rbacFixture) name(s string) string {
	n := f.pfx + "-" + s
	if len(n) > 250 {
		n = n[len(n)-250:]
	}
	return n
}

func (f *rbacFixture) role(name string, rules ...rbacv1.PolicyRule) string {
	f.t.Helper()
	n := f.name(name)
	_, err := f.kube.RbacV1().ClusterRoles().Create(f.ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: n}, Rules: rules}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = f.kube.RbacV1().ClusterRoles().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	return n
}

func (f *rbacFixture) binding(name, role string, subjects ...rbacv1.Subject) string {
	f.t.Helper()
	n := f.name(name)
	_, err := f.kube.RbacV1().ClusterRoleBindings().Create(f.ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: n},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subjects}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		_ = f.kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), n, metav1.DeleteOptions{})
	})
	return n
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}
}

// istiodDeployment creates the chart's istiod Deployment shape: labels app=istiod and
// istio.io/rev, running as sa.
func istiodDeployment(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, rev, sa string) {
	t.Helper()
	name := "istiod"
	revLabel := "default"
	if rev != "" {
		name, revLabel = "istiod-"+rev, rev
	}
	labels := map[string]string{"app": "istiod", "istio.io/rev": revLabel}
	replicas := int32(0) // no pods: only the template matters
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.27.1"}}}}}}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// authorizerAllows asks the API server's own authorizer whether ns/sa may list CRDs,
// polling until the answer equals want (RBAC objects reach the authorizer through an
// informer) or the deadline passes; it returns the last answer.
func authorizerAllows(ctx context.Context, kube kubernetes.Interface, ns, sa string, want bool) (bool, error) {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + ns + ":" + sa,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authzv1.ResourceAttributes{Verb: "list", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
	}}
	r, err := wait.Until(ctx, wait.Config{Timeout: 10 * time.Second, Poll: 100 * time.Millisecond, Consecutive: 1},
		func(ctx context.Context) (bool, error) {
			got, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return false, err
			}
			return got.Status.Allowed, nil
		}, func(allowed bool) bool { return allowed == want })
	last := r.Last()
	if last.Err != nil {
		return false, last.Err
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return last.Value, err
	}
	return last.Value, nil
}

// TestTier1CheckIstiodRBAC builds istiod's RBAC the chart's way and broken ways in a real
// API server, and checks that CheckIstiodRBAC agrees with the API server's authorizer on
// whether istiod may list CRDs.
func TestTier1CheckIstiodRBAC(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 3*time.Minute)

	type setup func(t *testing.T, f *rbacFixture, ns string) []RBACOption
	cases := []struct {
		name  string
		setup setup
		sa    string // the account the authorizer is asked about
		errs  []string
	}{
		{name: "the chart's ClusterRole and binding", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("istiod-clusterrole", f.role("istiod-clusterrole", chartRules...), saSubject(ns, "istiod"))
				return nil
			}},
		{name: "a revision's account", sa: "istiod-canary",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "canary", "istiod-canary")
				f.binding("istiod-clusterrole-canary", f.role("istiod-clusterrole-canary", chartRules...), saSubject(ns, "istiod-canary"))
				return []RBACOption{ForRevision("canary")}
			}},
		{name: "wildcards, through the namespace's service-account group", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("all", f.role("all", rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}),
					rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + ns})
				return nil
			}},
		{name: "split over two bindings, one by user name", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("crds", f.role("crds", chartRules[2]), rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccount:" + ns + ":istiod"})
				f.binding("istio", f.role("istio", chartRules[1]), saSubject(ns, "istiod"))
				return nil
			}},
		{name: "no binding", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.role("istiod-clusterrole", chartRules...)
				return nil
			},
			errs: []string{"/istiod is not granted list customresourcedefinitions.apiextensions.k8s.io, list peerauthentications.security.istio.io, list authorizationpolicies.security.istio.io",
				"no ClusterRoleBinding binds it to a role granting any"}},
		{name: "a role without CRDs", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("istio-only", f.role("istio-only", chartRules[0], chartRules[1], chartRules[3]), saSubject(ns, "istiod"))
				return nil
			},
			errs: []string{"is not granted list customresourcedefinitions.apiextensions.k8s.io by any", "istio-only (list peerauthentications.security.istio.io, list authorizationpolicies.security.istio.io)"}},
		{name: "CRDs by name only", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("named", f.role("named", chartRules[1], rbacv1.PolicyRule{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"},
					ResourceNames: []string{"peerauthentications.security.istio.io"}, Verbs: []string{"get", "list", "watch"}}), saSubject(ns, "istiod"))
				return nil
			},
			errs: []string{"is not granted list customresourcedefinitions.apiextensions.k8s.io"}},
		{name: "the binding names another namespace's istiod", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("elsewhere", f.role("elsewhere", chartRules...), saSubject("istio-system-other", "istiod"))
				return nil
			},
			errs: []string{"is not granted list customresourcedefinitions"}},
		{name: "the Deployment runs as an unbound account", sa: "istiod-renamed",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod-renamed")
				f.binding("istiod-clusterrole", f.role("istiod-clusterrole", chartRules...), saSubject(ns, "istiod"))
				return nil
			},
			errs: []string{"/istiod-renamed is not granted"}},
		{name: "the bound role is gone", sa: "istiod",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				istiodDeployment(t, ctx, f.kube, ns, "", "istiod")
				f.binding("dangling", f.name("missing-role"), saSubject(ns, "istiod"))
				return nil
			},
			errs: []string{"refers to ClusterRole " + "meshconform-", "which does not exist"}},
		{name: "no Deployment: the chart's account is assumed, and said", sa: "istiod-canary",
			setup: func(t *testing.T, f *rbacFixture, ns string) []RBACOption {
				return []RBACOption{ForRevision("canary")}
			},
			errs: []string{"/istiod-canary is not granted", "no istiod Deployment (app=istiod,istio.io/rev=canary) in", "assumed the chart's service account istiod-canary"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := env.Namespace(t, "istio", nil)
			f := newRBACFixture(t, env, ctx)
			opts := c.setup(t, f, ns)
			err := CheckIstiodRBAC(ctx, env.Kube, ns, opts...)
			pass := len(c.errs) == 0
			if pass && err != nil {
				t.Fatalf("want pass: %v", err)
			}
			if !pass {
				t.Logf("error: %v", err)
				if err == nil {
					t.Fatalf("want an error containing %q, got pass", c.errs)
				}
				for _, w := range c.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				if !strings.HasPrefix(err.Error(), "CP-002: ") || !strings.Contains(err.Error(), "istio-discovery chart") {
					t.Errorf("error does not name the behaviour and the fix:\n%v", err)
				}
			}
			// The authorizer agrees on the core permission.
			allowed, aerr := authorizerAllows(ctx, env.Kube, ns, c.sa, pass)
			if aerr != nil {
				t.Fatalf("SubjectAccessReview: %v", aerr)
			}
			if allowed != pass {
				t.Errorf("the API server's authorizer says list CRDs allowed=%t for %s/%s; CheckIstiodRBAC said pass=%t", allowed, ns, c.sa, pass)
			}
		})
	}
}

// TestTier1CheckIstiodRBACNeedsPermissions: an account that cannot list bindings gets an
// error naming the permission, not a false verdict.
func TestTier1CheckIstiodRBACNeedsPermissions(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	ns := env.Namespace(t, "istio", nil)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":nobody"}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = CheckIstiodRBAC(ctx, kube, ns, ServiceAccounts("istiod"))
	if err == nil || !apierrors.IsForbidden(unwrapAll(err)) && !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("want a forbidden error, got %v", err)
	}
	if !strings.Contains(err.Error(), "list on clusterrolebindings") {
		t.Errorf("error does not name the missing permission: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// injectorConfig is the chart's MutatingWebhookConfiguration (istio-discovery
// templates/mutatingwebhook.yaml): four webhooks calling istiod's /inject, each with bundle.
func injectorConfig(name, rev string, bundles ...[]byte) *admissionv1.MutatingWebhookConfiguration {
	revLabel := rev
	if revLabel == "" {
		revLabel = "default"
	}
	svc := "istiod"
	if rev != "" {
		svc += "-" + rev
	}
	fail, none, never := admissionv1.Fail, admissionv1.SideEffectClassNone, admissionv1.NeverReinvocationPolicy
	port := int32(443)
	path := "/inject"
	mwc := &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"app": "sidecar-injector", "istio.io/rev": revLabel, "app.kubernetes.io/name": "istiod"}}}
	for i, prefix := range []string{"rev.namespace.", "rev.object.", "namespace.", "object."} {
		mwc.Webhooks = append(mwc.Webhooks, admissionv1.MutatingWebhook{
			Name: prefix + "sidecar-injector.istio.io",
			ClientConfig: admissionv1.WebhookClientConfig{
				Service:  &admissionv1.ServiceReference{Name: svc, Namespace: "istio-system", Path: &path, Port: &port},
				CABundle: bundles[i%len(bundles)],
			},
			Rules: []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy: &fail, SideEffects: &none, ReinvocationPolicy: &never, AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: []string{revLabel}},
				{Key: "istio-injection", Operator: metav1.LabelSelectorOpDoesNotExist}}},
			// Never matches anything here: the tier-1 API server has no istiod to call.
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"meshconform.io/never": "true"}},
		})
	}
	return mwc
}

// TestTier1CheckInjectorCABundle stores the chart's webhook configuration with full, empty
// and broken bundles in a real API server, found by name and by label.
func TestTier1CheckInjectorCABundle(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	bundle := caBundlePEM(t)
	api := env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	apply := func(t *testing.T, mwc *admissionv1.MutatingWebhookConfiguration) {
		t.Helper()
		if _, err := api.Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
			t.Fatalf("storing %s: %v", mwc.Name, err)
		}
		t.Cleanup(func() { _ = api.Delete(context.Background(), mwc.Name, metav1.DeleteOptions{}) })
	}
	cases := []struct {
		name    string
		configs []*admissionv1.MutatingWebhookConfiguration
		ns, rev string
		errs    []string
	}{
		{name: "default revision, bundle patched in", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", bundle)}},
		{name: "a revision's configuration", rev: "canary",
			configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", nil), injectorConfig("istio-sidecar-injector-canary", "canary", bundle)}},
		{name: "installed outside istio-system: found by the chart's name", ns: "istio-custom", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector-istio-custom", "", bundle)}},
		{name: "a revision outside istio-system: found by the chart's name", ns: "istio-custom", rev: "canary",
			configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector-istio-custom", "", nil), injectorConfig("istio-sidecar-injector-canary-istio-custom", "canary", bundle)}},
		{name: "istiod in another namespace than the run recorded", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector-istio-custom", "", bundle)},
			errs: []string{"no MutatingWebhookConfiguration istio-sidecar-injector (the chart's name for istiod in istio-system, revision \"\"); labelled app=sidecar-injector,istio.io/rev=default: istio-sidecar-injector-istio-custom"}},
		{name: "fresh install, before istiod patched it", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", nil)},
			errs: []string{"istio-sidecar-injector webhooks[0] (rev.namespace.sidecar-injector.istio.io): clientConfig.caBundle is empty",
				"webhooks[3] (object.sidecar-injector.istio.io): clientConfig.caBundle is empty", "restart istiod"}},
		{name: "one webhook re-applied without its bundle", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", bundle, nil)},
			errs: []string{"webhooks[1] (rev.object.sidecar-injector.istio.io): clientConfig.caBundle is empty", "webhooks[3] (object.sidecar-injector.istio.io)"}},
		{name: "outside istio-system, empty", ns: "istio-custom", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector-istio-custom", "", nil)},
			errs: []string{"istio-sidecar-injector-istio-custom webhooks[0]"}},
		{name: "a bundle that is not certificates", configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", []byte("bm90IGEgY2VydGlmaWNhdGU="))},
			errs: []string{"clientConfig.caBundle (24 bytes) is not PEM certificates: no PEM block found"}},
		{name: "the revision's configuration is missing", rev: "canary",
			configs: []*admissionv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector", "", bundle)},
			errs:    []string{"no MutatingWebhookConfiguration istio-sidecar-injector-canary (the chart's name for istiod in istio-system, revision \"canary\"); labelled app=sidecar-injector,istio.io/rev=canary: none"}},
		{name: "nothing installed", errs: []string{"no MutatingWebhookConfiguration istio-sidecar-injector (the chart's name for istiod in istio-system, revision \"\"); labelled app=sidecar-injector,istio.io/rev=default: none: is istiod installed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, mwc := range c.configs {
				apply(t, mwc)
			}
			err := CheckInjectorCABundle(ctx, env.Kube, c.ns, c.rev)
			if len(c.errs) == 0 {
				if err != nil {
					t.Fatalf("want pass: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got pass", c.errs)
			}
			t.Logf("error: %v", err)
			for _, w := range c.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
