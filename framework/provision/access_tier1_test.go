package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/access"
	"meshconform/framework/expect"
	"meshconform/internal/apitest"
	"meshconform/manifests/rbac"
)

// On an existing cluster, Up checks the suite's permissions right after attaching: a user
// with none is stopped with every missing permission named and nothing created; a user bound
// to the shipped ClusterRole passes the check (and is then told there is no istiod, exactly as
// the admin is).
func TestTier1UpChecksTheSuitePermissions(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	kube := env.Kube
	ns := env.Namespace(t, "suite-rbac", nil)
	for _, sa := range []string{"bare", "bound"} {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cr, err := access.ParseClusterRole("suite-clusterrole.yaml", rbac.SuiteClusterRole)
	if err != nil {
		t.Fatal(err)
	}
	cr.Name = "meshconform-suite-" + env.RunID
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "bound"}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{})
		_ = kube.RbacV1().ClusterRoles().Delete(ctx, cr.Name, metav1.DeleteOptions{})
	})
	perms, err := SuitePermissions()
	if err != nil {
		t.Fatal(err)
	}

	// The binding reaches the authorizer through an informer: wait until it grants it all.
	bound := env.KubeconfigAs(t, "system:serviceaccount:"+ns+":bound", "suite-bound")
	err = expect.ConvergeFunc(ctx, expect.Config{Consecutive: 1, Timeout: 30 * time.Second, Poll: 200 * time.Millisecond}, func(ctx context.Context) error {
		_, err := Up(ctx, load(t, map[string]string{"KUBECONFIG": bound, "KUBE_CONTEXT": "suite-bound"}), &strings.Builder{})
		if err != nil && !strings.Contains(err.Error(), "no istiod found") {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a ServiceAccount bound to manifests/rbac/suite-clusterrole.yaml: %v", err)
	}

	bare := env.KubeconfigAs(t, "system:serviceaccount:"+ns+":bare", "suite-bare")
	before, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Up(ctx, load(t, map[string]string{"KUBECONFIG": bare, "KUBE_CONTEXT": "suite-bare"}), &strings.Builder{})
	if err == nil {
		t.Fatal("Up succeeded for a ServiceAccount with no permission")
	}
	msg := err.Error()
	for _, want := range []string{"context suite-bare", "lacks", "manifests/rbac/suite-clusterrole.yaml",
		"missing: create namespaces (cluster-wide)", "missing: create peerauthentications.security.istio.io (cluster-wide)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// Every permission is named: a bare ServiceAccount holds only what every authenticated
	// user holds, and none of the suite's.
	if n := strings.Count(msg, "missing: "); n != len(perms) {
		t.Errorf("%d permissions named, want all %d:\n%s", n, len(perms), msg)
	}
	after, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) != len(before.Items) {
		t.Errorf("namespaces went from %d to %d: a refused run must create nothing", len(before.Items), len(after.Items))
	}
}
