package behaviors

import (
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
)

// caBundlePEM is a CA certificate in PEM, as istiod patches into the webhook.
func caBundlePEM(t *testing.T) []byte {
	t.Helper()
	root := newCA(t, pkix.Name{Organization: []string{td}}, nil)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw})
}

func TestInjectorNames(t *testing.T) {
	if got := InjectorSelector(""); got != "app=sidecar-injector,istio.io/rev=default" {
		t.Errorf("InjectorSelector(\"\") = %q", got)
	}
}

func TestCABundleProblems(t *testing.T) {
	good := caBundlePEM(t)
	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})
	keyOnly := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")})
	cases := []struct {
		name   string
		bundle []byte
		want   string // "" passes
	}{
		{"one certificate", good, ""},
		{"two certificates", append(append([]byte{}, good...), good...), ""},
		{"empty", nil, "clientConfig.caBundle is empty"},
		{"base64 of something, not PEM", []byte("bm90IGEgY2VydGlmaWNhdGU="), "is not PEM certificates: no PEM block found"},
		{"a corrupt certificate after a good one", append(append([]byte{}, good...), corrupt...), "is not PEM certificates: certificate 1:"},
		{"a key, no certificate", keyOnly, "holds no CERTIFICATE block"},
	}
	for _, c := range cases {
		mwc := &admissionv1.MutatingWebhookConfiguration{Webhooks: []admissionv1.MutatingWebhook{{Name: "w", ClientConfig: admissionv1.WebhookClientConfig{CABundle: c.bundle}}}}
		mwc.Name = "istio-sidecar-injector"
		got := caBundleProblems(mwc)
		switch {
		case c.want == "" && len(got) != 0:
			t.Errorf("%s: want no problem, got %q", c.name, got)
		case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want) || !strings.Contains(got[0], "istio-sidecar-injector webhooks[0] (w)")):
			t.Errorf("%s: got %q, want one naming the webhook and %q", c.name, got, c.want)
		}
	}
	if got := caBundleProblems(&admissionv1.MutatingWebhookConfiguration{}); len(got) != 1 || !strings.Contains(got[0], "has no webhooks") {
		t.Errorf("no webhooks: %q", got)
	}
}
