// Package access turns a shipped ClusterRole into the list of permissions a command needs and
// asks the API server (SelfSubjectAccessReview) which of them the caller lacks, so that a run
// on someone's cluster fails before it starts, naming every missing permission, instead of
// halfway through.
package access

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
)

// Permission is one (verb, group, resource), cluster-wide.
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

// ParseClusterRole decodes a ClusterRole manifest strictly; name is the file, for errors.
func ParseClusterRole(name string, data []byte) (*rbacv1.ClusterRole, error) {
	var cr rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &cr); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cr.Kind != "ClusterRole" {
		return nil, fmt.Errorf("%s: kind %q, want ClusterRole", name, cr.Kind)
	}
	return &cr, nil
}

// Permissions expands a ClusterRole's rules to one (verb, group, resource) each, sorted and
// without repeats.
func Permissions(cr *rbacv1.ClusterRole) []Permission {
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

// Missing asks the API server, with one SelfSubjectAccessReview per permission, which of
// perms the caller lacks. Creating SelfSubjectAccessReviews is granted to every authenticated
// user (system:basic-user). An error means the question could not be asked.
func Missing(ctx context.Context, kube kubernetes.Interface, perms []Permission) ([]Permission, error) {
	var missing []Permission
	for _, p := range perms {
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

// Join lists permissions for a message, one per line, indented.
func Join(ps []Permission) string {
	var sb strings.Builder
	for _, p := range ps {
		sb.WriteString("\n  missing: " + p.String())
	}
	return sb.String()
}
