package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-005", Name: "deleting the STRICT policy restores plaintext access",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{
		{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
			{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
		}},
		{Name: "policy deleted", Delete: namespaceStrict, Probes: []cases.Probe{
			{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
		}},
	},
	Proxyless: proxylessTable([]cases.Step{
		{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
			{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCPlaintextRejected},
		}},
		{Name: "policy deleted", Delete: namespaceStrict, Probes: []cases.Probe{
			{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCAllowed},
		}},
	}),
})
