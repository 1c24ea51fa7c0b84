package behaviors

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// TestMintedTokensVerifyAgainstTheJWKS checks the JWKS and tokens with an implementation that is
// not ours (go-jose): a valid token verifies against the JWKS and carries iss, sub and a future
// exp; an expired one verifies but fails its exp; one signed by the other key does not verify.
func TestMintedTokensVerifyAgainstTheJWKS(t *testing.T) {
	key, other := jwtKeys()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(JWKS(&key.PublicKey, jwtKeyID)), &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	pub := set.Key(jwtKeyID)
	if len(pub) != 1 {
		t.Fatalf("the JWKS has %d keys with kid %q", len(pub), jwtKeyID)
	}
	parse := func(tok string) (*josejwt.JSONWebToken, error) {
		return josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	}
	tok, err := MintJWT(key, jwtKeyID, jwtIssuer, jwtSubject, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	var claims josejwt.Claims
	if err := parsed.Claims(pub[0].Key, &claims); err != nil {
		t.Fatalf("a valid token does not verify against the JWKS: %v", err)
	}
	if err := claims.Validate(josejwt.Expected{Issuer: jwtIssuer, Subject: jwtSubject, Time: time.Now()}); err != nil {
		t.Errorf("valid token's claims: %v", err)
	}

	expired, _ := MintJWT(key, jwtKeyID, jwtIssuer, jwtSubject, time.Now().Add(-time.Hour))
	parsed, _ = parse(expired)
	if err := parsed.Claims(pub[0].Key, &claims); err != nil {
		t.Fatalf("the expired token's signature: %v", err)
	}
	if err := claims.Validate(josejwt.Expected{Time: time.Now()}); err == nil {
		t.Error("the expired token is not expired")
	}

	wrong, _ := MintJWT(other, jwtKeyID, jwtIssuer, jwtSubject, time.Now().Add(time.Hour))
	parsed, _ = parse(wrong)
	if err := parsed.Claims(pub[0].Key, &claims); err == nil {
		t.Error("a token signed by the other key verifies against the JWKS")
	}
	if h := bearer(false, jwtSubject, time.Hour)(testEnv())["Authorization"]; !strings.HasPrefix(h, "Bearer ey") {
		t.Errorf("bearer header %q", h)
	}
}

func TestCheckNoAuthorization(t *testing.T) {
	if err := CheckNoAuthorization(`{"headers":{"Accept":["*/*"]}}`); err != nil {
		t.Errorf("no Authorization: %v", err)
	}
	if err := CheckNoAuthorization(`{"headers":{"Authorization":["Bearer eyJ..."]}}`); err == nil {
		t.Error("a forwarded token passed")
	}
	if err := CheckNoAuthorization(`RBAC: access denied`); err == nil {
		t.Error("a body that is not an echo passed")
	}
}
