package catalog

import (
	"errors"
	"fmt"
	"strings"
)

// The proxyless data plane's outcome shapes: what Istio's echo client (pkg/test/echo/cmd/client)
// prints when grpc-go's xDS client and server enforce what istiod's grpc generator
// (pilot/pkg/networking/grpcgen) sent. Cited at the pinned commits: I31 = istio.io/istio
// release-1.31 @eed52ebb66ad (grpc-go v1.82.0, G82), I30 = release-1.30 @9739e10eb9d7 (grpc-go
// v1.83.1, G83); the cited lines agree in both unless a line says otherwise.

// gRPC status codes as status.Error prints them (google.golang.org/grpc/codes).
const (
	GRPCOK               = "OK"
	GRPCUnavailable      = "Unavailable"
	GRPCPermissionDenied = "PermissionDenied"
)

// Texts grpc-go prints for the proxyless outcomes.
const (
	// TextGRPCNoAllowMatch: ALLOW policies exist and none matched (G82 and G83
	// internal/xds/rbac/rbac_engine.go:100: status.Errorf(codes.PermissionDenied, "incoming RPC
	// did not match an allow policy")).
	TextGRPCNoAllowMatch = "incoming RPC did not match an allow policy"
	// TextGRPCDenyMatched: a DENY policy matched; grpc-go names it (rbac_engine.go:104:
	// "incoming RPC matched a deny policy %q"), grpcgen names policies <ns>-<name>-<rule#>
	// (I31 pilot/pkg/networking/grpcgen/lds.go:264).
	TextGRPCDenyMatched = "incoming RPC matched a deny policy"
	// TextGRPCNoPreface: a plaintext client's connection closed by a server that wants TLS
	// (internal/transport/http2_client.go, G82:1675, G83:1673: "error reading server preface: %v").
	TextGRPCNoPreface = "error reading server preface"
	// TextGRPCHandshakeFailed: a client that sends TLS to a plaintext server (G82
	// internal/transport/http2_client.go:297, G83 the same line: "transport: authentication
	// handshake failed: %v").
	TextGRPCHandshakeFailed = "authentication handshake failed"
)

var (
	// GRPCAllowed: the call went through: status OK and the echo reply's StatusCode=200
	// (I31 pkg/test/echo/server/endpoint/grpc.go writes it for every Echo).
	GRPCAllowed = Expectation{
		Name:       "GRPCAllowed",
		Documented: Shape{Name: "OK", GRPCCode: GRPCOK, BodyContains: "StatusCode=200"},
	}

	// GRPCPlaintextRejected: a STRICT port (grpcgen's single inbound-mtls chain with
	// RequireClientCertificate, I31 lds.go:144-148,167-169) closes a plaintext client's
	// connection in the TLS handshake; grpc-go's client sees no HTTP/2 preface. The
	// connection reset is the same rejection when the server closes with data unread.
	GRPCPlaintextRejected = Expectation{
		Name:       "GRPCPlaintextRejected",
		Documented: Shape{Name: "Unavailable, no server preface", GRPCCode: GRPCUnavailable, ErrorContains: TextGRPCNoPreface},
		Equivalents: []Shape{
			{Name: "Unavailable, reset", GRPCCode: GRPCUnavailable, ErrorContains: "connection reset by peer"},
		},
	}

	// GRPCNoAllowMatch: ALLOW policies apply to the port and none matched the call.
	GRPCNoAllowMatch = Expectation{
		Name:       "GRPCNoAllowMatch",
		Documented: Shape{Name: "PermissionDenied, no allow policy matched", GRPCCode: GRPCPermissionDenied, ErrorContains: TextGRPCNoAllowMatch},
	}

	// GRPCDenyMatched: a DENY policy matched the call.
	GRPCDenyMatched = Expectation{
		Name:       "GRPCDenyMatched",
		Documented: Shape{Name: "PermissionDenied, a deny policy matched", GRPCCode: GRPCPermissionDenied, ErrorContains: TextGRPCDenyMatched},
	}

	// GRPCHandshakeFailed: the client sends mTLS (DestinationRule ISTIO_MUTUAL) to a port that
	// serves plaintext, or plaintext where TLS is required by its DestinationRule's peer.
	GRPCHandshakeFailed = Expectation{
		Name:       "GRPCHandshakeFailed",
		Documented: Shape{Name: "Unavailable, handshake failed", GRPCCode: GRPCUnavailable, ErrorContains: TextGRPCHandshakeFailed},
	}
)

// ProxylessExpectations returns the proxyless shapes, for lookups by name.
func ProxylessExpectations() []Expectation {
	return []Expectation{GRPCAllowed, GRPCPlaintextRejected, GRPCNoAllowMatch, GRPCDenyMatched, GRPCHandshakeFailed}
}

