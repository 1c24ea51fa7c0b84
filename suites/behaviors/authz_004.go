package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-004", Name: "a plain client has no principal: 403 under a principal ALLOW policy",
	Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, authzClients...),
	Steps: []cases.Step{{Name: "ALLOW test-service-account GET, server PERMISSIVE", Apply: nginxAllowGET, Probes: []cases.Probe{
		{Name: "plain client (runs as test-service-account, no sidecar)", From: plainClient, To: nginx, Expect: catalog.Denied403},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "ALLOW echo-allowed, server PERMISSIVE (plaintext)", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{echoAllowPrincipal(e)}
	}, Probes: []cases.Probe{
		{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCNoAllowMatch},
	}}}, workload.EchoPlain),
})
