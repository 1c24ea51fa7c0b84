package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-001", Name: "an empty-spec AuthorizationPolicy denies everything: 403 RBAC: access denied",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "deny-authz-ns", Apply: denyAll, Probes: []cases.Probe{
		{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.RBACDenied},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "deny-authz-ns", Apply: denyAll, Probes: []cases.Probe{
		{Name: "proxyless client", From: echoClient, To: echoServer, Expect: catalog.GRPCNoAllowMatch},
	}}}),
})
