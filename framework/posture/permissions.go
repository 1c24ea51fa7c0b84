package posture

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/access"
	"meshconform/manifests/rbac"
)

// Permission is one (verb, group, resource) the audit needs, cluster-wide.
type Permission = access.Permission

// ClusterRole returns the ClusterRole of manifests/rbac/posture-clusterrole.yaml.
func ClusterRole() (*rbacv1.ClusterRole, error) {
	return access.ParseClusterRole("manifests/rbac/posture-clusterrole.yaml", rbac.PostureClusterRole)
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
	return access.Permissions(cr)
}

// MissingPermissions asks the API server which of RequiredPermissions the caller lacks.
func MissingPermissions(ctx context.Context, kube kubernetes.Interface) ([]Permission, error) {
	return access.Missing(ctx, kube, RequiredPermissions())
}
