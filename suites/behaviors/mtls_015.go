package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// MTLS-015: a selector-less PeerAuthentication applies to its own namespace; only one in the
// root namespace is mesh-wide (MTLS-007).
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-015", Name: "a namespace STRICT policy does not reach another namespace",
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Other, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.PlainClient}},
	},
	Steps: []cases.Step{{Name: "STRICT in the server namespace only", Apply: namespaceStrict, Probes: []cases.Probe{
		{Name: "plain client to httpbin in the STRICT namespace", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
		{Name: "plain client to httpbin in the other namespace", From: plainClient, To: cases.Target{Role: cases.Other, Sample: workload.Httpbin}, Expect: catalog.Allowed},
	}}},
})
