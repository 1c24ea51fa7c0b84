package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-010: notPrincipals ["*"] matches every request without a peer identity, so a DENY on it
// refuses plaintext although the server stays PERMISSIVE.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-010", Name: "DENY notPrincipals [*] refuses plaintext under PERMISSIVE; a mesh client gets 200",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "DENY requests without a principal", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "deny-plaintext",
			policy.Selector(map[string]string{"app": "httpbin"}), policy.Action(policy.Deny),
			policy.Rule(policy.From(policy.NotPrincipals("*"))))}
	}, Probes: []cases.Probe{
		{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.RBACDenied},
		{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
	}}},
})
