package probe_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/probe/probetest"
	"meshconform/framework/wait"
	"meshconform/internal/istiosrc"
	"meshconform/internal/kindtest"
)

// echoServer runs Istio's real echo server with one plain gRPC port on loopback (no xDS: the
// port is not also an --xds-grpc-server port) and returns that port once the real client gets
// an answer from it.
func echoServer(t *testing.T, server, client string) int {
	t.Helper()
	ports := kindtest.FreePorts(t, 3) // distinct: the server binds all three
	grpcPort, httpPort, tcpPort := ports[0], ports[1], ports[2]
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, server, "--grpc="+strconv.Itoa(grpcPort), "--port="+strconv.Itoa(httpPort),
		"--tcp="+strconv.Itoa(tcpPort), "--bind-localhost="+strconv.Itoa(grpcPort)+","+strconv.Itoa(httpPort)+","+strconv.Itoa(tcpPort))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	req := probe.GRPCRequest{URL: fmt.Sprintf("grpc://127.0.0.1:%d", grpcPort), Binary: client, Timeout: 2 * time.Second}
	_, err := wait.Until(context.Background(), wait.Config{Timeout: 30 * time.Second, Poll: 100 * time.Millisecond, Consecutive: 1},
		func(ctx context.Context) (probe.Outcome, error) { return probe.GRPC(ctx, probe.Local{}, req) },
		func(o probe.Outcome) bool { return o.GRPCCode == probe.GRPCOK })
	if err != nil {
		t.Fatalf("the echo server on %d never answered: %v\nserver log:\n%s", grpcPort, err, log.String())
	}
	return grpcPort
}

