package behaviors

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestTLSMaterial: the Secret's certificate and key are a pair, the certificate verifies for the
// host against the test's CA and not against the other CA.
func TestTLSMaterial(t *testing.T) {
	ca, other, certPEM, keyPEM, err := tlsMaterial(tlsIngressHost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key are not a pair: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(caPEM string) error {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			t.Fatalf("no certificate in %q", caPEM)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tlsIngressHost})
		return err
	}
	if err := verify(ca); err != nil {
		t.Errorf("against the test's CA: %v", err)
	}
	if err := verify(other); err == nil {
		t.Error("the certificate verifies against the other CA")
	}
	if leaf.DNSNames[0] != tlsIngressHost {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
}
