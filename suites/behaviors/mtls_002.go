package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-002", Name: "namespace STRICT resets a plaintext client (curl exit 56)",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
		{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
	}}},
	Proxyless: proxylessTable([]cases.Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
		{Name: "plain client", From: echoPlain, To: echoServer, Expect: catalog.GRPCPlaintextRejected},
	}}}),
})
