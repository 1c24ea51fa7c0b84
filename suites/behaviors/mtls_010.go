package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/dataplane"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// excludeInboundPorts is a sidecar annotation: the behaviour exists in that mode only. The
// client's sidecar still sends mTLS, the plaintext app fails the handshake, and the default
// retry policy retries it: a 503 naming the TLS error (UpstreamConnectError).
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-010", Name: "excludeInboundPorts does not stop mesh clients sending mTLS; a DISABLE DestinationRule for the port fixes it",
	Requires:   cases.Requires{Mode: dataplane.ModeSidecar},
	Namespaces: serverAndClients([]workload.Sample{workload.HttpbinExcluded}, workload.Sleep),
	Steps: []cases.Step{
		{Name: "server port excluded from capture", Probes: []cases.Probe{
			{Name: "mesh client", From: meshClient, To: httpbinExcluded, Expect: catalog.UpstreamConnectError},
		}},
		{Name: "DISABLE DestinationRule for the port", Apply: func(e cases.Env) []policy.Object {
			return []policy.Object{policy.DestinationRule(e.NS(cases.Server), "httpbin-excluded-plaintext",
				e.FQDN(cases.Server, "httpbin-excluded"), policy.PortTLS(8000, policy.TLSDisable))}
		}, Probes: []cases.Probe{
			{Name: "mesh client", From: meshClient, To: httpbinExcluded, Expect: catalog.Allowed},
		}},
	},
})

var httpbinExcluded = cases.Target{Role: cases.Server, Sample: workload.HttpbinExcluded}
