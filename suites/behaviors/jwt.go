package behaviors

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/policy"
	"meshconform/suites/cases"
)

// What JWT-001 and JWT-002 share: a key pair made when first needed (no key is committed, none
// outlives the process), its JWKS given inline to the RequestAuthentication (no JWKS server),
// and tokens minted at probe time: valid, expired, and signed by another key.
const (
	jwtIssuer  = "meshconform.example/issuer"
	jwtSubject = "conformance-client"
	jwtKeyID   = "meshconform"
)

var jwtKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("generating the JWT key: %v", err))
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("generating the other JWT key: %v", err))
	}
	return key, other
})

// JWKS is the JSON Web Key Set (RFC 7517) of pub, as RequestAuthentication's jwtRules.jwks
// takes it.
func JWKS(pub *rsa.PublicKey, kid string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	data, err := json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return string(data)
}

// MintJWT is an RS256 JWT (RFC 7519) signed by key, with header kid, claims iss and sub, issued
// an hour before exp, expiring at exp.
func MintJWT(key *rsa.PrivateKey, kid, iss, sub string, exp time.Time) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{"iss": iss, "sub": sub, "iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()})
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

// bearer returns a probe's Headers for a token minted when the probe runs: by the JWKS's key,
// or (wrongKey) by the other one, for subject sub, expiring at now+ttl (ttl < 0: expired).
func bearer(wrongKey bool, sub string, ttl time.Duration) func(cases.Env) map[string]string {
	return func(cases.Env) map[string]string {
		key, other := jwtKeys()
		if wrongKey {
			key = other
		}
		tok, err := MintJWT(key, jwtKeyID, jwtIssuer, sub, time.Now().Add(ttl))
		if err != nil {
			panic(fmt.Sprintf("minting a JWT: %v", err))
		}
		return map[string]string{"Authorization": "Bearer " + tok}
	}
}

// requestAuthentication is JWT-001's RequestAuthentication on httpbin: tokens of jwtIssuer,
// checked against the inline JWKS of the run's key.
func requestAuthentication(e cases.Env) policy.Object {
	return requestAuthenticationFor(e, "jwt", "httpbin")
}

// requestAuthenticationFor is requestAuthentication named name, on the pods labelled app=app.
func requestAuthenticationFor(e cases.Env, name, app string) policy.Object {
	key, _ := jwtKeys()
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
		"metadata": map[string]any{"name": name, "namespace": e.NS(cases.Server)},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": app}},
			"jwtRules": []any{map[string]any{"issuer": jwtIssuer, "jwks": JWKS(&key.PublicKey, jwtKeyID)}},
		},
	}}
}

// CheckNoAuthorization asserts that httpbin's /headers echo has no Authorization header: the
// proxy removed the token after validating it (jwtRules.forwardOriginalToken defaults to false).
func CheckNoAuthorization(body string) error {
	return checkNotEchoed(body, "Authorization", "the proxy forwarded the token")
}
