package cases

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"meshconform/framework/mesh"
	"meshconform/internal/apitest"
	"meshconform/internal/istiosrc"
)

// renderGatewayService renders Istio's own gateway chart the way mesh installs it (release
// name and values from mesh.Options) and returns its Service; istiosrc stamps the branch's
// version over the in-repo placeholder.
func renderGatewayService(t *testing.T, revision string) *corev1.Service {
	t.Helper()
	b := istiosrc.Release131
	dir, err := istiosrc.ChartDir(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := mesh.New(mesh.Options{Version: b.Version, Revision: revision, ChartDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := inst.Render(context.Background(), mesh.ChartGateway)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(manifest, "\n---") {
		var probe struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &probe); err != nil || probe.Kind != "Service" {
			continue
		}
		var svc corev1.Service
		if err := yaml.UnmarshalStrict([]byte(doc), &svc); err != nil {
			t.Fatalf("the gateway chart's Service: %v\n%s", err, doc)
		}
		return &svc
	}
	t.Fatalf("the gateway chart rendered no Service:\n%s", manifest)
	return nil
}

// TestTier1FindGatewayByRelease: a default and a canary gateway, their Services exactly as
// Istio's gateway chart renders them for mesh's releases, side by side in the API server.
// A canary run must find the canary's gateway, a default run the default's.
func TestTier1FindGatewayByRelease(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t, "gw", nil)

	created := map[string]*corev1.Service{}
	for _, rev := range []string{"", "canary"} {
		svc := renderGatewayService(t, rev)
		svc.Namespace = ns
		got, err := env.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating the rendered Service of revision %q: %v", rev, err)
		}
		created[rev] = got
	}
	// The facts the lookup stands on, from the rendering itself.
	canary := created["canary"]
	if canary.Labels["istio"] != "ingressgateway-canary" {
		t.Errorf("the canary gateway's Service is labelled istio=%q; FindGateway's comment says ingressgateway-canary", canary.Labels["istio"])
	}
	if v, ok := canary.Labels["istio.io/rev"]; ok {
		t.Errorf("the canary gateway's Service carries istio.io/rev=%q; FindGateway's comment says it does not", v)
	}

	for rev, want := range map[string]string{"": "istio-ingressgateway", "canary": "istio-ingressgateway-canary"} {
		ref, err := FindGateway(ctx, env.Kube, rev)
		if err != nil {
			t.Errorf("revision %q: %v", rev, err)
			continue
		}
		if ref.Namespace != ns || ref.Service != want || ref.Port != 80 {
			t.Errorf("revision %q: found %s/%s:%d, want %s/%s:80", rev, ref.Namespace, ref.Service, ref.Port, ns, want)
		}
		if !maps.Equal(ref.Selector, created[rev].Spec.Selector) {
			t.Errorf("revision %q: selector %v, want the Service's %v", rev, ref.Selector, created[rev].Spec.Selector)
		}
	}

	_, err := FindGateway(ctx, env.Kube, "other")
	if err == nil || !strings.Contains(err.Error(), "istio-ingressgateway-other") {
		t.Errorf("a revision without a gateway: err %v, want one naming release istio-ingressgateway-other", err)
	}
}
