package behaviors

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"meshconform/framework/dataplane"
	"meshconform/framework/istionames"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// DefaultCertLifetime is a workload certificate's lifetime without SECRET_TTL (seed 002).
const DefaultCertLifetime = 24 * time.Hour

// LifetimeTolerance is how far notAfter - notBefore may stray from the wanted TTL. Istio's
// CA backdates NotBefore by ClockSkewGracePeriod, 2 minutes
// (security/pkg/pki/util/generate_cert.go), so a 24h certificate lasts 24h02m; releases
// before the backdating, and other CAs, differ by their own grace periods. An hour covers
// those while keeping 24h and 48h 46 hours apart, and a certificate cut short by its
// signer's expiry (Istio clamps NotAfter to the CA certificate's) by more than an hour
// still fails.
const LifetimeTolerance = time.Hour

// CheckLifetime is CERT-004: the leaf's notAfter - notBefore is want, within
// LifetimeTolerance.
func CheckLifetime(leaf probe.Cert, want time.Duration) error {
	return CheckLifetimeWithin(leaf, want, LifetimeTolerance)
}

// CheckLifetimeWithin is CheckLifetime with another tolerance.
func CheckLifetimeWithin(leaf probe.Cert, want, tolerance time.Duration) error {
	if leaf.NotBefore.IsZero() || leaf.NotAfter.IsZero() {
		return fmt.Errorf("CERT-004: the certificate has no validity period (%s)", leaf)
	}
	got := leaf.Lifetime()
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	if diff <= tolerance {
		return nil
	}
	hint := ""
	if want != DefaultCertLifetime && (got-DefaultCertLifetime).Abs() <= tolerance {
		hint = fmt.Sprintf("; it is the %v default: the proxy did not take SECRET_TTL (annotation %s on the pod template, not the Deployment?)",
			DefaultCertLifetime, istionames.ProxyConfigAnnotation)
	}
	return fmt.Errorf("CERT-004: the workload certificate lasts %v (notBefore %s, notAfter %s), want %v ± %v%s\nleaf: %s",
		got, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), want, tolerance, hint, leaf)
}

// SecretTTLAnnotation is the pod annotation that sets the workload certificate's TTL
// (seed 002): proxy.istio.io/config: {"proxyMetadata":{"SECRET_TTL":"48h"}}. The value is
// ProxyConfig in JSON, which Istio reads as YAML (JSON is YAML); ttl is a Go duration, as
// the agent parses SECRET_TTL with time.ParseDuration.
func SecretTTLAnnotation(ttl string) map[string]string {
	v, err := json.Marshal(struct {
		ProxyMetadata map[string]string `json:"proxyMetadata"`
	}{map[string]string{"SECRET_TTL": ttl}})
	if err != nil {
		// A map of strings always marshals.
		panic(err)
	}
	return map[string]string{istionames.ProxyConfigAnnotation: string(v)}
}

var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-004", Name: "workload certificates live 24h by default and follow proxyMetadata.SECRET_TTL",
	Requires: cases.Requires{Mode: dataplane.ModeSidecar}, // read from the client's proxy, as CERT-002
	Timeout:  15 * time.Minute,
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin, workload.HttpbinTTL}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.ProductCatalog}},
	},
	Run: func(ctx context.Context, t *e2e.T) {
		fields := map[string]string{}
		for _, tc := range []struct {
			sample workload.Sample
			want   time.Duration
		}{{workload.Httpbin, DefaultCertLifetime}, {workload.HttpbinTTL, 48 * time.Hour}} {
			chain, out, err := servedChain(ctx, t, tc.sample, func(c probe.Chain) error {
				if len(c.Certs) == 0 {
					return fmt.Errorf("no certificate printed")
				}
				return CheckLifetime(c.Certs[0], tc.want)
			})
			if len(chain.Certs) > 0 {
				fields[string(tc.sample)+" lifetime"] = chain.Certs[0].Lifetime().String()
			}
			if err != nil {
				t.Check(fmt.Errorf("%s, want %s: %w\n%s", tc.sample, tc.want, err, out), "", fields)
			}
		}
		t.Check(nil, "24h default, 48h with SECRET_TTL", fields)
	},
})
