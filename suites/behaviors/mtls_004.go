package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-004", Name: "a mesh client still gets 200 under STRICT (auto mTLS)",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
	Steps: []cases.Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
		{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
	}}},
})
