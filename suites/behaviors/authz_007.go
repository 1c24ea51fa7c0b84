package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// AUTHZ-007: Istio normalizes the path before its path rules see it (meshConfig
// pathNormalization, BASE by default: RFC 3986, so `..` segments are resolved and %2E, an
// unreserved character, is decoded first), so `..` or its percent-encoded forms cannot carry a
// request past an ALLOW rule for /headers* to another path. The probes send the path raw.
var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-007", Name: "path normalization: /headers/../status/200 and its %2E forms do not pass an ALLOW /headers* rule",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.Sleep),
	Steps: []cases.Step{{Name: "ALLOW GET /headers*", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "allow-headers",
			policy.Selector(map[string]string{"app": "httpbin"}), policy.Action(policy.Allow),
			policy.Rule(policy.To(policy.Paths("/headers*"), policy.Methods("GET"))))}
	}, Probes: []cases.Probe{
		{Name: "/headers", From: meshClient, To: rawPath("/headers"), Expect: catalog.Allowed},
		{Name: "/headers/../status/200", From: meshClient, To: rawPath("/headers/../status/200"), Expect: catalog.RBACDenied},
		{Name: "/headers/%2E%2E/status/200", From: meshClient, To: rawPath("/headers/%2E%2E/status/200"), Expect: catalog.RBACDenied},
		{Name: "/headers/%2e/%2e%2e/status/200", From: meshClient, To: rawPath("/headers/%2e/%2e%2e/status/200"), Expect: catalog.RBACDenied},
	}}},
})

func rawPath(path string) cases.Target {
	return cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: path, RawPath: true}
}
