package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-005", Name: "removing the deny policy restores access",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{
		{Name: "deny-authz-ns", Apply: denyAll, Probes: []cases.Probe{
			{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.RBACDenied},
		}},
		{Name: "policy deleted", Delete: denyAll, Probes: []cases.Probe{
			{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
		}},
	},
	Proxyless: proxylessTable([]cases.Step{
		{Name: "ALLOW echo-allowed", Apply: func(e cases.Env) []policy.Object { return []policy.Object{echoAllowPrincipal(e)} }, Probes: []cases.Probe{
			{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCNoAllowMatch},
		}},
		{Name: "policy deleted", Delete: func(e cases.Env) []policy.Object { return []policy.Object{echoAllowPrincipal(e)} }, Probes: []cases.Probe{
			{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCAllowed},
		}},
	}, workload.EchoPlain),
})
