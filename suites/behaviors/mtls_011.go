package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-011", Name: "portLevelMtls PERMISSIVE (keyed by the container port) opens one port of a STRICT workload",
	Namespaces: serverAndClients([]workload.Sample{workload.MultiPort}, workload.PlainClient),
	Steps: []cases.Step{{Name: "STRICT with port 8081 PERMISSIVE", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.PeerAuthentication(e.NS(cases.Server), "multiport",
			policy.Selector(map[string]string{"app": "multiport"}), policy.Mode(policy.MTLSStrict),
			policy.PortMTLS(8081, policy.MTLSPermissive))}
	}, Probes: []cases.Probe{
		{Name: "plain client to the PERMISSIVE port", From: plainClient, To: cases.Target{Role: cases.Server, Sample: workload.MultiPort, Port: 8001}, Expect: catalog.Allowed},
		{Name: "plain client to the STRICT port", From: plainClient, To: cases.Target{Role: cases.Server, Sample: workload.MultiPort, Port: 8000}, Expect: catalog.PlaintextRejected},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "STRICT with port 7071 PERMISSIVE", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.PeerAuthentication(e.NS(cases.Server), "echo-server", echoSelector,
			policy.Mode(policy.MTLSStrict), policy.PortMTLS(7071, policy.MTLSPermissive))}
	}, Probes: []cases.Probe{
		{Name: "plain client to the PERMISSIVE port", From: echoPlain, To: echoServer2, Expect: catalog.GRPCAllowed},
		{Name: "plain client to the STRICT port", From: echoPlain, To: echoServer, Expect: catalog.GRPCPlaintextRejected},
	}}}, workload.EchoPlain),
})
