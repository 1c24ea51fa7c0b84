package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-009: an AuthorizationPolicy on a port the mesh proxies as TCP is enforced by Envoy's
// network RBAC filter: the allowed principal's HTTP exchange passes through the TCP proxy; any
// other principal's connection is closed with no HTTP response (Istio's check.Forbidden for
// TCP is an EOF), which the report records as curl exit 56 or 52.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-009", Name: "TCP authorization by principal: the allowed service account gets through, another's connection is closed",
	Namespaces: serverAndClients([]workload.Sample{workload.HttpbinTCP}, authzClients...),
	Steps: []cases.Step{{Name: "ALLOW test-service-account on the TCP port", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "allow-tcp",
			policy.Selector(map[string]string{"app": "httpbin-tcp"}), policy.Action(policy.Allow),
			policy.Rule(policy.FromPrincipals(e.Principal(cases.Client, "test-service-account")), policy.ToPorts(8080)))}
	}, Probes: []cases.Probe{
		{Name: "sa test-service-account", From: allowedSA, To: httpbinTCP, Expect: catalog.Allowed},
		{Name: "sa sleep", From: meshClient, To: httpbinTCP, Expect: catalog.TCPForbidden},
	}}},
})

var httpbinTCP = cases.Target{Role: cases.Server, Sample: workload.HttpbinTCP}
