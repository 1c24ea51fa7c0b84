package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-006: Istio evaluates DENY policies before ALLOW ones (CUSTOM, DENY, then ALLOW:
// security/v1beta1 authorization_policy.proto), so a path both allow and deny match is denied.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-006", Name: "DENY takes precedence over ALLOW: /admin is denied although ALLOW /* matches it",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "DENY /admin* + ALLOW /*", Apply: func(e cases.Env) []policy.Object {
		ns := e.NS(cases.Server)
		sel := policy.Selector(map[string]string{"app": "httpbin"})
		return []policy.Object{
			policy.AuthorizationPolicy(ns, "deny-admin", sel, policy.Action(policy.Deny), policy.Rule(policy.ToPaths("/admin*"))),
			policy.AuthorizationPolicy(ns, "allow-all-paths", sel, policy.Action(policy.Allow), policy.Rule(policy.ToPaths("/*"))),
		}
	}, Probes: []cases.Probe{
		{Name: "mesh client /admin", From: meshClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/admin"}, Expect: catalog.RBACDenied},
		{Name: "mesh client /get", From: meshClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/get"}, Expect: catalog.Allowed},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "DENY Echo with x-meshconform-deny + ALLOW /*", Apply: func(e cases.Env) []policy.Object {
		ns := e.NS(cases.Server)
		return []policy.Object{
			policy.AuthorizationPolicy(ns, "deny-echo", echoSelector, policy.Action(policy.Deny),
				policy.Rule(policy.ToPaths("/proto.EchoTestService/Echo"), policy.When("request.headers[x-meshconform-deny]", "yes"))),
			policy.AuthorizationPolicy(ns, "allow-all-paths", echoSelector, policy.Action(policy.Allow), policy.Rule(policy.ToPaths("/*"))),
		}
	}, Probes: []cases.Probe{
		{Name: "plain client, denied header", From: echoPlain, To: echoServer, Expect: catalog.GRPCDenyMatched,
			Headers: func(cases.Env) map[string]string { return map[string]string{"x-meshconform-deny": "yes"} }},
		{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCAllowed},
	}}}, workload.EchoPlain),
})
