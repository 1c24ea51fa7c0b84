package apitest

import (
	"context"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// startShared starts a shared environment for one test (not the package's: Reset would
// empty that under the other tests).
func startShared(t *testing.T) *Shared {
	t.Helper()
	dir := assetsOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := StartShared(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// What a package leaves behind on a shared API server is gone after Reset, and what it
// changed is as it was: new namespaces (one with a pod that only a kubelet could end
// gracefully), objects in the first namespaces and at cluster scope, a CRD of its own, the
// default namespace's labels, and Istio's CRDs, one relabelled and one deleted. A test
// binary attaches to it through the file, with a run id of its own, and leaves it running.
// What nobody can delete is named.
func TestSharedResetRestoresTheBaseline(t *testing.T) {
	s := startShared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Setenv(SharedEnv, s.File())
	env, err := attach(os.Getenv(SharedEnv))
	if err != nil {
		t.Fatal(err)
	}
	if env.RunID == s.Env.RunID || !env.attached || env.Versions["kube-apiserver"] == "" {
		t.Errorf("attached environment: run id %q (the server's %q), attached %v, versions %v", env.RunID, s.Env.RunID, env.attached, env.Versions)
	}
	before, err := s.Env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// What a package leaves, made through the attached environment.
	kube := env.Kube
	ns := "left-" + env.RunID
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bound", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "no-such-node", // bound: deleting it waits for a kubelet
			Containers: []corev1.Container{{Name: "c", Image: "example.invalid/c"}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "left-" + env.RunID, Namespace: metav1.NamespaceDefault}}
	if _, err := kube.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "left-" + env.RunID}}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	def, err := kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantDefault := maps.Clone(def.Labels)
	def.Labels["istio-injection"] = "enabled"
	if _, err := kube.CoreV1().Namespaces().Update(ctx, def, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	crds := s.ext.ApiextensionsV1().CustomResourceDefinitions()
	pa, err := crds.Get(ctx, "peerauthentications.security.istio.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantPA := maps.Clone(pa.Labels)
	pa.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
	if _, err := crds.Update(ctx, pa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := crds.Delete(ctx, "sidecars.networking.istio.io", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Stop(); err != nil { // the attached binary ends: the servers stay
		t.Fatal(err)
	}
	if _, err := s.Env.Kube.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the attached environment's Stop stopped the shared servers: %v", err)
	}

	began := time.Now()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reset in %s", time.Since(began).Round(time.Millisecond))

	after, err := s.Env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uids := func(l *corev1.NamespaceList) []types.UID {
		var out []types.UID
		for _, n := range l.Items {
			out = append(out, n.UID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(uids(before), uids(after)) {
		t.Errorf("namespaces after Reset: %v, want the baseline's %v", uids(after), uids(before))
	}
	gone := map[string]error{}
	_, gone["ConfigMap in default"] = s.Env.Kube.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, cm.Name, metav1.GetOptions{})
	_, gone["ClusterRole"] = s.Env.Kube.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{})
	_, gone["Gateway API CRD"] = crds.Get(ctx, "gateways.gateway.networking.k8s.io", metav1.GetOptions{})
	_, gone["Gateway API admission policy"] = s.Env.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "safe-upgrades.gateway.networking.k8s.io", metav1.GetOptions{})
	for what, err := range gone {
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s after Reset: %v, want NotFound", what, err)
		}
	}
	if def, err = s.Env.Kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil || !maps.Equal(def.Labels, wantDefault) {
		t.Errorf("default's labels after Reset: %v (%v), want %v", def.Labels, err, wantDefault)
	}
	if pa, err = crds.Get(ctx, "peerauthentications.security.istio.io", metav1.GetOptions{}); err != nil || !maps.Equal(pa.Labels, wantPA) {
		t.Errorf("PeerAuthentication CRD after Reset: labels %v (%v), want Istio's %v", pa.Labels, err, wantPA)
	}
	if _, err := s.Env.Istio.NetworkingV1().Sidecars(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("Sidecar CRD after Reset: %v, want it served again", err)
	}

	// A second Reset finds nothing to do.
	began = time.Now()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reset of a clean server in %s", time.Since(began).Round(time.Millisecond))

	// An object whose finalizer nobody removes cannot be reset away: Reset says which, by its
	// deadline, so the caller stops that server instead of handing it on.
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Namespace: metav1.NamespaceDefault, Finalizers: []string{"meshconform.test/held"}}}
	if _, err := s.Env.Kube.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	err = s.Reset(rctx)
	if err == nil || !strings.Contains(err.Error(), "configmaps default/held is still there") || !strings.Contains(err.Error(), "meshconform.test/held") {
		t.Errorf("Reset with an object held by a finalizer: %v; want it named with its finalizer", err)
	}
	if c, err := s.Env.Kube.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "held", metav1.GetOptions{}); err == nil {
		c.Finalizers = nil
		_, _ = s.Env.Kube.CoreV1().ConfigMaps(metav1.NamespaceDefault).Update(ctx, c, metav1.UpdateOptions{})
	}
}
