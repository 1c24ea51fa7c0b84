package behaviors

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/catalog"
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
	Steps: []cases.Step{{Name: "namespace STRICT + Gateway + VirtualService", Apply: func(e cases.Env) []policy.Object {
		return append(namespaceStrict(e), gateway(e, ingressHost), virtualService(e, ingressHost))
	}, Probes: []cases.Probe{
		{Name: "through the gateway", From: plainClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, ViaGateway: true, Host: ingressHost}, Expect: catalog.Allowed},
		{Name: "plain client direct", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
	}}},
})

func gateway(e cases.Env, host string) policy.Object {
	sel := map[string]any{}
	for k, v := range e.Gateway.Selector {
		sel[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "httpbin", "namespace": e.NS(cases.Server)},
		"spec": map[string]any{
			"selector": sel,
			"servers": []any{map[string]any{
				"port":  map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"},
				"hosts": []any{host},
			}},
		},
	}}
}

func virtualService(e cases.Env, host string) policy.Object {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "httpbin", "namespace": e.NS(cases.Server)},
		"spec": map[string]any{
			"hosts":    []any{host},
			"gateways": []any{"httpbin"},
			"http": []any{map[string]any{
				"route": []any{map[string]any{"destination": map[string]any{
					"host": e.FQDN(cases.Server, "httpbin"), "port": map[string]any{"number": int64(8000)},
				}}},
			}},
		},
	}}
}
