package catalog

import (
	"fmt"
	"strings"
)

// Any matches every value of Shape.HTTPCode or Shape.CurlExit.
const Any = -1

// Shape is one way a probe can end: curl's HTTP code (0 for curl's "000", no response) and
// exit code, and text that must appear in curl's error line or in the response body; "…" in
// that text stands for any text, so the pieces around it must appear in that order (Envoy
// writes the reset reason between fixed words). Empty strings and Any match everything.
//
// A shape with GRPCCode set is a gRPC shape (the proxyless data plane's, proxyless.go): it
// matches only outcomes of Istio's echo client, by their gRPC status code, error text and reply
// (MatchesGRPC), and HTTPCode and CurlExit are not read; a shape without it never matches a gRPC
// outcome, so that a proxyless result is never judged as a curl one, nor the other way.
type Shape struct {
	Name          string
	HTTPCode      int
	CurlExit      int
	ErrorContains string
	BodyContains  string
	GRPCCode      string
}

// Matches reports whether an observed outcome has this shape. It takes plain values so
// that catalog depends on nothing else of ours.
func (s Shape) Matches(httpCode, curlExit int, errorLine, body string) bool {
	if s.HTTPCode != Any && s.HTTPCode != httpCode {
		return false
	}
	if s.CurlExit != Any && s.CurlExit != curlExit {
		return false
	}
	return containsInOrder(errorLine, s.ErrorContains) && containsInOrder(body, s.BodyContains)
}

// MatchesGRPC reports whether an echo-client outcome (its gRPC status code, error line and
// printed reply) has this shape; false for a shape that is not a gRPC one.
func (s Shape) MatchesGRPC(code, errorLine, body string) bool {
	if s.GRPCCode == "" || s.GRPCCode != code {
		return false
	}
	return containsInOrder(errorLine, s.ErrorContains) && containsInOrder(body, s.BodyContains)
}

// containsInOrder reports whether text holds the pieces of want between its "…", in order.
func containsInOrder(text, want string) bool {
	for piece := range strings.SplitSeq(want, "…") {
		i := strings.Index(text, piece)
		if i < 0 {
			return false
		}
		text = text[i+len(piece):]
	}
	return true
}

// String prints the shape the way curl reports it: http_code=000 exit=56 error~"…" body~"…".
func (s Shape) String() string {
	var b strings.Builder
	if s.Name != "" {
		fmt.Fprintf(&b, "%s: ", s.Name)
	}
	if s.GRPCCode != "" {
		fmt.Fprintf(&b, "grpc code=%s", s.GRPCCode)
		if s.ErrorContains != "" {
			fmt.Fprintf(&b, " error~%q", s.ErrorContains)
		}
		if s.BodyContains != "" {
			fmt.Fprintf(&b, " body~%q", s.BodyContains)
		}
		return b.String()
	}
	switch s.HTTPCode {
	case Any:
		b.WriteString("http_code=any")
	default:
		fmt.Fprintf(&b, "http_code=%03d", s.HTTPCode)
	}
	switch s.CurlExit {
	case Any:
		b.WriteString(" exit=any")
	default:
		fmt.Fprintf(&b, " exit=%d", s.CurlExit)
	}
	if s.ErrorContains != "" {
		fmt.Fprintf(&b, " error~%q", s.ErrorContains)
	}
	if s.BodyContains != "" {
		fmt.Fprintf(&b, " body~%q", s.BodyContains)
	}
	return b.String()
}

// Expectation is what BEHAVIORS.md documents for a probe (Documented) and the other shapes
// of the same result known from other Istio versions (Equivalents, the Tolerance section).
// Anything else is a deviation.
type Expectation struct {
	Name        string
	Documented  Shape
	Equivalents []Shape
}

// String lists the documented shape and the equivalents, for failure messages.
func (e Expectation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: documented {%s}", e.Name, e.Documented)
	if len(e.Equivalents) > 0 {
		b.WriteString("; equivalent")
		for i, s := range e.Equivalents {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " {%s}", s)
		}
	}
	return b.String()
}

// Texts printed by Envoy and curl, as the seed documents quote them.
const (
	TextConnectionReset     = "Recv failure: Connection reset by peer"
	TextRBACDenied          = "RBAC: access denied"
	TextUpstreamConnect     = "upstream connect error or disconnect/reset before headers"
	TextConnectionTermReset = TextUpstreamConnect + ". reset reason: connection termination"
	// TextRetriedTLSError is Envoy's body when the default retry policy retried a failed TLS
	// handshake and the last attempt failed too (router.cc Filter::onUpstreamReset writes
	// "retried and the latest " when the request was retried, the reset reason, then ",
	// transport failure reason: " and the TLS error).
	TextRetriedTLSError = TextUpstreamConnect + ". retried and the latest reset reason: …, transport failure reason: TLS_error"
)

