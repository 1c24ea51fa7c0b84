package provision

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
	// One review per permission: client-go's default 5 QPS would make ~50 reviews take 10s.
	cfg := rest.CopyConfig(a.Config)
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
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
