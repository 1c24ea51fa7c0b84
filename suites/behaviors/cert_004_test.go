package behaviors

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"istio.io/api/annotation"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
)

// TestCheckLifetime reads leaves through the real openssl, issued as Istio's CA issues
// them (NotBefore backdated 2 minutes) and as older releases did (no backdating), and
// judges them against 24h and 48h.
func TestCheckLifetime(t *testing.T) {
	root := newCA(t, pkix.Name{Organization: []string{td}}, nil)
	read := func(leaf *x509.Certificate, key *ecdsa.PrivateKey) probe.Cert {
		c, _ := testChain(t, key, leaf, root.cert).Leaf()
		return c
	}
	served := func(lifetime time.Duration) probe.Cert { return read(leafCert(t, root, serverID, lifetime)) }
	now := time.Now().Truncate(time.Second)
	unbackdated := read(leafCertAt(t, root, serverID, now, now.Add(24*time.Hour)))
	day, twoDays := served(24*time.Hour), served(48*time.Hour)
	if got := day.Lifetime(); got != 24*time.Hour+2*time.Minute {
		t.Fatalf("a 24h leaf backdated 2m reads as %v", got)
	}
	cases := []struct {
		name string
		leaf probe.Cert
		want time.Duration
		errs []string
	}{
		{"default 24h, backdated", day, DefaultCertLifetime, nil},
		{"SECRET_TTL 48h, backdated", twoDays, 48 * time.Hour, nil},
		{"no backdating", unbackdated, 24 * time.Hour, nil},
		{"24h where 48h was asked: the override was ignored", day, 48 * time.Hour,
			[]string{"lasts 24h2m0s", "want 48h0m0s ± 1h0m0s", "it is the 24h0m0s default", istionames.ProxyConfigAnnotation}},
		{"48h where the default was asked", twoDays, DefaultCertLifetime, []string{"lasts 48h2m0s", "want 24h0m0s"}},
		{"cut short by its signer", served(20 * time.Hour), DefaultCertLifetime, []string{"lasts 20h2m0s"}},
		{"no validity", probe.Cert{}, DefaultCertLifetime, []string{"no validity period"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckLifetime(c.leaf, c.want)
			if len(c.errs) == 0 {
				if err != nil {
					t.Fatalf("want pass: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got pass (lifetime %v, want %v)", c.leaf.Lifetime(), c.want)
			}
			for _, w := range c.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if c.want == DefaultCertLifetime && strings.Contains(err.Error(), "default: the proxy") {
				t.Errorf("the SECRET_TTL hint is given when the default was wanted:\n%v", err)
			}
		})
	}
	// The tolerance is an edge, not a slope: just inside passes, just outside fails.
	at := func(d time.Duration) probe.Cert {
		nb := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
		return probe.Cert{NotBefore: nb, NotAfter: nb.Add(d)}
	}
	if err := CheckLifetime(at(25*time.Hour), 24*time.Hour); err != nil {
		t.Errorf("24h+1h: %v", err)
	}
	if err := CheckLifetime(at(25*time.Hour+time.Second), 24*time.Hour); err == nil {
		t.Error("24h+1h1s passed")
	}
	if err := CheckLifetime(at(23*time.Hour-time.Second), 24*time.Hour); err == nil {
		t.Error("24h-1h1s passed")
	}
	if err := CheckLifetimeWithin(at(24*time.Hour+2*time.Minute), 24*time.Hour, time.Minute); err == nil {
		t.Error("a 1m tolerance accepted 2m")
	}
}

// TestSecretTTLAnnotation proves the annotation is what Istio reads: the key is Istio's
// ProxyConfig annotation, and the value, read as Istio reads it (YAML to JSON, then the
// ProxyConfig proto) but strictly (Istio ignores unknown fields, so a misspelt field would
// be dropped silently there), sets proxyMetadata.SECRET_TTL to a duration the agent parses.
func TestSecretTTLAnnotation(t *testing.T) {
	got := SecretTTLAnnotation("48h")
	want := map[string]string{"proxy.istio.io/config": `{"proxyMetadata":{"SECRET_TTL":"48h"}}`}
	if len(got) != 1 || got[istionames.ProxyConfigAnnotation] != want["proxy.istio.io/config"] {
		t.Fatalf("SecretTTLAnnotation(48h) = %v, want %v", got, want)
	}
	if istionames.ProxyConfigAnnotation != annotation.ProxyConfig.Name {
		t.Errorf("istionames.ProxyConfigAnnotation %q, Istio's is %q", istionames.ProxyConfigAnnotation, annotation.ProxyConfig.Name)
	}
	for _, ttl := range []string{"48h", "12h30m", `odd"value`} {
		v := SecretTTLAnnotation(ttl)[istionames.ProxyConfigAnnotation]
		js, err := yaml.YAMLToJSON([]byte(v))
		if err != nil {
			t.Fatalf("%q is not YAML: %v", v, err)
		}
		var pc meshconfig.ProxyConfig
		if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &pc); err != nil {
			t.Fatalf("%q is not a ProxyConfig: %v", v, err)
		}
		if pc.GetProxyMetadata()["SECRET_TTL"] != ttl {
			t.Errorf("%q: ProxyConfig.proxyMetadata = %v, want SECRET_TTL=%q", v, pc.GetProxyMetadata(), ttl)
		}
		var raw map[string]map[string]string
		if err := json.Unmarshal([]byte(v), &raw); err != nil || len(raw) != 1 {
			t.Errorf("%q: not a one-field JSON object (%v)", v, err)
		}
	}
	// The strict read is what makes the check above mean something: a misspelt field fails it.
	var pc meshconfig.ProxyConfig
	if err := protojson.Unmarshal([]byte(`{"proxyMetaData":{"SECRET_TTL":"48h"}}`), &pc); err == nil {
		t.Error("a misspelt proxyMetadata was accepted by the strict read")
	}
	if d, err := time.ParseDuration("48h"); err != nil || d != 48*time.Hour {
		t.Errorf("the agent's parser reads 48h as %v, %v", d, err)
	}
}
