package behaviors

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshconform/framework/probe"
)

// ca is a signing certificate of a test PKI: a root (self-signed) or an intermediate.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serials atomic.Int64

func nextSerial() *big.Int { return big.NewInt(serials.Add(1)) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCA makes a CA certificate with subject, signed by parent (self-signed when nil).
func newCA(t testing.TB, subject pkix.Name, parent *ca) *ca {
	t.Helper()
	key := newKey(t)
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               subject,
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert: c, key: key}
}

// leafCert issues a workload certificate as Istio's CA does: empty subject, one SPIFFE URI
// SAN, NotBefore backdated by 2 minutes, NotAfter lifetime after issuance.
func leafCert(t testing.TB, parent *ca, spiffe string, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey) {
	now := time.Now().Truncate(time.Second)
	return leafCertAt(t, parent, spiffe, now.Add(-2*time.Minute), now.Add(lifetime))
}

// leafCertAt issues a workload certificate valid from notBefore to notAfter.
func leafCertAt(t testing.TB, parent *ca, spiffe string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	u, err := url.Parse(spiffe)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{u},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, &key.PublicKey, parent.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// serveTLS accepts TLS on loopback, serving chain (leaf first) with ALPN "istio" and, like
// Istio's mTLS listener, asking for a client certificate; it completes (or fails) each
// handshake and closes. It returns host and port.
func serveTLS(t testing.TB, key *ecdsa.PrivateKey, chain ...*x509.Certificate) (string, int) {
	t.Helper()
	cert := tls.Certificate{PrivateKey: key}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"istio"},
		ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	t.Cleanup(func() { _ = tl.Close(); wg.Wait() })
	host, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := strconv.Atoi(port)
	return host, p
}

func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found in PATH (%v): tier-0 tests run the real tool; apt-get install %s", name, err, name)
	}
}

// testChain serves chain and reads it back with the real openssl s_client, as CERT-002
// does from the istio-proxy container.
func testChain(t *testing.T, key *ecdsa.PrivateKey, chain ...*x509.Certificate) probe.Chain {
	t.Helper()
	requireTool(t, "openssl")
	host, port := serveTLS(t, key, chain...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, o, err := probe.OpenSSLChain(ctx, probe.Local{}, probe.TLSRequest{Host: host, Port: port, ServerName: "httpbin.ns", ALPN: []string{"istio"}})
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, o)
	}
	if len(ch.Certs) != len(chain) {
		t.Fatalf("s_client printed %d certificates, the server sent %d\n%s", len(ch.Certs), len(chain), ch)
	}
	return ch
}
