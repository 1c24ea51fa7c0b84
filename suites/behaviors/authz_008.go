package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-008: source.namespaces is read from the peer's mTLS identity: a mesh client of another
// namespace is denied, and a plain client, which has no identity, is denied too.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-008", Name: "ALLOW from one source namespace: its mesh client gets 200, another namespace's and a plain client 403",
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.Sleep, workload.PlainClient}},
		{Role: cases.Other, Meshed: true, Samples: []workload.Sample{workload.Sleep}},
	},
	Steps: []cases.Step{{Name: "ALLOW from the client namespace", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "allow-client-ns",
			policy.Selector(map[string]string{"app": "httpbin"}), policy.Action(policy.Allow),
			policy.Rule(policy.FromNamespaces(e.NS(cases.Client))))}
	}, Probes: []cases.Probe{
		{Name: "mesh client in the client namespace", From: meshClient, To: httpbin, Expect: catalog.Allowed},
		{Name: "mesh client in a third namespace", From: cases.Source{Role: cases.Other, Sample: workload.Sleep}, To: httpbin, Expect: catalog.RBACDenied},
		{Name: "plain client (no identity)", From: plainClient, To: httpbin, Expect: catalog.Denied403},
	}}},
})
