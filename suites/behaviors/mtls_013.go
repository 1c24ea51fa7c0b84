package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// MTLS-013: auto mTLS upgrades only towards workloads with a proxy; to one without, the
// client's proxy sends plaintext, so the app sees no client certificate header.
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-013", Name: "auto mTLS sends plaintext to a server without a sidecar: 200, no X-Forwarded-Client-Cert",
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: false, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.Sleep}},
	},
	Steps: []cases.Step{{Name: "no policy, no DestinationRule", Probes: []cases.Probe{{
		Name: "mesh client to the plain httpbin", From: meshClient,
		To:     cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/headers"},
		Expect: catalog.Allowed,
		Check:  func(_ cases.Env, o probe.Outcome) error { return CheckNoXFCC(o.Body) },
	}}}},
})
