package behaviors

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// The claiming pod: dry-run through the injector, then created by hand.
	Writes: func(e cases.Env) []cases.Write {
		return []cases.Write{{Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: claimingPodName, Namespace: e.NS(cases.Client)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "docker.io/curlimages/curl:8.11.1"}}}},
			Verbs: []cases.Verb{cases.Create}}}
	},
	Run: func(ctx context.Context, t *e2e.T) {
		want := t.Env.SPIFFE(cases.Client, t.Handles[cases.Client][workload.GRPCAgent].ServiceAccount)
		f, err := agentCerts(ctx, t, cases.Client, workload.GRPCAgent, func(f AgentFiles) error { return CheckIssuedIdentity(f, want) })
		fields := agentFields(f)
		fields["want"] = want
		fields["agent image"] = agentImage(ctx, t, cases.Client, workload.GRPCAgent)
		// The identity comes from the token, not from the request: a copy of the pod whose
		// agent's CSR claims another service account gets the same identity.
		claimed, cerr := claimedIdentity(ctx, t, cases.Client, want)
		for k, v := range claimed {
			fields["claiming pod: "+k] = v
		}
		t.Check(errors.Join(err, cerr), "leaf "+want+" from istiod's CA, root = istio-ca-root-cert; a CSR claiming sa/"+
			ClaimedServiceAccount+" with the same token got "+want+" too", fields)
	},
})
