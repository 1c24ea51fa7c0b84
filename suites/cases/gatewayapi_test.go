package cases

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/settings"
)

// TestFindGatewayAPI (tier 0): INGRESS_API=gateway-api needs the API server to serve the
// Gateway API's gateways and httproutes, and GatewayClass istio; each missing piece is named
// with the fix, and the gateway chart is never looked for.
func TestFindGatewayAPI(t *testing.T) {
	ctx := context.Background()
	class := &unstructured.Unstructured{Object: map[string]any{"apiVersion": gatewayapi.Group + "/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": "istio"}}}
	served := []*metav1.APIResourceList{{GroupVersion: gatewayapi.Group + "/v1", APIResources: []metav1.APIResource{{Name: "gateways"}, {Name: "httproutes"}, {Name: "gatewayclasses"}}}}
	for _, tc := range []struct {
		name      string
		resources []*metav1.APIResourceList
		objs      []runtime.Object
		want      string
	}{
		{"no CRDs", nil, nil, "INGRESS_API=gateway-api needs the Gateway API CRDs (gateway.networking.k8s.io/v1 gateways and httproutes), which this cluster does not serve: they are installed with DATAPLANE_MODE=ambient"},
		{"no GatewayClass", served, nil, "INGRESS_API=gateway-api: GatewayClass istio: "},
		{"ready", served, []runtime.Object{class}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewClientset()
			kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = tc.resources
			dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), tc.objs...)
			ref, err := FindGatewayAPI(ctx, kube, dyn)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("FindGatewayAPI: %v; want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := GatewayRef{API: settings.IngressGatewayAPI, Name: SpecGateway, Service: "ingress-istio", Port: 80, HTTPSPort: 443}
			if ref.API != want.API || ref.Name != want.Name || ref.Service != want.Service || ref.Port != want.Port || ref.HTTPSPort != want.HTTPSPort || ref.Namespace != "" || !ref.GatewayAPI() {
				t.Errorf("FindGatewayAPI = %+v; want %+v (the namespace is each spec's)", ref, want)
			}
		})
	}
	if (GatewayRef{}).GatewayAPI() || (GatewayRef{API: settings.IngressIstio}).GatewayAPI() {
		t.Error("a GatewayRef of the gateway chart says Gateway API")
	}
	// The unmet requirement then names it.
	_, err := FindGatewayAPI(ctx, fake.NewClientset(), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()))
	if got := (Requires{IngressGateway: true}).Unmet(RunFacts{Mode: "sidecar", NoGateway: err.Error()}); !strings.Contains(got, "needs an ingress gateway: INGRESS_API=gateway-api needs the Gateway API CRDs") {
		t.Errorf("Unmet = %q", got)
	}
}
