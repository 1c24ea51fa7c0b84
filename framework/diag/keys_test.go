package diag

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// testKey is a freshly generated private key in PEM, and the strings that would betray it
// if any survived redaction.
type testKey struct {
	Kind   string // "RSA", "EC", "PKCS8"
	PEM    string
	Signer crypto.Signer
}

// Leaks are substrings of the key that must appear nowhere after redaction: each base64
// body line of the PEM, the middle of the DER's base64, and the base64 of the whole PEM
// (as Secret data and Envoy inline_bytes carry it).
func (k testKey) Leaks() []string {
	var out []string
	for _, l := range strings.Split(k.PEM, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	block, _ := pem.Decode([]byte(k.PEM))
	der := base64.StdEncoding.EncodeToString(block.Bytes)
	out = append(out, der[len(der)/2:len(der)/2+24], base64.StdEncoding.EncodeToString([]byte(k.PEM)))
	return out
}

func genKeys(t testing.TB) []testKey {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	return []testKey{
		{"RSA", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey},
		{"EC", enc("EC PRIVATE KEY", ecDER), ecKey},
		{"PKCS8", enc("PRIVATE KEY", p8), ecKey},
	}
}

// genCert is a self-signed certificate in PEM: public, it must survive redaction.
func genCert(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return certFor(t, key)
}

// certFor is a self-signed certificate for key, so that a TLS Secret holds a matching pair.
func certFor(t testing.TB, key crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// assertNoKey fails when out holds any trace of k, or the words "PRIVATE KEY".
func assertNoKey(t testing.TB, where, out string, keys ...testKey) {
	t.Helper()
	if strings.Contains(out, "PRIVATE KEY") {
		i := strings.Index(out, "PRIVATE KEY")
		t.Errorf("%s: still holds %q at byte %d: ...%s...", where, "PRIVATE KEY", i, around(out, i))
	}
	for _, k := range keys {
		for _, leak := range k.Leaks() {
			if i := strings.Index(out, leak); i >= 0 {
				t.Errorf("%s: still holds %s key material at byte %d: ...%s...", where, k.Kind, i, around(out, i))
			}
		}
	}
}

func around(s string, i int) string {
	lo, hi := max(0, i-60), min(len(s), i+60)
	return s[lo:hi]
}

// dig walks decoded JSON by keys (string) and indexes (int), failing the test on a miss.
func dig(t testing.TB, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("dig %v: at %q, not an object: %T", path, k, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("dig %v: at [%d], not an array that long: %T", path, k, v)
			}
			v = a[k]
		}
	}
	return v
}

// unreachableConfig points at a port nothing listens on.
func unreachableConfig() *rest.Config {
	return &rest.Config{Host: "http://127.0.0.1:1", Timeout: time.Second}
}
