package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-002", Name: "ALLOW by principal: other service accounts are denied, the allowed one gets 200",
	Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, authzClients...),
	Steps: []cases.Step{{Name: "ALLOW test-service-account GET", Apply: nginxAllowGET, Probes: []cases.Probe{
		{Name: "sa sleep", From: meshClient, To: nginx, Expect: catalog.RBACDenied},
		{Name: "sa test-service-account", From: allowedSA, To: nginx, Expect: catalog.Allowed},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "STRICT, ISTIO_MUTUAL, ALLOW echo-allowed", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{NamespaceStrict(e.NS(cases.Server)), echoMutual(e), echoAllowPrincipal(e)}
	}, Probes: []cases.Probe{
		{Name: "sa echo-client", From: echoClient, To: echoServer, Expect: catalog.GRPCNoAllowMatch},
		{Name: "sa echo-allowed", From: echoAllowed, To: echoServer, Expect: catalog.GRPCAllowed},
	}}}, workload.EchoClient, workload.EchoAllowed),
})
