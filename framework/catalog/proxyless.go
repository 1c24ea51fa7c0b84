package catalog

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
