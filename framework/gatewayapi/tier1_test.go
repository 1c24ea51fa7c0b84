package gatewayapi_test

// Tier 1: the Gateway API's standard channel installed into a real API server that has none,
// left alone where one is, and removed by run id. This package's environment never gets
// apitest's own Gateway API install, so every test starts from a cluster without it.

import (
	"context"
	"strings"
	"testing"
	"time"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/ownership"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func clients(t *testing.T) (gatewayapi.Clients, *apitest.Environment) {
	env := apitest.Env(t)
	ext, err := apiextensions.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return gatewayapi.Clients{Kube: env.Kube, Ext: ext}, env
}

// poll is the test's own bounded loop for an API server's asynchronous work (CRDs established
// and deleted); the product waits through framework/wait (mesh.WaitFor).
func poll(t *testing.T, ctx context.Context, what string, f func(context.Context) string) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		if last = f(ctx); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s", what, last)
		case <-tick.C:
		}
	}
}

// TestInstallLeaveUninstall: on an API server without the Gateway API, Install creates every
// standard-channel CRD at Version (labelled as the run's) and the safe-upgrades admission
// policy; the CRDs become established. A second Install finds it and creates nothing. Uninstall
// with another run id deletes nothing; with the run's id it deletes them all. A Gateway API the
// cluster had (no ownership label) survives Uninstall.
func TestInstallLeaveUninstall(t *testing.T) {
	c, env := clients(t)
	ctx := apitest.Context(t, 3*time.Minute)
	dir, err := gatewayapi.Dir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if found, _, err := gatewayapi.Present(ctx, c); err != nil || found {
		t.Fatalf("the environment has the Gateway API before the test (%v, %v)", found, err)
	}
	run := env.RunID
	got, err := gatewayapi.Install(ctx, c, dir, ownership.Labels(run))
	if err != nil {
		t.Fatal(err)
	}
	if got.Found != "" || len(got.CRDs) != 10 {
		t.Fatalf("gatewayapi.Install on an empty cluster: %+v; want 10 CRDs created", got)
	}
	poll(t, ctx, "CRDs established", func(ctx context.Context) string { return gatewayapi.NotEstablished(ctx, c, got.CRDs) })
	crd, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, gatewayapi.ProbeCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if crd.Annotations[gatewayapi.BundleVersionAnnotation] != gatewayapi.Version || crd.Annotations[gatewayapi.Group+"/channel"] != gatewayapi.Channel || !ownership.Owned(crd.Labels, run) {
		t.Errorf("CRD %s: annotations %v, labels %v; want %s %s, run %s's", gatewayapi.ProbeCRD, crd.Annotations, crd.Labels, gatewayapi.Version, gatewayapi.Channel, run)
	}
	if _, err := c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "safe-upgrades."+gatewayapi.Group, metav1.GetOptions{}); err != nil {
		t.Errorf("the safe-upgrades ValidatingAdmissionPolicy: %v", err)
	}

	again, err := gatewayapi.Install(ctx, c, dir, ownership.Labels("otherrun"))
	if err != nil || again.Found != gatewayapi.Version || len(again.CRDs) != 0 {
		t.Errorf("gatewayapi.Install where the Gateway API is: %+v, %v; want it found at %s and nothing created", again, err, gatewayapi.Version)
	}

	if deleted, err := gatewayapi.Uninstall(ctx, c, "otherrun"); err != nil || len(deleted) != 0 {
		t.Errorf("gatewayapi.Uninstall of another run deleted %v (%v); want nothing", deleted, err)
	}
	deleted, err := gatewayapi.Uninstall(ctx, c, run)
	if err != nil || len(deleted) != 10 {
		t.Fatalf("gatewayapi.Uninstall of the run deleted %v (%v); want the 10 CRDs", deleted, err)
	}
	poll(t, ctx, "CRDs deleted", func(ctx context.Context) string { return gatewayapi.Gone(ctx, c, deleted) })
	if _, err := c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "safe-upgrades."+gatewayapi.Group, metav1.GetOptions{}); err == nil {
		t.Error("the safe-upgrades ValidatingAdmissionPolicy survived gatewayapi.Uninstall")
	}

	// A Gateway API the cluster had: the same CRDs, but not the run's (its labels stripped, as
	// a platform team's install would have none of meshconform's).
	if _, err := gatewayapi.Install(ctx, c, dir, map[string]string{"installed-by": "platform"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Leave the environment without it for the other tests.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, _ := c.Ext.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{LabelSelector: "installed-by=platform"})
		for _, crd := range list.Items {
			_ = c.Ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{})
		}
		_ = c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, "safe-upgrades."+gatewayapi.Group, metav1.DeleteOptions{})
		_ = c.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, "safe-upgrades."+gatewayapi.Group, metav1.DeleteOptions{})
	})
	if deleted, err := gatewayapi.Uninstall(ctx, c, run); err != nil || len(deleted) != 0 {
		t.Errorf("gatewayapi.Uninstall deleted the cluster's own Gateway API: %v (%v)", deleted, err)
	}
	if found, v, err := gatewayapi.Present(ctx, c); err != nil || !found || v != gatewayapi.Version {
		t.Errorf("the cluster's Gateway API after gatewayapi.Uninstall: %v %q %v", found, v, err)
	}
	// A CRD of another group labelled as the run's is not the Gateway API's: left alone.
	istio := "peerauthentications.security.istio.io"
	patch := `{"metadata":{"labels":{"` + ownership.ManagedByKey + `":"` + ownership.ManagedByValue + `","` + ownership.RunIDKey + `":"` + run + `"}}}`
	if _, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, istio, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if deleted, err := gatewayapi.Uninstall(ctx, c, run); err != nil || len(deleted) != 0 || strings.Contains(strings.Join(deleted, ","), "istio") {
		t.Errorf("gatewayapi.Uninstall deleted %v (%v); want nothing (an Istio CRD is not the Gateway API's)", deleted, err)
	}
}

// TestDirEnv: a directory given by DirEnv replaces the module; one that does not exist is named.
func TestDirEnv(t *testing.T) {
	d := t.TempDir()
	t.Setenv(gatewayapi.DirEnv, d)
	if got, err := gatewayapi.Dir(context.Background()); err != nil || got != d {
		t.Errorf("gatewayapi.Dir with %s=%s: %q, %v", gatewayapi.DirEnv, d, got, err)
	}
	if _, err := gatewayapi.Objects(d); err == nil || !strings.Contains(err.Error(), "holds no CRD") {
		t.Errorf("gatewayapi.Objects of an empty directory: %v; want 'holds no CRD'", err)
	}
	t.Setenv(gatewayapi.DirEnv, d+"/missing")
	if _, err := gatewayapi.Dir(context.Background()); err == nil || !strings.Contains(err.Error(), gatewayapi.DirEnv) {
		t.Errorf("gatewayapi.Dir with a missing directory: %v; want an error naming %s", err, gatewayapi.DirEnv)
	}
}
