package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// Disruptive (the catalog's label): the runner snapshots the root namespace's policies and
// restores them, and runs it Serial.
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-007", Name: "mesh-wide STRICT in the root namespace rejects plaintext everywhere, until deleted",
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Other, Meshed: true, Samples: []workload.Sample{workload.Nginx}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.PlainClient}},
	},
	Steps: []cases.Step{
		{Name: "mesh-wide STRICT", Apply: meshWideStrict, Probes: []cases.Probe{
			{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
			{Name: "plain client to nginx", From: plainClient, To: otherNginx, Expect: catalog.PlaintextRejected},
		}},
		{Name: "mesh-wide policy deleted", Delete: meshWideStrict, Probes: []cases.Probe{
			{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.Allowed},
			{Name: "plain client to nginx", From: plainClient, To: otherNginx, Expect: catalog.Allowed},
		}},
	},
})

var otherNginx = cases.Target{Role: cases.Other, Sample: workload.Nginx}

func meshWideStrict(e cases.Env) []policy.Object {
	return []policy.Object{policy.PeerAuthentication(e.RootNamespace, "mesh-wide", policy.Mode(policy.MTLSStrict))}
}
