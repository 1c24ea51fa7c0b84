package identity

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/checks"
	"meshconform/suites/internal/e2e"
)

// proxySource is seed 000's vantage point: openssl from a meshed pod's istio-proxy container,
// whose own connections are not captured, so it speaks TLS to the server's sidecar itself.
var proxySource = cases.Source{Role: cases.Client, Sample: workload.ProductCatalog, Container: istionames.ProxyContainerName}

// servedChain converges on a chain for which check passes, N reads in a row, and returns the
// last chain read.
func servedChain(ctx context.Context, s *e2e.Scenario, target workload.Sample, check func(probe.Chain) error) (probe.Chain, probe.Outcome, error) {
	ex := s.Executor(ctx, proxySource)
	h := s.Handles[cases.Server][target]
	req := probe.TLSRequest{Host: h.Host(), Port: int(h.Ports[0]), ALPN: []string{"istio"}, Timeout: 15 * time.Second}
	var chain probe.Chain
	var out probe.Outcome
	err := expect.ConvergeFunc(ctx, s.Run.Expect, func(ctx context.Context) error {
		var err error
		chain, out, err = probe.OpenSSLChain(ctx, ex, req)
		if err != nil {
			return err
		}
		return check(chain)
	})
	return chain, out, err
}

var _ = Describe("identity: certificates", func() {
	It("CERT-002: the mTLS port serves a chain rooted in the mesh CA, leaf carrying the server's SPIFFE id", e2e.IDLabels("CERT-002"), SpecTimeout(15*time.Minute), func(ctx SpecContext) {
		s := e2e.Setup(ctx, e2e.Current, "CERT-002", []cases.Namespace{
			{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
			{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.ProductCatalog}},
		})
		var kind checks.CAKind
		chain, out, err := servedChain(ctx, s, workload.Httpbin, func(c probe.Chain) error {
			var err error
			kind, err = checks.CheckServedChain(c, s.Env.TrustDomain, s.Env.SPIFFE(cases.Server, "httpbin"))
			return err
		})
		fields := chainFields(chain)
		fields["ca"] = string(kind)
		if err != nil {
			e2e.RecordFields("CERT-002", expect.Deviation, err.Error(), fields)
			Fail(fmt.Sprintf("CERT-002: %v\n%s", err, out))
		}
		e2e.RecordFields("CERT-002", expect.Documented, "chain served; CA "+string(kind), fields)
	})

	It("CERT-003: the sidecar injector webhook has a CA bundle", e2e.IDLabels("CERT-003"), func(ctx SpecContext) {
		r := e2e.Current
		// istiod patches the bundle in after it starts: converge rather than read once.
		err := expect.ConvergeFunc(ctx, r.Expect, func(ctx context.Context) error {
			return checks.CheckInjectorCABundle(ctx, r.Kube, r.State.Istio.Namespace, r.State.Istio.Revision)
		})
		name := mesh.Options{Namespace: r.State.Istio.Namespace, Revision: r.State.Istio.Revision}.InjectorWebhookName()
		if err != nil {
			e2e.RecordFields("CERT-003", expect.Deviation, err.Error(), map[string]string{"webhook": name})
			Fail(fmt.Sprintf("CERT-003: %v", err))
		}
		e2e.RecordFields("CERT-003", expect.Documented, "caBundle set on every webhook", map[string]string{"webhook": name})
	})

	It("CERT-004: workload certificates live 24h by default and follow proxyMetadata.SECRET_TTL", e2e.IDLabels("CERT-004"), SpecTimeout(15*time.Minute), func(ctx SpecContext) {
		s := e2e.Setup(ctx, e2e.Current, "CERT-004", []cases.Namespace{
			{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin, workload.HttpbinTTL}},
			{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.ProductCatalog}},
		})
		fields := map[string]string{}
		for _, tc := range []struct {
			sample workload.Sample
			want   time.Duration
		}{{workload.Httpbin, checks.DefaultCertLifetime}, {workload.HttpbinTTL, 48 * time.Hour}} {
			chain, out, err := servedChain(ctx, s, tc.sample, func(c probe.Chain) error {
				if len(c.Certs) == 0 {
					return fmt.Errorf("no certificate printed")
				}
				return checks.CheckLifetime(c.Certs[0], tc.want)
			})
			if len(chain.Certs) > 0 {
				fields[string(tc.sample)+" lifetime"] = chain.Certs[0].Lifetime().String()
			}
			if err != nil {
				e2e.RecordFields("CERT-004", expect.Deviation, err.Error(), fields)
				Fail(fmt.Sprintf("CERT-004 (%s, want %s): %v\n%s", tc.sample, tc.want, err, out))
			}
		}
		e2e.RecordFields("CERT-004", expect.Documented, "24h default, 48h with SECRET_TTL", fields)
	})
})

func chainFields(c probe.Chain) map[string]string {
	f := map[string]string{"certificates": fmt.Sprint(len(c.Certs)), "alpn": c.ALPN}
	for i, cert := range c.Certs {
		f[fmt.Sprintf("cert[%d] subject", i)] = cert.Subject
		f[fmt.Sprintf("cert[%d] issuer", i)] = cert.Issuer
		if len(cert.URIs) > 0 {
			f[fmt.Sprintf("cert[%d] uri", i)] = fmt.Sprint(cert.URIs)
		}
	}
	return f
}
