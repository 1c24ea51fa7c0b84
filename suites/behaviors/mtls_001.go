package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-001", Name: "plaintext and mesh clients get 200 under the default PERMISSIVE mode",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "no policy", Probes: []cases.Probe{
		{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
		{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "no policy", Probes: []cases.Probe{
		{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCAllowed},
		{Name: "proxyless client, no DestinationRule", From: echoClient, To: echoServer, Expect: catalog.GRPCAllowed},
	}}}),
})
