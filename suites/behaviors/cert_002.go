package behaviors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"meshconform/framework/dataplane"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// CAKind says which certificate authority signed a served chain.
type CAKind string

const (
	// CAIstiod is istiod's own CA: its root's subject is O=<trust domain>.
	CAIstiod CAKind = "istiod"
	// CAMeshCA is a managed Mesh CA: its root's CN contains MeshCARootCN.
	CAMeshCA CAKind = "mesh-ca"
)

// MeshCARootCN is what seed 000 says a managed Mesh CA root's CN contains.
const MeshCARootCN = "istio_v1_cloud_workload_root-signer"

// CheckServedChain is CERT-002: the chain `openssl s_client -showcerts` printed holds a leaf
// whose URI SAN is wantLeafSPIFFE, certificates that each sign the one before, and a root
// that is istiod's (subject O=trustDomain) or a managed Mesh CA's (CN containing
// MeshCARootCN). A server need not send its root: when the last certificate is not
// self-signed, its Issuer is judged instead. The returned CAKind says which was seen.
func CheckServedChain(chain probe.Chain, trustDomain, wantLeafSPIFFE string) (CAKind, error) {
	leaf, ok := chain.Leaf()
	if !ok {
		return "", errors.New("CERT-002: no certificate was served (see the s_client output)")
	}
	var problems []string
	if got := leaf.SPIFFEID(); got != wantLeafSPIFFE {
		if got == "" {
			problems = append(problems, fmt.Sprintf("the leaf has no spiffe:// URI SAN (URIs %v), want %s", leaf.URIs, wantLeafSPIFFE))
		} else {
			problems = append(problems, fmt.Sprintf("the leaf's SPIFFE id is %s, want %s", got, wantLeafSPIFFE))
		}
	}
	problems = append(problems, chainLinks(chain)...)

	top := chain.Certs[len(chain.Certs)-1]
	selfSigned := isSelfSigned(top)
	// The root's name: the top certificate's subject when it is the root, else its issuer.
	var (
		where      string
		orgs       []string
		cn, rdn    string
		rootIsSent = selfSigned && len(chain.Certs) > 1
	)
	switch {
	case selfSigned:
		where, orgs, cn, rdn = "root subject", top.Organization, top.CommonName, top.Subject
	case top.X509 != nil:
		where, orgs, cn, rdn = "issuer of the last certificate served (the root was not sent)",
			top.X509.Issuer.Organization, top.X509.Issuer.CommonName, top.Issuer
	default:
		where, rdn = "issuer of the last certificate served (the root was not sent)", top.Issuer
	}
	var kind CAKind
	switch {
	case slices.Contains(orgs, trustDomain):
		kind = CAIstiod
	case strings.Contains(cn, MeshCARootCN):
		kind = CAMeshCA
	default:
		problems = append(problems, fmt.Sprintf("%s is %q: neither O=%s (istiod as CA) nor a CN containing %s (managed Mesh CA); a plugged-in CA (cacerts) has its own subject",
			where, rdn, trustDomain, MeshCARootCN))
	}
	if selfSigned && !rootIsSent {
		problems = append(problems, "the only certificate served is self-signed: a workload certificate is signed by the mesh's CA")
	}
	if len(problems) > 0 {
		return kind, fmt.Errorf("CERT-002: %s\nchain: %s", strings.Join(problems, "; "), chain)
	}
	return kind, nil
}

// chainLinks checks that every certificate is signed by the next one (the order TLS
// requires), by name and by signature.
func chainLinks(chain probe.Chain) []string {
	var out []string
	for i := 0; i+1 < len(chain.Certs); i++ {
		child, parent := chain.Certs[i], chain.Certs[i+1]
		if child.X509 == nil || parent.X509 == nil {
			continue
		}
		if !bytes.Equal(child.X509.RawIssuer, parent.X509.RawSubject) {
			out = append(out, fmt.Sprintf("certificate %d's issuer %q is not certificate %d's subject %q", i, child.Issuer, i+1, parent.Subject))
			continue
		}
		if err := child.X509.CheckSignatureFrom(parent.X509); err != nil {
			out = append(out, fmt.Sprintf("certificate %d is not signed by certificate %d: %v", i, i+1, err))
		}
	}
	return out
}

// isSelfSigned: issuer equals subject and the certificate's own key verifies it.
func isSelfSigned(c probe.Cert) bool {
	if c.X509 == nil {
		return c.Subject == c.Issuer
	}
	if !bytes.Equal(c.X509.RawIssuer, c.X509.RawSubject) {
		return false
	}
	return c.X509.CheckSignature(c.X509.SignatureAlgorithm, c.X509.RawTBSCertificate, c.X509.Signature) == nil
}

// CERT-002 reads the chain from the client's proxy (seed 000's vantage point): openssl there
// is not captured, so it speaks TLS to the server's proxy itself. That is the sidecar's.
var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-002", Name: "the mTLS port serves a chain rooted in the mesh CA, leaf carrying the server's SPIFFE id",
	Requires: cases.Requires{Mode: dataplane.ModeSidecar},
	Timeout:  15 * time.Minute,
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.ProductCatalog}},
	},
	Run: func(ctx context.Context, t *e2e.T) {
		var kind CAKind
		chain, out, err := servedChain(ctx, t, workload.Httpbin, func(c probe.Chain) error {
			var err error
			kind, err = CheckServedChain(c, t.Env.TrustDomain, t.Env.SPIFFE(cases.Server, "httpbin"))
			return err
		})
		fields := chainFields(chain)
		fields["ca"] = string(kind)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		t.Check(err, "chain served; CA "+string(kind), fields)
	},
})

// servedChain converges on a chain for which check passes, N reads in a row, read by openssl
// from the client's proxy, and returns the last chain read.
func servedChain(ctx context.Context, t *e2e.T, target workload.Sample, check func(probe.Chain) error) (probe.Chain, probe.Outcome, error) {
	ex := t.Executor(ctx, proxySource)
	h := t.Handles[cases.Server][target]
	req := probe.TLSRequest{Host: h.Host(), Port: int(h.Ports[0]), ALPN: []string{"istio"}, Timeout: 15 * time.Second}
	var chain probe.Chain
	var out probe.Outcome
	err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
		var err error
		chain, out, err = probe.OpenSSLChain(ctx, ex, req)
		if err != nil {
			return err
		}
		return check(chain)
	})
	return chain, out, err
}

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