// ProxylessVerdict says how a behaviour is judged on the proxyless data plane.
type ProxylessVerdict string

const (
	// ProxylessAnalogue: a gRPC analogue of the behaviour runs, and Istio's documented
	// semantics give its expected outcome.
	ProxylessAnalogue ProxylessVerdict = "analogue"
	// ProxylessDeviation: a gRPC analogue runs, expected to give Istio's documented outcome,
	// and the source predicts that proxyless gives another (the cell says which and why): the
	// run reports a deviation with its evidence, never a pass and never a skip.
	ProxylessDeviation ProxylessVerdict = "deviation"
	// ProxylessLeftOut: the behaviour has no proxyless meaning; the cell says why.
	ProxylessLeftOut ProxylessVerdict = "left out"
)

// proxylessHeader is the proxyless table's header.
var proxylessHeader = []string{colID, colProxyless, colOutcomes, colSource}

// Proxyless is one row of the catalog's proxyless table.
type Proxyless struct {
	Verdict ProxylessVerdict
	// Expected is the analogue and its expected outcome (Markdown as written); for a
	// deviation also what the source predicts instead.
	Expected string
	// Expectations are the gRPC shapes the analogue's probes are judged against.
	Expectations []Expectation
	// Source cites the grpcgen / grpc-go lines that produce the outcome.
	Source string
	// Reason is why the behaviour has no proxyless meaning (left out).
	Reason string
}

// Judged reports whether a proxyless run runs the behaviour's analogue.
func (p Proxyless) Judged() bool {
	return p.Verdict == ProxylessAnalogue || p.Verdict == ProxylessDeviation
}

// ParseProxyless reads a proxyless row's cells: `analogue: <outcome>`, `deviation: <outcome>`
// or `left out: <reason>`; the outcomes (proxyless shapes by name) and the source, both
// required unless left out.
func ParseProxyless(cell, outcomes, source string) (Proxyless, error) {
	verdict, rest, ok := strings.Cut(cell, ":")
	rest = strings.TrimSpace(rest)
	if !ok || rest == "" {
		return Proxyless{}, fmt.Errorf("%q: want `analogue: …`, `deviation: …` or `left out: <reason>`", cell)
	}
	p := Proxyless{Verdict: ProxylessVerdict(strings.TrimSpace(verdict)), Source: source}
	switch p.Verdict {
	case ProxylessLeftOut:
		p.Reason = rest
		if len(list(outcomes)) > 0 {
			return p, fmt.Errorf("left out, yet it names outcomes %q", outcomes)
		}
		return p, nil
	case ProxylessAnalogue, ProxylessDeviation:
		p.Expected = rest
	default:
		return p, fmt.Errorf("unknown verdict %q (analogue, deviation, left out)", verdict)
	}
	for _, name := range list(outcomes) {
		e, ok := LookupProxylessExpectation(name)
		if !ok {
			return p, fmt.Errorf("unknown proxyless outcome %q", name)
		}
		p.Expectations = append(p.Expectations, e)
	}
	if len(p.Expectations) == 0 || strings.TrimSpace(source) == "" || source == "—" {
		return p, errors.New("an analogue or deviation needs its outcomes and a source")
	}
	return p, nil
}

// LookupProxylessExpectation finds a proxyless shape by its Name.
func LookupProxylessExpectation(name string) (Expectation, bool) {
	for _, e := range ProxylessExpectations() {
		if e.Name == name {
			return e, true
		}
	}
	return Expectation{}, false
}

// NotJudgedInProxyless says why a proxyless run leaves b out, "" when it is judged there: its
// gRPC analogue (the proxyless table's analogue or deviation rows), or, with no row, a
// behaviour that needs no data plane (the control plane's). A behaviour that needs the data
// plane and has no analogue is never run the sidecar way under the proxyless mode's name.
func (b Behavior) NotJudgedInProxyless() string {
	switch {
	case b.Proxyless.Verdict == ProxylessLeftOut:
		return "not applicable to the proxyless data plane: " + b.Proxyless.Reason
	case b.Proxyless.Judged():
		return ""
	case b.HasLabel(LabelDataPlane) || b.HasLabel(LabelAgent):
		return "DATAPLANE_MODE=proxyless: no proxyless analogue is written for this behaviour (docs/behaviors.md, Proxyless data plane); judged the sidecar way its result would not be proxyless's"
	case b.Area == AreaPosture:
		return "DATAPLANE_MODE=proxyless: the posture specs mesh their fixtures the sidecar way; the proxyless half is not exercised"
	}
	return ""
}
