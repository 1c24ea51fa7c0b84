package behaviors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/suites/internal/e2e"
)

// Permission is one verb on one resource of an API group, at cluster scope.
type Permission struct {
	Group, Resource, Verb string
}

func (p Permission) String() string {
	g := p.Group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s %s.%s", p.Verb, p.Resource, g)
}

// IstiodRequired is what CP-002 asserts istiod's service account is granted through
// ClusterRoleBindings. The chart's ClusterRole (istio-discovery templates/clusterrole.yaml)
// grants far more; this is the minimal, version-stable core that seed 000's failure is
// about: listing CRDs (its example line is `cannot list resource "customresourcedefinitions"
// in API group "apiextensions.k8s.io" at the cluster scope`) and listing the security
// resources every behaviour here depends on. Every Istio release since 1.5 grants these
// (get/watch/list on apiextensions customresourcedefinitions; on security.istio.io "*").
var IstiodRequired = []Permission{
	{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Verb: "list"},
	{Group: "security.istio.io", Resource: "peerauthentications", Verb: "list"},
	{Group: "security.istio.io", Resource: "authorizationpolicies", Verb: "list"},
}

// RBACOption tunes CheckIstiodRBAC.
type RBACOption func(*rbacConfig)

type rbacConfig struct {
	revision        string
	serviceAccounts []string
	required        []Permission
}

// ForRevision checks the istiod of a revision: its Deployment is labelled istio.io/rev=rev
// and its service account is istiod-<rev> by the chart.
func ForRevision(rev string) RBACOption { return func(c *rbacConfig) { c.revision = rev } }

// ServiceAccounts names istiod's service accounts instead of reading them from its
// Deployments.
func ServiceAccounts(names ...string) RBACOption {
	return func(c *rbacConfig) { c.serviceAccounts = names }
}

// CheckIstiodRBAC is CP-002's second half: some ClusterRoleBinding binds istiod's service
// account (or a group it belongs to) to a ClusterRole whose rules grant every
// IstiodRequired permission. The service accounts are those istiod's Deployments (label
// app=istiod, and istio.io/rev with ForRevision) run as, so a Deployment moved to an
// unbound account fails (seed 000: "check that the istiod deployment uses that service
// account"); without a Deployment, the chart's name istiod[-<rev>] is assumed and said so.
// It reads RBAC objects, not the authorizer: it needs list on clusterrolebindings and
// deployments and get on clusterroles, not the right to create SubjectAccessReviews.
func CheckIstiodRBAC(ctx context.Context, kube kubernetes.Interface, istioNamespace string, opts ...RBACOption) error {
	cfg := rbacConfig{required: IstiodRequired}
	for _, o := range opts {
		o(&cfg)
	}
	var notes []string
	sas := cfg.serviceAccounts
	if len(sas) == 0 {
		var err error
		sas, err = istiodServiceAccounts(ctx, kube, istioNamespace, cfg.revision)
		if err != nil {
			return err
		}
		if len(sas) == 0 {
			name := istionames.Istiod
			if cfg.revision != "" {
				name += "-" + cfg.revision
			}
			sas = []string{name}
			notes = append(notes, fmt.Sprintf("no istiod Deployment (%s) in %s: assumed the chart's service account %s",
				IstiodSelector(cfg.revision), istioNamespace, name))
		}
	}
	crbs, err := kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("CP-002: listing ClusterRoleBindings: %w (the suite's ClusterRole needs list on clusterrolebindings)", err)
	}
	roles := map[string]*rbacv1.ClusterRole{}
	getRole := func(name string) (*rbacv1.ClusterRole, error) {
		if r, ok := roles[name]; ok {
			return r, nil
		}
		r, err := kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			r, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		roles[name] = r
		return r, nil
	}
	var errs []error
	for _, sa := range sas {
		if err := checkGrants(istioNamespace, sa, crbs.Items, getRole, cfg.required); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msg := errors.Join(errs...).Error()
	if len(notes) > 0 {
		msg += "\n(" + strings.Join(notes, "; ") + ")"
	}
	return errors.New(msg + "\n" + findingFix["CP-002"])
}

func istiodServiceAccounts(ctx context.Context, kube kubernetes.Interface, ns, rev string) ([]string, error) {
	sel := IstiodSelector(rev)
	deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("CP-002: listing istiod Deployments (%s) in %s: %w", sel, ns, err)
	}
	seen := map[string]bool{}
	for _, d := range deps.Items {
		sa := d.Spec.Template.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		seen[sa] = true
	}
	out := make([]string, 0, len(seen))
	for sa := range seen {
		out = append(out, sa)
	}
	sort.Strings(out)
	return out, nil
}

