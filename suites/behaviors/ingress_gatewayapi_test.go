package behaviors

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/gatewayapi"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// TestIngressGatewayAPIObjects (tier 0): under INGRESS_API=gateway-api, INGRESS-001 applies
// (beside its STRICT policy) the spec's own Gateway of class istio in the server namespace,
// named as the run's GatewayRef says (so the probes reach istiod's Service for it), and an
// HTTPRoute for its host; INGRESS-002 a Gateway whose https listener terminates with the
// Secret it writes, in the same namespace, and HTTPRoutes. Neither applies Istio's Gateway
// or VirtualService. Under the default (istio) they are unchanged.
func TestIngressGatewayAPIObjects(t *testing.T) {
	e := testEnv()
	e.Gateway = cases.GatewayRef{API: cases.IngressGatewayAPI, Name: cases.SpecGateway, Namespace: e.Namespaces[cases.Server],
		Service: gatewayapi.IngressDeploymentName(cases.SpecGateway), Port: 80, HTTPSPort: 443}
	istio := testEnv()
	for _, b := range e2e.Registered() {
		if b.ID != "INGRESS-001" && b.ID != "INGRESS-002" {
			continue
		}
		var gw *unstructured.Unstructured
		kinds := map[string]int{}
		for _, o := range b.AllObjects(e) {
			k := o.GetObjectKind().GroupVersionKind()
			kinds[k.Group+"/"+k.Kind]++
			if k.Group == gatewayapi.Group && k.Kind == "Gateway" {
				gw = o.(*unstructured.Unstructured)
			}
		}
		if gw == nil || kinds[gatewayapi.Group+"/HTTPRoute"] == 0 || kinds["networking.istio.io/VirtualService"]+kinds["networking.istio.io/Gateway"] != 0 {
			t.Errorf("%s under gateway-api applies %v; want a Gateway API Gateway and HTTPRoutes, nothing of Istio's ingress API", b.ID, kinds)
			continue
		}
		if gw.GetName() != e.Gateway.Name || gw.GetNamespace() != e.NS(cases.Server) {
			t.Errorf("%s: Gateway %s/%s; want %s/%s", b.ID, gw.GetNamespace(), gw.GetName(), e.NS(cases.Server), e.Gateway.Name)
		}
		for _, o := range b.AllObjects(istio) {
			if o.GetObjectKind().GroupVersionKind().Group == gatewayapi.Group {
				t.Errorf("%s under INGRESS_API=istio applies %s", b.ID, o.GetObjectKind().GroupVersionKind())
			}
		}
		if b.ID != "INGRESS-002" {
			continue
		}
		ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
		var ref string
		for _, l := range ls {
			if refs, _, _ := unstructured.NestedSlice(l.(map[string]any), "tls", "certificateRefs"); len(refs) == 1 {
				ref, _ = refs[0].(map[string]any)["name"].(string)
			}
		}
		ws := b.Writes(e)
		if len(ws) != 1 || ws[0].Object.GetName() != ref || ws[0].Object.GetNamespace() != gw.GetNamespace() {
			t.Errorf("INGRESS-002: certificateRefs %q; its Secret %s/%s; want the Secret it writes, in the Gateway's namespace", ref, ws[0].Object.GetNamespace(), ws[0].Object.GetName())
		}
	}
}
