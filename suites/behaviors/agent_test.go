package behaviors

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshconform/framework/probe"
)

const agentID = "spiffe://cluster.local/ns/cert-006-client-x/sa/grpc-agent"

func pemOf(t *testing.T, certs ...*x509.Certificate) probe.Chain {
	t.Helper()
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	ch, err := probe.ParseChain(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestCheckIssuedIdentity: the files a grpc-agent's pilot-agent wrote pass when the leaf carries
// only the token's identity, chains to root-cert.pem and that root is the ConfigMap's; each broken
// condition fails, naming it.
func TestCheckIssuedIdentity(t *testing.T) {
	root := newCA(t, pkix.Name{Organization: []string{td}}, nil)
	other := newCA(t, pkix.Name{Organization: []string{td}}, nil) // another istiod's root, same subject
	leaf, _ := leafCert(t, root, agentID, 24*time.Hour)
	otherSA, _ := leafCert(t, root, "spiffe://cluster.local/ns/cert-006-client-x/sa/default", 24*time.Hour)
	foreign, _ := leafCert(t, other, agentID, 24*time.Hour)
	two := func() *x509.Certificate { // a leaf with a second URI SAN
		c, _ := leafCert(t, root, agentID, 24*time.Hour)
		tmpl := *c
		tmpl.URIs = append(tmpl.URIs, c.URIs[0].JoinPath("extra"))
		der, err := x509.CreateCertificate(nil, &tmpl, root.cert, c.PublicKey, root.key)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := x509.ParseCertificate(der)
		return out
	}()
	for _, tc := range []struct {
		name string
		f    AgentFiles
		want []string // substrings of the error; none: passes
	}{
		{"as istiod issues: leaf and root", AgentFiles{pemOf(t, leaf, root.cert), pemOf(t, root.cert), pemOf(t, root.cert)}, nil},
		{"leaf alone in cert-chain.pem", AgentFiles{pemOf(t, leaf), pemOf(t, root.cert), pemOf(t, root.cert)}, nil},
		{"another service account", AgentFiles{pemOf(t, otherSA, root.cert), pemOf(t, root.cert), pemOf(t, root.cert)},
			[]string{"URI SANs are [spiffe://cluster.local/ns/cert-006-client-x/sa/default], want exactly [" + agentID + "]"}},
		{"a second URI SAN", AgentFiles{pemOf(t, two, root.cert), pemOf(t, root.cert), pemOf(t, root.cert)}, []string{"want exactly [" + agentID + "]"}},
		{"root-cert.pem is not the ConfigMap's", AgentFiles{pemOf(t, leaf, root.cert), pemOf(t, root.cert), pemOf(t, other.cert)},
			[]string{"root-cert.pem (O=cluster.local sha256:", "is not the istio-ca-root-cert ConfigMap's root", "does not verify up to the istio-ca-root-cert ConfigMap's root"}},
		{"leaf from another CA", AgentFiles{pemOf(t, foreign, other.cert), pemOf(t, root.cert), pemOf(t, root.cert)},
			[]string{"does not verify up to the istio-ca-root-cert ConfigMap's root"}},
		{"chain out of order", AgentFiles{pemOf(t, leaf, other.cert), pemOf(t, root.cert), pemOf(t, root.cert)}, []string{"certificate 0 is not signed by certificate 1"}},
		{"no leaf", AgentFiles{Root: pemOf(t, root.cert), ConfigMapRoot: pemOf(t, root.cert)}, []string{"cert-chain.pem holds no certificate"}},
	} {
		err := CheckIssuedIdentity(tc.f, agentID)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: passed", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error lacks %q:\n%v", tc.name, w, err)
			}
		}
	}
}

// TestCheckIssuedLifetime: TTL + 2 minutes passes; SECRET_TTL ignored (the default served where
// 48h was asked) fails saying so; a CA that does not backdate fails.
func TestCheckIssuedLifetime(t *testing.T) {
	root := newCA(t, pkix.Name{Organization: []string{td}}, nil)
	cert := func(c *x509.Certificate) probe.Cert { l, _ := pemOf(t, c).Leaf(); return l }
	day, _ := leafCert(t, root, agentID, 24*time.Hour)
	twoDays, _ := leafCert(t, root, agentID, 48*time.Hour)
	now := time.Now().Truncate(time.Second)
	unbackdated, _ := leafCertAt(t, root, agentID, now, now.Add(24*time.Hour))
	for _, tc := range []struct {
		name string
		leaf *x509.Certificate
		ttl  time.Duration
		want string // "" passes
	}{
		{"default", day, 24 * time.Hour, ""},
		{"SECRET_TTL 48h", twoDays, 48 * time.Hour, ""},
		{"SECRET_TTL ignored", day, 48 * time.Hour, "the agent did not take SECRET_TTL=48h0m0s"},
		{"48h where the default was asked", twoDays, 24 * time.Hour, "CERT-007: the workload certificate lasts 48h2m0s"},
		{"no backdating", unbackdated, 24 * time.Hour, "lasts 24h0m0s"},
	} {
		err := CheckIssuedLifetime(cert(tc.leaf), tc.ttl)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// The files a real pilot-agent wrote after istiod's CA (release-1.31 source build) signed its
// CSR, recorded live once (2026-12-06; the agent logged "generated new workload certificate …
// ttl=23h59m59.4s"), with the namespace's istio-ca-root-cert: the judges pass on them as issued,
// and fail on them when a condition is broken (SECRET_TTL ignored, another identity wanted, a
// wrong root).
func TestJudgesOnRealIstiodCertificates(t *testing.T) {
	read := func(name string) probe.Chain {
		b, err := os.ReadFile(filepath.Join("testdata", "agent-certs", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := probe.ParseChain(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const id = "spiffe://cluster.local/ns/meshconform-cp003-control/sa/grpc-agent"
	real := AgentFiles{Chain: read("cert-chain.pem"), Root: read("root-cert.pem"), ConfigMapRoot: read("istio-ca-root-cert.pem")}
	if len(real.Chain.Certs) != 2 {
		t.Fatalf("cert-chain.pem holds %d certificates, want the leaf and istiod's root", len(real.Chain.Certs))
	}
	if err := CheckIssuedIdentity(real, id); err != nil {
		t.Errorf("as issued: %v", err)
	}
	leaf, _ := real.Chain.Leaf()
	if err := CheckIssuedLifetime(leaf, 24*time.Hour); err != nil {
		t.Errorf("as issued: %v", err)
	}
	if err := CheckIssuedLifetime(leaf, 48*time.Hour); err == nil || !strings.Contains(err.Error(), "did not take SECRET_TTL=48h0m0s") {
		t.Errorf("SECRET_TTL=48h ignored: %v", err)
	}
	if err := CheckIssuedIdentity(real, "spiffe://cluster.local/ns/meshconform-cp003-control/sa/default"); err == nil || !strings.Contains(err.Error(), "want exactly") {
		t.Errorf("another identity wanted: %v", err)
	}
	wrong := real
	wrong.ConfigMapRoot = pemOf(t, newCA(t, pkix.Name{Organization: []string{td}}, nil).cert)
	if err := CheckIssuedIdentity(wrong, id); err == nil || !strings.Contains(err.Error(), "is not the istio-ca-root-cert ConfigMap's root") ||
		!strings.Contains(err.Error(), "does not verify up to") {
		t.Errorf("a wrong root: %v", err)
	}
}
