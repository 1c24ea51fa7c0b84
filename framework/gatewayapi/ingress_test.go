package gatewayapi_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/gatewayapi"
)

// TestSpecIngress (tier 0): an ingress behaviour's Gateway-API objects. INGRESS-001's shape
// (no TLS): Gateway of class istio, NodePort by annotation, no parametersRef (the API server
// allocates the nodePorts, so nothing collides with the gateway chart's fixed ones or another
// spec's), one http listener, the backend route on it for the host. INGRESS-002's: an https
// listener terminating with the Secret, the backend route there, and a 301 (not the Gateway
// API's default 302) redirect to https on http.
func TestSpecIngress(t *testing.T) {
	str := func(u *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	plain := gatewayapi.SpecIngress{Namespace: "ns", Name: "ingress", Host: "h.example", Service: "httpbin", Port: 8000}
	objs := plain.Objects()
	if len(objs) != 2 || objs[0].GetKind() != "Gateway" || objs[1].GetKind() != "HTTPRoute" {
		t.Fatalf("objects %v; want a Gateway and one HTTPRoute", objs)
	}
	gw := objs[0]
	if str(gw, "spec", "gatewayClassName") != "istio" || gw.GetAnnotations()[gatewayapi.ServiceTypeAnnotation] != "NodePort" || gw.GetNamespace() != "ns" {
		t.Errorf("Gateway %v: want class istio, %s=NodePort, namespace ns", gw.Object, gatewayapi.ServiceTypeAnnotation)
	}
	if _, found, _ := unstructured.NestedMap(gw.Object, "spec", "infrastructure"); found {
		t.Errorf("Gateway without pinned nodePorts has spec.infrastructure (a parametersRef to a ConfigMap nobody made): %v", gw.Object["spec"])
	}
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	if len(ls) != 1 || ls[0].(map[string]any)["name"] != "http" || ls[0].(map[string]any)["port"] != int64(80) {
		t.Errorf("listeners %v; want http on 80 only", ls)
	}
	r := objs[1]
	ps, _, _ := unstructured.NestedSlice(r.Object, "spec", "parentRefs")
	hosts, _, _ := unstructured.NestedStringSlice(r.Object, "spec", "hostnames")
	backends, _, _ := unstructured.NestedSlice(r.Object, "spec", "rules")
	if r.GetName() != gatewayapi.SpecBackendRoute || len(ps) != 1 || ps[0].(map[string]any)["sectionName"] != "http" || ps[0].(map[string]any)["name"] != "ingress" ||
		len(hosts) != 1 || hosts[0] != "h.example" || len(backends) != 1 {
		t.Errorf("route %v; want %s on ingress/http for h.example", r.Object, gatewayapi.SpecBackendRoute)
	}
	if got := plain.Routes(); len(got) != 1 || got[0] != gatewayapi.SpecBackendRoute {
		t.Errorf("Routes() = %v", got)
	}
	if gatewayapi.IngressDeploymentName("ingress") != "ingress-istio" {
		t.Errorf("istiod names the Deployment and Service <gateway>-<class>: %s", gatewayapi.IngressDeploymentName("ingress"))
	}

	tls := plain
	tls.TLSSecret = "cert"
	objs = tls.Objects()
	if len(objs) != 3 {
		t.Fatalf("TLS: %d objects, want Gateway, redirect and backend routes", len(objs))
	}
	ls, _, _ = unstructured.NestedSlice(objs[0].Object, "spec", "listeners")
	if len(ls) != 2 {
		t.Fatalf("TLS listeners %v", ls)
	}
	https := ls[1].(map[string]any)
	refs, _, _ := unstructured.NestedSlice(https, "tls", "certificateRefs")
	if https["name"] != "https" || https["port"] != int64(443) || https["protocol"] != "HTTPS" || len(refs) != 1 || refs[0].(map[string]any)["name"] != "cert" ||
		refs[0].(map[string]any)["kind"] != "Secret" {
		t.Errorf("https listener %v; want 443 HTTPS terminating with Secret cert", https)
	}
	red := objs[1]
	rules, _, _ := unstructured.NestedSlice(red.Object, "spec", "rules")
	filters, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "filters")
	rr := filters[0].(map[string]any)["requestRedirect"].(map[string]any)
	rp, _, _ := unstructured.NestedSlice(red.Object, "spec", "parentRefs")
	if red.GetName() != gatewayapi.SpecRedirectRoute || rr["statusCode"] != int64(301) || rr["scheme"] != "https" || rp[0].(map[string]any)["sectionName"] != "http" {
		t.Errorf("redirect route %v; want 301 to https on the http listener", red.Object)
	}
	bp, _, _ := unstructured.NestedSlice(objs[2].Object, "spec", "parentRefs")
	if bp[0].(map[string]any)["sectionName"] != "https" {
		t.Errorf("backend route on %v; want the https listener", bp)
	}
	if got := tls.Routes(); len(got) != 2 {
		t.Errorf("TLS Routes() = %v", got)
	}
}
