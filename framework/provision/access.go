package provision

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"

	"meshconform/framework/access"
	"meshconform/framework/cluster"
	"meshconform/manifests/rbac"
)

// SuitePermissions are what the suite needs on an existing cluster: the rules of
// manifests/rbac/suite-clusterrole.yaml.
func SuitePermissions() ([]access.Permission, error) {
	cr, err := access.ParseClusterRole("manifests/rbac/suite-clusterrole.yaml", rbac.SuiteClusterRole)
	if err != nil {
		return nil, err
	}
	return access.Permissions(cr), nil
}

// CheckSuitePermissions fails when the attached context lacks any permission the suite needs,
// naming each one, before anything is created.
func CheckSuitePermissions(ctx context.Context, a *cluster.Attached) error {
	perms, err := SuitePermissions()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(a.Config)
	if err != nil {
		return err
	}
	missing, err := access.Missing(ctx, kube, perms)
	if err != nil {
		return fmt.Errorf("context %s: %w", a.Context, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("context %s at %s lacks %d permission(s) the suite needs; bind the ClusterRole in manifests/rbac/suite-clusterrole.yaml to your user (see the README):%s",
			a.Context, a.Server, len(missing), access.Join(missing))
	}
	return nil
}
