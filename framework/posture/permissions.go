package posture

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"meshconform/manifests/rbac"
)

// Permission is one (verb, group, resource) the audit needs, cluster-wide.
type Permission struct {
	Verb     string `json:"verb"`
	Group    string `json:"group"`
	Resource string `json:"resource"`
}

// String is the form kubectl users know: "list peerauthentications.security.istio.io (cluster-wide)".
func (p Permission) String() string {
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	return p.Verb + " " + r + " (cluster-wide)"
}

// ClusterRole returns the ClusterRole of manifests/rbac/posture-clusterrole.yaml.
func ClusterRole() (*rbacv1.ClusterRole, error) {
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(rbac.PostureClusterRole, &cr); err != nil {
		return nil, fmt.Errorf("manifests/rbac/posture-clusterrole.yaml: %w", err)
	}
	return &cr, nil
}

// RequiredPermissions are the permissions the audit needs: the rules of the embedded
// ClusterRole, expanded to one (verb, group, resource) each, sorted. The YAML is the single
// source of truth; a tier-1 test proves the audit's actual requests are exactly these.
func RequiredPermissions() []Permission {
	cr, err := ClusterRole()
	if err != nil {
		// The file is compiled in and tested; a parse failure is a build defect.
		panic(err)
	}
	var out []Permission
	for _, r := range cr.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, Permission{Verb: v, Group: g, Resource: res})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Permission) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// MissingPermissions asks the API server, with one SelfSubjectAccessReview per permission,
// which of RequiredPermissions the caller lacks. Creating SelfSubjectAccessReviews is granted
// to every authenticated user (system:basic-user), so it needs no extra rule. An error means
// the question itself could not be asked (unreachable server, review API refused).
func MissingPermissions(ctx context.Context, kube kubernetes.Interface) ([]Permission, error) {
	var missing []Permission
	for _, p := range RequiredPermissions() {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: p.Verb, Group: p.Group, Resource: p.Resource},
		}}
		got, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("asking the API server whether we may %s: %w", p, err)
		}
		if !got.Status.Allowed {
			missing = append(missing, p)
		}
	}
	return missing, nil
}
