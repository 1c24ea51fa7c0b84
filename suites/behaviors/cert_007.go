package behaviors

import (
	"context"
	"fmt"
	"time"

	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// CERT-007 is CERT-004's rule (the default TTL and SECRET_TTL) on a second source: the
// certificate a pilot-agent without Envoy got over CSR, read from the files it wrote, and
// judged exactly (TTL + istiod's 2-minute backdating) rather than within CERT-004's hour.
var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-007", Name: "a certificate issued over CSR lasts SECRET_TTL (24h by default) plus istiod's 2-minute backdating",
	Timeout: 10 * time.Minute,
	Namespaces: []cases.Namespace{
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.GRPCAgent, workload.GRPCAgentTTL}},
	},
	Run: func(ctx context.Context, t *e2e.T) {
		fields := map[string]string{}
		var errs []error
		for _, tc := range []struct {
			sample workload.Sample
			ttl    time.Duration
		}{{workload.GRPCAgent, DefaultCertLifetime}, {workload.GRPCAgentTTL, 48 * time.Hour}} {
			f, err := agentCerts(ctx, t, cases.Client, tc.sample, func(f AgentFiles) error {
				leaf, ok := f.Chain.Leaf()
				if !ok {
					return fmt.Errorf("CERT-007: cert-chain.pem holds no certificate")
				}
				return CheckIssuedLifetime(leaf, tc.ttl)
			})
			if leaf, ok := f.Chain.Leaf(); ok {
				fields[string(tc.sample)+" lifetime"] = leaf.Lifetime().String()
				fields[string(tc.sample)+" validity"] = leaf.NotBefore.UTC().Format(time.RFC3339) + " .. " + leaf.NotAfter.UTC().Format(time.RFC3339)
			}
			fields[string(tc.sample)+" want"] = (tc.ttl + IstioBackdate).String()
			fields[string(tc.sample)+" agent image"] = agentImage(ctx, t, cases.Client, tc.sample)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (SECRET_TTL %v): %w", tc.sample, tc.ttl, err))
			}
		}
		var err error
		if len(errs) > 0 {
			err = errs[0]
			if len(errs) > 1 {
				err = fmt.Errorf("%w\n%w", errs[0], errs[1])
			}
		}
		t.Check(err, "24h02m by default, 48h02m with SECRET_TTL=48h", fields)
	},
})
