package checks

import (
	"encoding/json"
	"fmt"
	"time"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
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