var (
	// Allowed: the request went through (seed 001 step 6: `200`).
	Allowed = Expectation{
		Name:       "Allowed",
		Documented: Shape{Name: "200", HTTPCode: 200, CurlExit: 0},
	}

	// PlaintextRejected: a STRICT server resets a plaintext connection (seeds 000, 001:
	// `curl: (56) Recv failure: Connection reset by peer`, `000`). Other Istio versions and
	// meshes have shown the rejection as exit 52, 35, 16 or 7 (BEHAVIORS.md, Tolerance).
	PlaintextRejected = Expectation{
		Name:       "PlaintextRejected",
		Documented: Shape{Name: "reset", HTTPCode: 0, CurlExit: 56, ErrorContains: TextConnectionReset},
		Equivalents: []Shape{
			{Name: "receive error", HTTPCode: 0, CurlExit: 56},
			{Name: "empty reply", HTTPCode: 0, CurlExit: 52},
			{Name: "TLS connect error", HTTPCode: 0, CurlExit: 35},
			{Name: "HTTP/2 error", HTTPCode: 0, CurlExit: 16},
			{Name: "connection refused", HTTPCode: 0, CurlExit: 7},
		},
	}

	// RBACDenied: Envoy's RBAC filter answers (seeds 000, 004).
	RBACDenied = Expectation{
		Name:       "RBACDenied",
		Documented: Shape{Name: "403 RBAC", HTTPCode: 403, CurlExit: 0, BodyContains: TextRBACDenied},
	}

	// Denied403: a 403 whatever the body (AUTHZ-004, where the document prints only the code).
	Denied403 = Expectation{
		Name:       "Denied403",
		Documented: Shape{Name: "403", HTTPCode: 403, CurlExit: 0},
	}

	// DisableVsStrict: a mesh client told to send plaintext (DestinationRule DISABLE) to a
	// STRICT server gets Envoy's 503 (seed 004); some versions reset instead (Tolerance).
	DisableVsStrict = Expectation{
		Name:       "DisableVsStrict",
		Documented: Shape{Name: "503 connection termination", HTTPCode: 503, CurlExit: 0, BodyContains: TextConnectionTermReset},
		Equivalents: []Shape{
			{Name: "reset", HTTPCode: 0, CurlExit: 56},
			{Name: "503 other reset reason", HTTPCode: 503, CurlExit: 0, BodyContains: TextUpstreamConnect},
		},
	}

	// UpstreamConnectError: the client's sidecar sends mTLS to a port whose app speaks
	// plaintext (MTLS-010). The handshake fails, the default retry policy retries it
	// (connect-failure), and Envoy's 503 says so and names the TLS error. Any other failure
	// of the client is an equivalent, and the report shows which was seen.
	UpstreamConnectError = Expectation{
		Name:       "UpstreamConnectError",
		Documented: Shape{Name: "503 TLS error, retried", HTTPCode: 503, CurlExit: 0, BodyContains: TextRetriedTLSError},
		Equivalents: []Shape{
			{Name: "503 other upstream reset", HTTPCode: 503, CurlExit: 0, BodyContains: TextUpstreamConnect},
			{Name: "503", HTTPCode: 503, CurlExit: 0},
			{Name: "reset", HTTPCode: 0, CurlExit: 56},
			{Name: "empty reply", HTTPCode: 0, CurlExit: 52},
		},
	}
)

// More shapes, for the behaviours of BEHAVIORS-next.md.
var (
	// TCPForbidden: an AuthorizationPolicy denies a TCP connection. The sidecar's network RBAC
	// filter closes it with no response: Istio's own check for a denied TCP call is an EOF
	// (check.Forbidden, echo/check/checkers.go:221-222), which curl reports as an empty reply
	// (52). A reset (56) is how ztunnel denies it (ambient baseline_test.go's CheckDeny: "EOF:
	// TCP envoy", "connection reset: TCP ztunnel"): for the sidecar an equivalent.
	TCPForbidden = Expectation{
		Name:        "TCPForbidden",
		Documented:  Shape{Name: "empty reply", HTTPCode: 0, CurlExit: 52},
		Equivalents: []Shape{{Name: "reset", HTTPCode: 0, CurlExit: 56}},
	}

	// JWTRejected: a RequestAuthentication refuses a token it cannot validate (expired, or
	// signed by another key) with 401; the body says why and is kept as evidence.
	JWTRejected = Expectation{
		Name:       "JWTRejected",
		Documented: Shape{Name: "401", HTTPCode: 401, CurlExit: 0},
	}

	// UntrustedCertificate: the client does not trust the server's certificate (curl exit 60,
	// "SSL certificate problem"), so no HTTP exchange happens.
	UntrustedCertificate = Expectation{
		Name:       "UntrustedCertificate",
		Documented: Shape{Name: "certificate not trusted", HTTPCode: 0, CurlExit: 60},
	}

	// HTTPSRedirect: a gateway server with tls.httpsRedirect answers plain HTTP with 301.
	HTTPSRedirect = Expectation{
		Name:       "HTTPSRedirect",
		Documented: Shape{Name: "301", HTTPCode: 301, CurlExit: 0},
	}

	// BlackHole: outboundTrafficPolicy REGISTRY_ONLY blocks a call to a host the sidecar does
	// not know. On a port where the sidecar has an HTTP listener the BlackHole virtual host
	// answers 502 (httproute.go's catch-all route); on any other port the TCP catch-all sends
	// the connection to the BlackHoleCluster, which closes it: the same block, an equivalent.
	BlackHole = Expectation{
		Name:       "BlackHole",
		Documented: Shape{Name: "502", HTTPCode: 502, CurlExit: 0},
		Equivalents: []Shape{
			{Name: "TCP black hole, empty reply", HTTPCode: 0, CurlExit: 52},
			{Name: "TCP black hole, reset", HTTPCode: 0, CurlExit: 56},
		},
	}
)

// Expectations returns every named expectation, for reports and lookups by name.
func Expectations() []Expectation {
	return []Expectation{Allowed, PlaintextRejected, RBACDenied, Denied403, DisableVsStrict, UpstreamConnectError,
		TCPForbidden, JWTRejected, BlackHole, UntrustedCertificate, HTTPSRedirect}
}

// LookupExpectation finds an expectation by its Name.
func LookupExpectation(name string) (Expectation, bool) {
	for _, e := range Expectations() {
		if e.Name == name {
			return e, true
		}
	}
	return Expectation{}, false
}
