package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-006", Name: "workload STRICT by selector affects only that workload",
	Namespaces: serverAndClients([]workload.Sample{workload.Frontend, workload.Httpbin}),
	Steps: []cases.Step{{Name: "frontend STRICT + ISTIO_MUTUAL DestinationRule", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{
			policy.PeerAuthentication(e.NS(cases.Server), "frontend",
				policy.Selector(map[string]string{"app": "frontend"}), policy.Mode(policy.MTLSStrict)),
			policy.DestinationRule(e.NS(cases.Server), "frontend", e.FQDN(cases.Server, "frontend"),
				policy.TLSMode(policy.TLSIstioMutual)),
		}
	}, Probes: []cases.Probe{
		{Name: "plain client to frontend", From: plainClient, To: frontend, Expect: catalog.PlaintextRejected},
		{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.Allowed},
	}}},
})