// checkGrants says which required permissions no ClusterRoleBinding gives ns/sa, and what
// bindings it did find.
func checkGrants(ns, sa string, crbs []rbacv1.ClusterRoleBinding, getRole func(string) (*rbacv1.ClusterRole, error), required []Permission) error {
	granted := make([]bool, len(required))
	var seen, problems []string
	for i := range crbs {
		crb := &crbs[i]
		if !bindsServiceAccount(crb.Subjects, ns, sa) {
			continue
		}
		if crb.RoleRef.Kind != "ClusterRole" {
			problems = append(problems, fmt.Sprintf("ClusterRoleBinding %s refers to a %s, not a ClusterRole", crb.Name, crb.RoleRef.Kind))
			continue
		}
		role, err := getRole(crb.RoleRef.Name)
		if err != nil {
			return fmt.Errorf("CP-002: reading ClusterRole %s (bound by %s): %w (the suite's ClusterRole needs get on clusterroles)",
				crb.RoleRef.Name, crb.Name, err)
		}
		if role == nil {
			problems = append(problems, fmt.Sprintf("ClusterRoleBinding %s refers to ClusterRole %s, which does not exist", crb.Name, crb.RoleRef.Name))
			continue
		}
		var gives []string
		for j, p := range required {
			if rulesGrant(role.Rules, p) {
				granted[j] = true
				gives = append(gives, p.String())
			}
		}
		if len(gives) > 0 {
			seen = append(seen, fmt.Sprintf("%s → %s (%s)", crb.Name, role.Name, strings.Join(gives, ", ")))
		} else if !isBroadGroupBinding(crb.Subjects, ns, sa) {
			seen = append(seen, fmt.Sprintf("%s → %s (none of the required)", crb.Name, role.Name))
		}
	}
	var missing []string
	for j, ok := range granted {
		if !ok {
			missing = append(missing, required[j].String())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CP-002: service account %s/%s is not granted %s by any ClusterRoleBinding", ns, sa, strings.Join(missing, ", "))
	if len(seen) == 0 {
		b.WriteString("; no ClusterRoleBinding binds it to a role granting any of the required permissions")
	} else {
		b.WriteString("; bindings for it: " + strings.Join(seen, "; "))
	}
	for _, p := range problems {
		b.WriteString("; " + p)
	}
	return errors.New(b.String())
}

// bindsServiceAccount: the service account itself, its user name, or a group it is in.
func bindsServiceAccount(subjects []rbacv1.Subject, ns, sa string) bool {
	user := "system:serviceaccount:" + ns + ":" + sa
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name == sa && s.Namespace == ns {
				return true
			}
		case rbacv1.UserKind:
			if s.Name == user {
				return true
			}
		case rbacv1.GroupKind:
			if s.Name == "system:serviceaccounts" || s.Name == "system:serviceaccounts:"+ns || s.Name == "system:authenticated" {
				return true
			}
		}
	}
	return false
}

// isBroadGroupBinding: bound only through a group every account is in (the API server's
// own bindings, e.g. system:discovery), which is noise in the evidence unless it grants.
func isBroadGroupBinding(subjects []rbacv1.Subject, ns, sa string) bool {
	for _, s := range subjects {
		if s.Kind != rbacv1.GroupKind && bindsServiceAccount([]rbacv1.Subject{s}, ns, sa) {
			return false
		}
	}
	return true
}

// rulesGrant: some rule covers the group, resource and verb for every object (a rule
// restricted to resourceNames cannot grant list).
func rulesGrant(rules []rbacv1.PolicyRule, p Permission) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue
		}
		if covers(r.APIGroups, p.Group) && covers(r.Resources, p.Resource) && covers(r.Verbs, p.Verb) {
			return true
		}
	}
	return false
}

func covers(list []string, v string) bool {
	return slices.Contains(list, v) || slices.Contains(list, rbacv1.ResourceAll)
}

var _ = e2e.Register(e2e.Behavior{
	ID: "CP-002", Name: "istiod can list what it watches (no RBAC gap)",
	Serial: true,
	Run: func(ctx context.Context, t *e2e.T) {
		f, err := scanRun(ctx, t)
		if err != nil {
			t.Unjudged(fmt.Errorf("reading istiod's logs: %w", err), nil)
		}
		var opts []RBACOption
		if rev := t.Run.State.Istio.Revision; rev != "" {
			opts = append(opts, ForRevision(rev))
		}
		// One verdict, one evidence entry: the logs, then the RBAC.
		t.Check(errors.Join(f.CannotList.Absent(), CheckIstiodRBAC(ctx, t.Run.Kube, t.Run.State.Istio.Namespace, opts...)),
			"no 'cannot list resource' errors; istiod's service account is bound to the permissions it needs", findingFields(f.CannotList, f.Lines))
	},
})