// TestGRPCRealEcho runs Istio's echo server and client of release-1.31 (built from the pinned
// commit, as the proxyless image is) on loopback, and reads what the real client prints: a
// call answered (OK, StatusCode=200), a port that refuses, and a plaintext call to a port that
// speaks only TLS (what a STRICT proxyless port does to a plaintext client: the handshake fails
// and the connection is closed). Each outcome is judged against the proxyless shapes, so a
// parser or a shape that stops reading the real text fails here.
func TestGRPCRealEcho(t *testing.T) {
	server, client := probetest.EchoBinaries(t, istiosrc.Release131)
	port := echoServer(t, server, client)
	ctx := ctxT(t)

	ok, err := probe.GRPC(ctx, probe.Local{}, probe.GRPCRequest{URL: fmt.Sprintf("grpc://127.0.0.1:%d", port), Binary: client,
		Headers: map[string]string{"x-meshconform": "probe"}})
	if err != nil {
		t.Fatal(err)
	}
	if ok.GRPCCode != probe.GRPCOK || ok.HTTPCode != 200 || ok.ExitCode != 0 || ok.ErrorLine != "" {
		t.Errorf("answered call: %s", ok)
	}
	if !strings.Contains(ok.Body, "RequestHeader=x-meshconform:probe") {
		t.Errorf("the header did not reach the server as metadata: %s", ok.Body)
	}
	classified(t, ok, catalog.GRPCAllowed, expect.Documented)
	classified(t, ok, catalog.GRPCNoAllowMatch, expect.Deviation)
	classified(t, ok, catalog.Allowed, expect.Deviation) // a gRPC outcome is never a curl one

	refused, err := probe.GRPC(ctx, probe.Local{}, probe.GRPCRequest{URL: "grpc://" + probetest.RefusedAddr(t), Binary: client, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if refused.GRPCCode != catalog.GRPCUnavailable || refused.ExitCode != 1 || !strings.Contains(refused.ErrorLine, "connection refused") || refused.HTTPCode != -1 {
		t.Errorf("refused: %s", refused)
	}
	// Refused is not how STRICT rejects plaintext: the server is not there at all.
	classified(t, refused, catalog.GRPCPlaintextRejected, expect.Deviation)
	classified(t, refused, catalog.GRPCAllowed, expect.Deviation)

	pki := probetest.NewPKI(t, "cluster.local")
	tlsOnly := probetest.TLSServer(t, pki.Leaf(t, pki.SPIFFEID("ns", "server"), time.Hour), "h2")
	plain, err := probe.GRPC(ctx, probe.Local{}, probe.GRPCRequest{URL: "grpc://" + tlsOnly, Binary: client, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plaintext to a TLS-only port: %s", plain.ErrorLine)
	if plain.GRPCCode != catalog.GRPCUnavailable || plain.ExitCode != 1 {
		t.Errorf("plaintext to TLS: %s", plain)
	}
	classified(t, plain, catalog.GRPCPlaintextRejected, expect.Documented)
	classified(t, plain, catalog.PlaintextRejected, expect.Deviation)
}

// TestParseGRPC reads the echo client's failure lines as the real client printed them in the
// live tier's proxyless phase (release-1.31 source build, 2026-12-06, the conformance report's
// evidence of AUTHZ-002 and AUTHZ-006): Istio's logger's fatal line on stdout, exit 1, grpc-go's
// xDS server wrapping the RBAC engine's status with the node id (so the code appears twice and
// the documented text follows "Incoming RPC is not allowed"); and a success whose exit status
// the transport lost.
func TestParseGRPC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		res    probe.ExecResult
		code   string
		status int
		want   catalog.Expectation
	}{
		{"no allow policy matched (AUTHZ-002 live)", probe.ExecResult{ExitCode: 1, Stdout: []byte("2026-12-06T17:20:49.489243Z\tfatal\tError 1/1 requests had errors; first error: rpc error: code = PermissionDenied desc = [xDS node id: sidecar~10.244.0.12~echo-server-6445f98b76-nhfgb.authz-002-server-tb7ltccm-z8nn7~authz-002-server-tb7ltccm-z8nn7.svc.cluster.local]: Incoming RPC is not allowed: rpc error: code = PermissionDenied desc = incoming RPC did not match an allow policy\n\n")},
			catalog.GRPCPermissionDenied, -1, catalog.GRPCNoAllowMatch},
		{"deny policy matched (AUTHZ-006 live)", probe.ExecResult{ExitCode: 1, Stdout: []byte("2026-12-06T17:22:18.323464Z\tfatal\tError 1/1 requests had errors; first error: rpc error: code = PermissionDenied desc = [xDS node id: sidecar~10.244.0.18~echo-server-6445f98b76-wlhxp.authz-006-server-tb7ltccm-7uw6j~authz-006-server-tb7ltccm-7uw6j.svc.cluster.local]: Incoming RPC is not allowed: rpc error: code = PermissionDenied desc = incoming RPC matched a deny policy \"authz-006-server-tb7ltccm-7uw6j-deny-echo-0\"\n\n")},
			catalog.GRPCPermissionDenied, -1, catalog.GRPCDenyMatched},
		{"lost exit status", probe.ExecResult{ExitCode: -1, Stdout: []byte("[0] Latency=4ms\n[0 body] StatusCode=200\n[0 body] Proto=GRPC\n")},
			probe.GRPCOK, 200, catalog.GRPCAllowed},
	} {
		o := probe.ParseGRPC(tc.res)
		if o.GRPCCode != tc.code || o.HTTPCode != tc.status {
			t.Errorf("%s: %s", tc.name, o)
		}
		if c, why := expect.Classify(tc.want, o); c != expect.Documented {
			t.Errorf("%s: %s %s", tc.name, c, why)
		}
		// The other PermissionDenied text is not this one: a deny is never read as no allow.
		for _, other := range []catalog.Expectation{catalog.GRPCNoAllowMatch, catalog.GRPCDenyMatched} {
			if other.Name != tc.want.Name && o.GRPCCode == catalog.GRPCPermissionDenied {
				if c, _ := expect.Classify(other, o); c != expect.Deviation {
					t.Errorf("%s: judged %s against %s", tc.name, c, other.Name)
				}
			}
		}
	}
}
