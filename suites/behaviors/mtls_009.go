package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-009", Name: "non-mesh clients are rejected under STRICT and admitted under PERMISSIVE; mesh clients under both",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{
		{Name: "namespace PERMISSIVE", Apply: namespacePermissive, Probes: []cases.Probe{
			{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
			{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
		}},
		{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
			{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
			{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
		}},
	},
})
