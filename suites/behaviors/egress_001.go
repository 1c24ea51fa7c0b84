package behaviors

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// EGRESS-001: a Sidecar resource with outboundTrafficPolicy REGISTRY_ONLY limits the client's
// proxy to the hosts its egress lists. No internet is needed: the blocked destination is
// httpbin in the server namespace, which the first Sidecar leaves out and the second adds.
//
// The 502 comes from the BlackHole virtual host of an HTTP listener's routes, so the client's
// view needs an HTTP listener on the called port, as in Istio's own case (port 80): an httpbin
// in the client namespace gives it one on 8000. Without it the call falls to the TCP
// catch-all (BlackHoleCluster in a TCP chain) and curl sees the connection closed, which the
// catalog keeps as BlackHole's equivalent.
var _ = e2e.Register(e2e.Behavior{
	ID: "EGRESS-001", Name: "REGISTRY_ONLY: a host outside the Sidecar's egress gets 502 until its namespace is added",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.Sleep, workload.Httpbin),
	Steps: []cases.Step{
		{Name: "client Sidecar: egress ./* and istio-system/*, REGISTRY_ONLY", Apply: func(e cases.Env) []policy.Object {
			return []policy.Object{egressSidecar(e, "./*", e.RootNamespace+"/*")}
		}, Probes: []cases.Probe{
			{Name: "mesh client to httpbin in another namespace", From: meshClient, To: httpbin, Expect: catalog.BlackHole},
		}},
		{Name: "the server namespace added to egress", Apply: func(e cases.Env) []policy.Object {
			return []policy.Object{egressSidecar(e, "./*", e.RootNamespace+"/*", e.NS(cases.Server)+"/*")}
		}, Probes: []cases.Probe{
			{Name: "mesh client to httpbin in another namespace", From: meshClient, To: httpbin, Expect: catalog.Allowed},
		}},
	},
})

// egressSidecar is the client namespace's default Sidecar (no workloadSelector) with these
// egress hosts and REGISTRY_ONLY.
func egressSidecar(e cases.Env, hosts ...string) policy.Object {
	hs := make([]any, len(hosts))
	for i, h := range hosts {
		hs[i] = h
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
		"metadata": map[string]any{"name": "default", "namespace": e.NS(cases.Client)},
		"spec": map[string]any{
			"egress":                []any{map[string]any{"hosts": hs}},
			"outboundTrafficPolicy": map[string]any{"mode": "REGISTRY_ONLY"},
		},
	}}
}
