package behaviors

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/catalog"
	"meshconform/framework/gatewayapi"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

const ingressHost = "httpbin.meshconform.example"

var _ = e2e.Register(e2e.Behavior{
	ID: "INGRESS-001", Name: "the ingress gateway reaches a STRICT backend while a plain client is reset",
	Requires:   cases.Requires{IngressGateway: true},
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.PlainClient),
	Steps: []cases.Step{{Name: "namespace STRICT + Gateway + VirtualService (or, with INGRESS_API=gateway-api, HTTPRoute)", Apply: func(e cases.Env) []policy.Object {
		if e.Gateway.GatewayAPI() {
			return append(namespaceStrict(e), specIngress(e, ingressHost, "")...)
		}
		return append(namespaceStrict(e), gateway(e, "httpbin", gatewayServer(80, "http", "HTTP", ingressHost, nil)),
			virtualService(e, "httpbin", ingressHost, "httpbin"))
	}, Probes: []cases.Probe{
		{Name: "through the gateway", From: plainClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, ViaGateway: true, Host: ingressHost}, Expect: catalog.Allowed},
		{Name: "plain client direct", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
	}}},
})

// specIngress is the Gateway-API ingress of INGRESS_API=gateway-api: the spec's own Gateway of
// class istio in the server namespace (e.Gateway names it and the Service istiod makes for it)
// and HTTPRoutes for host to httpbin's port 8000; with tlsSecret, an https listener terminating
// with it and a 301 redirect on http (gatewayapi.SpecIngress). Istio's own test of the same
// shape: tests/integration/pilot/gateway_test.go, ManagedGatewayTest. In ambient mode the
// server namespace is enrolled, yet the Gateway's pods are not captured by ztunnel (so the
// namespace's STRICT policy does not refuse the plain client at the gateway): istiod labels an
// ingress Gateway's resources istio.io/dataplane-mode=none unless the Gateway sets that label
// (gatewaycommon/deploymentcontroller.go:471-486, with PILOT_ENABLE_AMBIENT_WAYPOINTS, on under
// the ambient profile: features/ambient.go:30-32).
func specIngress(e cases.Env, host, tlsSecret string) []policy.Object {
	var out []policy.Object
	for _, o := range (gatewayapi.SpecIngress{Namespace: e.Gateway.Namespace, Name: e.Gateway.Name, Host: host,
		Service: "httpbin", Port: 8000, TLSSecret: tlsSecret}).Objects() {
		out = append(out, o)
	}
	return out
}

// gateway is a Gateway named name in the server namespace, on the ingress gateway's pods,
// with these servers.
func gateway(e cases.Env, name string, servers ...map[string]any) policy.Object {
	sel := map[string]any{}
	for k, v := range e.Gateway.Selector {
		sel[k] = v
	}
	ss := make([]any, len(servers))
	for i, sv := range servers {
		ss[i] = sv
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": name, "namespace": e.NS(cases.Server)},
		"spec":     map[string]any{"selector": sel, "servers": ss},
	}}
}

// gatewayServer is one server of a Gateway: port number, name and protocol, hosts, and tls
// (nil for none).
func gatewayServer(port int64, name, protocol, host string, tls map[string]any) map[string]any {
	sv := map[string]any{
		"port":  map[string]any{"number": port, "name": name, "protocol": protocol},
		"hosts": []any{host},
	}
	if tls != nil {
		sv["tls"] = tls
	}
	return sv
}

// virtualService routes host, arriving through Gateway gw, to httpbin's port 8000.
func virtualService(e cases.Env, name, host, gw string) policy.Object {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": name, "namespace": e.NS(cases.Server)},
		"spec": map[string]any{
			"hosts":    []any{host},
			"gateways": []any{gw},
			"http": []any{map[string]any{
				"route": []any{map[string]any{"destination": map[string]any{
					"host": e.FQDN(cases.Server, "httpbin"), "port": map[string]any{"number": int64(8000)},
				}}},
			}},
		},
	}}
}
