package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-011: seed 003 says access is denied unless a policy allows it; Istio's default is
// allow. The first step records what a server with no AuthorizationPolicy does; the second
// makes default deny explicit (allow-nothing) and opens one path.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-011", Name: "no AuthorizationPolicy allows everything; allow-nothing plus ALLOW /get opens only /get",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{
		{Name: "no AuthorizationPolicy", Probes: []cases.Probe{
			{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
			{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
		}},
		{Name: "allow-nothing + ALLOW /get", Apply: func(e cases.Env) []policy.Object {
			ns := e.NS(cases.Server)
			return []policy.Object{
				policy.AuthorizationPolicy(ns, "allow-nothing"),
				policy.AuthorizationPolicy(ns, "allow-get", policy.Selector(map[string]string{"app": "httpbin"}),
					policy.Action(policy.Allow), policy.Rule(policy.ToPaths("/get"))),
			}
		}, Probes: []cases.Probe{
			{Name: "mesh client /get", From: meshClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/get"}, Expect: catalog.Allowed},
			{Name: "mesh client /headers", From: meshClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/headers"}, Expect: catalog.RBACDenied},
		}},
	},
})
