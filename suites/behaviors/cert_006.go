package behaviors

import (
	"context"
	"time"

	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// CERT-006 reads the certificate istiod's CA issued to a pilot-agent (Istio's grpc-agent
// template: no Envoy, so it runs where only istiod and an agent image do) from the files the
// agent wrote, with CERT-002's chain judge (chainLinks) beside the identity and root checks.
var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-006", Name: "istiod's CA signs a workload's CSR for its token's identity, rooted in istio-ca-root-cert",
	Timeout: 10 * time.Minute,
	Namespaces: []cases.Namespace{
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.GRPCAgent}},
	},
	Run: func(ctx context.Context, t *e2e.T) {
		want := t.Env.SPIFFE(cases.Client, t.Handles[cases.Client][workload.GRPCAgent].ServiceAccount)
		f, err := agentCerts(ctx, t, cases.Client, workload.GRPCAgent, func(f AgentFiles) error { return CheckIssuedIdentity(f, want) })
		fields := agentFields(f)
		fields["want"] = want
		fields["agent image"] = agentImage(ctx, t, cases.Client, workload.GRPCAgent)
		t.Check(err, "leaf "+want+" from istiod's CA, root = "+"istio-ca-root-cert", fields)
	},
})
