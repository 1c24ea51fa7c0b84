package behaviors

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/catalog"
	"meshconform/framework/ownership"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

const tlsIngressHost = "secure.meshconform.example"

// INGRESS-002: a gateway that accepts only TLS (seed 002). The spec makes a CA and a server
// certificate for the host, stores them only in the cluster, as the kubernetes.io/tls Secret the
// Gateway's credentialName names (in the gateway's own namespace, where istiod reads it), and
// checks that HTTPS with that CA gets through, HTTPS trusting another CA does not verify, and
// plain HTTP is redirected.
var _ = e2e.Register(e2e.Behavior{
	ID: "INGRESS-002", Name: "a TLS-only gateway serves HTTPS with the test's certificate and redirects HTTP with 301",
	Requires:   cases.Requires{IngressGateway: true},
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.PlainClient),
	Objects:    tlsIngress,
	// The Secret, created before the Gateway and deleted after the spec.
	Writes: func(e cases.Env) []cases.Write {
		_, _, certPEM, keyPEM, err := tlsMaterial(tlsIngressHost)
		if err != nil {
			panic(fmt.Sprintf("making the certificates: %v", err))
		}
		return []cases.Write{{Object: tlsSecret(e, nil, certPEM, keyPEM), Verbs: []cases.Verb{cases.Create, cases.Delete}}}
	},
	Run: func(ctx context.Context, t *e2e.T) {
		ca, other, certPEM, keyPEM, err := tlsMaterial(tlsIngressHost)
		if err != nil {
			t.Unjudged(fmt.Errorf("making the certificates: %w", err), nil)
		}
		gw := t.Env.Gateway
		secret := tlsSecret(t.Env, ownership.Labels(t.Run.State.RunID), certPEM, keyPEM)
		By(fmt.Sprintf("Secret %s/%s with the server certificate for %s", secret.Namespace, secret.Name, tlsIngressHost))
		if _, err := t.Run.Kube.CoreV1().Secrets(gw.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Unjudged(fmt.Errorf("creating Secret %s/%s: %w", secret.Namespace, secret.Name, err), nil)
		}
		DeferCleanup(func(ctx context.Context) {
			_ = t.Run.Kube.CoreV1().Secrets(gw.Namespace).Delete(ctx, secret.Name, metav1.DeleteOptions{})
		})
		t.Apply(ctx, tlsIngress(t.Env))
		https := cases.Target{Role: cases.Server, Sample: workload.Httpbin, ViaGateway: true, HTTPS: true, Host: tlsIngressHost, Path: "/get"}
		for _, p := range []cases.Probe{
			{Name: "https trusting the test's CA", From: plainClient, To: https, Expect: catalog.Allowed, CACert: func(cases.Env) string { return ca }},
			{Name: "https trusting another CA", From: plainClient, To: https, Expect: catalog.UntrustedCertificate, CACert: func(cases.Env) string { return other }},
			{Name: "plain http", From: plainClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, ViaGateway: true, Host: tlsIngressHost, Path: "/get"},
				Expect: catalog.HTTPSRedirect},
		} {
			By(fmt.Sprintf("%s expects %s", p.Name, p.Expect.Name))
			t.Converge(ctx, p)
		}
	},
})

// tlsSecret is the kubernetes.io/tls Secret the Gateway's credentialName (or, with the Gateway
// API, its https listener's certificateRefs) names, in the gateway's namespace, holding the server certificate chain and key.
func tlsSecret(e cases.Env, labels map[string]string, certPEM, keyPEM []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tlsSecretName(e), Namespace: e.Gateway.Namespace, Labels: labels},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
}

// tlsSecretName is unique per spec: the gateway chart's namespace is shared.
func tlsSecretName(e cases.Env) string { return "ingress-002-" + e.NS(cases.Server) }

// tlsIngress is what the spec applies: Istio's Gateway and VirtualService, or with
// INGRESS_API=gateway-api the Gateway API's Gateway (https listener with certificateRefs to the
// Secret, in the Gateway's namespace) and HTTPRoutes (the backend on https, a 301 redirect on
// http: the Gateway API's RequestRedirect defaults to 302).
func tlsIngress(e cases.Env) []policy.Object {
	if e.Gateway.GatewayAPI() {
		return specIngress(e, tlsIngressHost, tlsSecretName(e))
	}
	return []policy.Object{tlsGateway(e), tlsVirtualService(e)}
}

func tlsGateway(e cases.Env) policy.Object {
	return gateway(e, "tls-only",
		gatewayServer(443, "https", "HTTPS", tlsIngressHost, map[string]any{"mode": "SIMPLE", "credentialName": tlsSecretName(e)}),
		gatewayServer(80, "http", "HTTP", tlsIngressHost, map[string]any{"httpsRedirect": true}))
}

func tlsVirtualService(e cases.Env) policy.Object {
	return virtualService(e, "tls-only", tlsIngressHost, "tls-only")
}

// tlsMaterial makes a CA, a server certificate for host signed by it (PEM chain and key), and
// a second CA the server's certificate does not chain to. Nothing is written to disk.
func tlsMaterial(host string) (caPEM, otherPEM string, certPEM, keyPEM []byte, err error) {
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"meshconform"}},
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(der)
		return c, key, err
	}
	pemOf := func(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
	ca, caKey, err := newCA("meshconform INGRESS-002 CA")
	if err != nil {
		return "", "", nil, nil, err
	}
	other, _, err := newCA("meshconform other CA")
	if err != nil {
		return "", "", nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, nil, err
	}
	return string(pemOf(ca.Raw)), string(pemOf(other.Raw)), pemOf(der),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
