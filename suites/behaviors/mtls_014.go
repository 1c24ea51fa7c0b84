package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// MTLS-014: under PERMISSIVE a plaintext request is accepted, with no identity: the server's
// proxy adds X-Forwarded-Client-Cert only for mTLS peers (the contrast to CERT-001).
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-014", Name: "a plaintext request under PERMISSIVE reaches the app with no X-Forwarded-Client-Cert",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.PlainClient),
	Steps: []cases.Step{{Name: "no policy", Probes: []cases.Probe{{
		Name: "plain client GET /headers", From: plainClient,
		To:     cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/headers"},
		Expect: catalog.Allowed,
		Check:  func(_ cases.Env, o probe.Outcome) error { return CheckNoXFCC(o.Body) },
	}}}},
})
