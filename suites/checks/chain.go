package checks

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"meshconform/framework/probe"
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
