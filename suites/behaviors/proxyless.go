package behaviors

import (
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// The proxyless data plane's analogues (DATAPLANE_MODE=proxyless; docs/behaviors.md, "Proxyless
// data plane"): Istio's echo server (xDS-served gRPC on 7070 and 7071, without the
// security.istio.io/tlsMode label, so PERMISSIVE serves plaintext) and echo clients. A proxyless
// client sends mTLS only under a DestinationRule ISTIO_MUTUAL (grpcgen has no auto mTLS:
// pilot/pkg/networking/grpcgen/cds.go:264-281 at both pins); a plain client calls grpc://.

// Sources of the proxyless tables.
var (
	echoPlain   = cases.Source{Role: cases.Client, Sample: workload.EchoPlain}
	echoClient  = cases.Source{Role: cases.Client, Sample: workload.EchoClient}
	echoAllowed = cases.Source{Role: cases.Client, Sample: workload.EchoAllowed}
)

// Targets of the proxyless tables: echo-server's xDS ports by Service port.
var (
	echoServer  = cases.Target{Role: cases.Server, Sample: workload.EchoServer, Port: 7070}
	echoServer2 = cases.Target{Role: cases.Server, Sample: workload.EchoServer, Port: 7071}
)

// proxylessTable is a proxyless analogue in the usual shape: a meshed server namespace with
// echo-server, a meshed client namespace with clients (default: the proxyless client and the
// plain one).
func proxylessTable(steps []cases.Step, clients ...workload.Sample) *e2e.Table {
	if len(clients) == 0 {
		clients = []workload.Sample{workload.EchoClient, workload.EchoPlain}
	}
	return &e2e.Table{Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.EchoServer}},
		{Role: cases.Client, Meshed: true, Samples: clients},
	}, Steps: steps}
}

// echoSelector selects echo-server's pods.
var echoSelector = policy.Selector(map[string]string{"app": "echo-server"})

// echoMutual is the client namespace's DestinationRule that makes proxyless clients send mTLS
// to echo-server (the only way: grpcgen builds an upstream TLS context for ISTIO_MUTUAL alone).
func echoMutual(e cases.Env) policy.Object {
	return policy.DestinationRule(e.NS(cases.Client), "echo-server-mtls", e.FQDN(cases.Server, "echo-server"),
		policy.TLSMode(policy.TLSIstioMutual))
}

// echoAllowPrincipal is AUTHZ-002's policy for gRPC: ALLOW the echo-allowed service account's
// principal, with no methods (gRPC's :method is always POST: grpc-go
// internal/xds/rbac/rbac_engine.go:205, so seed 004's GET would match nothing).
func echoAllowPrincipal(e cases.Env) policy.Object {
	return policy.AuthorizationPolicy(e.NS(cases.Server), "echo-allow", echoSelector, policy.Action(policy.Allow),
		policy.Rule(policy.FromPrincipals(e.Principal(cases.Client, "echo-allowed"))))
}
