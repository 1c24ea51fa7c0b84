// Package ingresstest is tier 1 of framework/gatewayapi's ingress: its own package because it
// installs the Gateway API into its API server, which gatewayapi's own tier 1 must start
// without.
package ingresstest

// Tier 1: the objects INGRESS-001 and INGRESS-002 apply under INGRESS_API=gateway-api
// (gatewayapi.SpecIngress) are accepted by a real kube-apiserver with the Gateway API v1.6.0
// standard CRDs (their OpenAPI schema and CEL rules), and the readiness wait reports the
// conditions it saw when they are not met (no istiod here: the CRDs' defaults, then statuses
// written by the test as istiod would).

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/istionames"
	"meshconform/framework/wait"
	"meshconform/framework/waypoint"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func resource(kind string) schema.GroupVersionResource {
	if kind == "Gateway" {
		return waypoint.GatewayResource
	}
	return gatewayapi.HTTPRouteResource
}

func cond(t, status, reason string) map[string]any {
	return map[string]any{"type": t, "status": status, "reason": reason, "message": "set by the test",
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": int64(1)}
}

func TestSpecIngressAcceptedAndAwaited(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 3*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "gwingress", nil)
	if _, err := env.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: ns},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: []byte("x"), corev1.TLSPrivateKeyKey: []byte("y")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	specs := map[string]gatewayapi.SpecIngress{
		// INGRESS-001's and INGRESS-002's, as suites/behaviors builds them.
		"plain": {Namespace: ns, Name: "plain", Host: "httpbin.meshconform.example", Service: "httpbin", Port: 8000},
		"tls":   {Namespace: ns, Name: "tls", Host: "secure.meshconform.example", Service: "httpbin", Port: 8000, TLSSecret: "cert"},
	}
	routeNames := map[string]string{}
	for key, s := range specs {
		for _, o := range s.Objects() {
			if o.GetKind() == "HTTPRoute" {
				o.SetName(key + "-" + o.GetName()) // the two specs share the namespace here
				routeNames[key] += o.GetName() + ","
			}
			if _, err := env.Dynamic.Resource(resource(o.GetKind())).Namespace(ns).Create(ctx, o, metav1.CreateOptions{}); err != nil {
				t.Fatalf("the Gateway API %s CRDs refuse %s %s of spec %s: %v", gatewayapi.Version, o.GetKind(), o.GetName(), key, err)
			}
		}
	}
	routes := func(key string) []string { return strings.Split(strings.TrimSuffix(routeNames[key], ","), ",") }

	// No controller: the wait ends at its timeout, naming what it saw.
	cfg := wait.Config{Timeout: 2 * time.Second, Poll: 200 * time.Millisecond}
	err := gatewayapi.AwaitIngress(ctx, cfg, env.Dynamic, ns, "tls", routes("tls"))
	if err == nil {
		t.Fatal("AwaitIngress succeeded with no controller")
	}
	for _, want := range []string{"not programmed within 2s", "Gateway " + ns + "/tls: Accepted=Unknown (Pending", "Programmed=Unknown (Pending", "listener https: no ResolvedRefs condition",
		"HTTPRoute " + ns + "/tls-redirect: no parent status", "HTTPRoute " + ns + "/tls-backend: no parent status"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("AwaitIngress without a controller: %v\nwant it to say %q", err, want)
		}
	}

	// What istiod writes when it has programmed them: the wait ends.
	setStatus := func(kind, name string, status map[string]any) {
		t.Helper()
		u, err := env.Dynamic.Resource(resource(kind)).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u.Object["status"] = status
		if _, err := env.Dynamic.Resource(resource(kind)).Namespace(ns).UpdateStatus(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("status of %s %s: %v", kind, name, err)
		}
	}
	listener := func(name string, rr map[string]any) map[string]any {
		return map[string]any{"name": name, "attachedRoutes": int64(1), "supportedKinds": []any{map[string]any{"group": gatewayapi.Group, "kind": "HTTPRoute"}},
			"conditions": []any{cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed"), rr}}
	}
	setStatus("Gateway", "tls", map[string]any{
		"conditions": []any{cond("Accepted", "True", "Accepted"), cond("Programmed", "True", "Programmed")},
		"listeners":  []any{listener("http", cond("ResolvedRefs", "True", "ResolvedRefs")), listener("https", cond("ResolvedRefs", "True", "ResolvedRefs"))},
	})
	parent := func(section string, rr map[string]any) map[string]any {
		return map[string]any{"status": map[string]any{"parents": []any{map[string]any{
			"parentRef":      map[string]any{"group": gatewayapi.Group, "kind": "Gateway", "name": "tls", "namespace": ns, "sectionName": section},
			"controllerName": istionames.GatewayController,
			"conditions":     []any{cond("Accepted", "True", "Accepted"), rr},
		}}}}
	}
	setStatus("HTTPRoute", "tls-redirect", parent("http", cond("ResolvedRefs", "True", "ResolvedRefs"))["status"].(map[string]any))
	setStatus("HTTPRoute", "tls-backend", parent("https", cond("ResolvedRefs", "True", "ResolvedRefs"))["status"].(map[string]any))
	cfg.Timeout = 30 * time.Second
	if err := gatewayapi.AwaitIngress(ctx, cfg, env.Dynamic, ns, "tls", routes("tls")); err != nil {
		t.Fatalf("AwaitIngress once programmed: %v", err)
	}

	// A backend istiod cannot resolve: the wait fails, naming the condition.
	setStatus("HTTPRoute", "tls-backend", parent("https", cond("ResolvedRefs", "False", "BackendNotFound"))["status"].(map[string]any))
	cfg.Timeout = 2 * time.Second
	err = gatewayapi.AwaitIngress(ctx, cfg, env.Dynamic, ns, "tls", routes("tls"))
	if err == nil || !strings.Contains(err.Error(), "HTTPRoute "+ns+"/tls-backend: parent tls: Accepted=True (Accepted: set by the test), ResolvedRefs=False (BackendNotFound") {
		t.Errorf("AwaitIngress with an unresolved backend: %v", err)
	}
}
