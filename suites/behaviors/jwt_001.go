package behaviors

import (
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// JWT-001: a RequestAuthentication alone validates the tokens it is shown but requires none
// (Istio's TestRequestAuthentication, "authn-only"): no token passes, a valid one passes and is
// removed before the app, an expired or wrongly signed one gets 401.
var _ = e2e.Register(e2e.Behavior{
	ID: "JWT-001", Name: "RequestAuthentication alone: no token 200, valid token 200 (not forwarded), expired or wrongly signed token 401",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.Sleep),
	Steps: []cases.Step{{Name: "RequestAuthentication with the run's JWKS", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{requestAuthentication(e)}
	}, Probes: []cases.Probe{
		{Name: "no token", From: meshClient, To: httpbinHeaders, Expect: catalog.Allowed},
		{Name: "valid token", From: meshClient, To: httpbinHeaders, Expect: catalog.Allowed,
			Headers: bearer(false, jwtSubject, time.Hour),
			Check:   func(_ cases.Env, o probe.Outcome) error { return CheckNoAuthorization(o.Body) }},
		{Name: "expired token", From: meshClient, To: httpbinHeaders, Expect: catalog.JWTRejected, Headers: bearer(false, jwtSubject, -time.Hour)},
		{Name: "token signed by another key", From: meshClient, To: httpbinHeaders, Expect: catalog.JWTRejected, Headers: bearer(true, jwtSubject, time.Hour)},
	}}},
})

var httpbinHeaders = cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/headers"}
