package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/probe/probetest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// classified checks how an outcome is judged against an expectation.
func classified(t *testing.T, o probe.Outcome, e catalog.Expectation, want expect.Classification) {
	t.Helper()
	got, reason := expect.Classify(e, o)
	if got != want {
		t.Errorf("%s: classified %s, want %s: %s\n%s", e.Name, got, want, reason, o)
	}
}

// TestCurlLoopback runs the real curl through Local against loopback servers that end the
// connection each way a mesh does, and checks the Outcome and its classification.
// envoyRetriedTLS is the 503 body a sidecar returns after mTLS to a plaintext port (Envoy's
// router.cc Filter::onUpstreamReset), as reported from Istio 1.21/1.22 in istio/istio#53368.
const envoyRetriedTLS = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end:TLS_error_end"

func TestCurlLoopback(t *testing.T) {
	probetest.RequireTools(t, "curl")
	type judged struct {
		e    catalog.Expectation
		want expect.Classification
	}
	cases := []struct {
		name     string
		url      func(t *testing.T) string
		timeout  time.Duration
		code     int
		exit     int
		errLine  string // substring of ErrorLine; "" means ErrorLine must be empty
		body     string // exact body
		classify []judged
	}{
		{
			name: "200",
			url:  func(t *testing.T) string { return probetest.NewServer(t, probetest.Respond(200, "hello", nil)).URL() },
			code: 200, exit: 0, body: "hello",
			classify: []judged{{catalog.Allowed, expect.Documented}, {catalog.PlaintextRejected, expect.Deviation}},
		},
		{
			name: "reset after the request (a STRICT sidecar given plaintext)",
			url:  func(t *testing.T) string { return probetest.NewServer(t, probetest.Reset()).URL() },
			code: 0, exit: 56, errLine: "curl: (56) Recv failure: Connection reset by peer",
			classify: []judged{{catalog.PlaintextRejected, expect.Documented}, {catalog.DisableVsStrict, expect.Equivalent}, {catalog.Allowed, expect.Deviation},
				{catalog.TCPForbidden, expect.Equivalent}, {catalog.BlackHole, expect.Equivalent}},
		},
		{
			name: "403 RBAC",
			url: func(t *testing.T) string {
				return probetest.NewServer(t, probetest.Respond(403, "RBAC: access denied", map[string]string{"Content-Type": "text/plain"})).URL()
			},
			code: 403, exit: 0, body: "RBAC: access denied",
			classify: []judged{{catalog.RBACDenied, expect.Documented}, {catalog.Denied403, expect.Documented}, {catalog.Allowed, expect.Deviation}},
		},
		{
			name: "403 other body",
			url: func(t *testing.T) string {
				return probetest.NewServer(t, probetest.Respond(403, "forbidden", nil)).URL()
			},
			code: 403, exit: 0, body: "forbidden",
			classify: []judged{{catalog.RBACDenied, expect.Deviation}, {catalog.Denied403, expect.Documented}},
		},
		{
			name: "503 connection termination (DISABLE vs STRICT)",
			url: func(t *testing.T) string {
				return probetest.NewServer(t, probetest.Respond(503, catalog.TextConnectionTermReset, nil)).URL()
			},
			code: 503, exit: 0, body: "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
			classify: []judged{{catalog.DisableVsStrict, expect.Documented}, {catalog.UpstreamConnectError, expect.Equivalent}, {catalog.PlaintextRejected, expect.Deviation}},
		},
		{
			name: "503 another reset reason",
			url: func(t *testing.T) string {
				return probetest.NewServer(t, probetest.Respond(503, catalog.TextUpstreamConnect+". reset reason: remote reset", nil)).URL()
			},
			code: 503, exit: 0, body: catalog.TextUpstreamConnect + ". reset reason: remote reset",
			classify: []judged{{catalog.DisableVsStrict, expect.Equivalent}, {catalog.UpstreamConnectError, expect.Equivalent}},
		},
		{
			// MTLS-010: the client's sidecar retried a failed TLS handshake and gave up.
			name: "503 TLS error, retried (mTLS to a plaintext port)",
			url: func(t *testing.T) string {
				return probetest.NewServer(t, probetest.Respond(503, envoyRetriedTLS, nil)).URL()
			},
			code: 503, exit: 0, body: envoyRetriedTLS,
			classify: []judged{{catalog.UpstreamConnectError, expect.Documented}, {catalog.DisableVsStrict, expect.Equivalent}},
		},
		{
			// A TLS-only listener fails the handshake on plaintext and closes without a byte:
			// curl says "Empty reply from server" (52), not 56.
			name: "TLS-only listener given plaintext",
			url: func(t *testing.T) string {
				pki := probetest.NewPKI(t, "cluster.local")
				return "http://" + probetest.TLSServer(t, pki.Leaf(t, pki.SPIFFEID("ns", "sa"), 24*time.Hour), "istio") + "/"
			},
			code: 0, exit: 52, errLine: "curl: (52) Empty reply from server",
			classify: []judged{{catalog.PlaintextRejected, expect.Equivalent}, {catalog.Allowed, expect.Deviation}},
		},
		{
			name: "close without a reply",
			url:  func(t *testing.T) string { return probetest.NewServer(t, probetest.CloseNoReply()).URL() },
			code: 0, exit: 52, errLine: "curl: (52) Empty reply from server",
			classify: []judged{{catalog.PlaintextRejected, expect.Equivalent}, {catalog.UpstreamConnectError, expect.Equivalent},
				{catalog.TCPForbidden, expect.Documented}, {catalog.BlackHole, expect.Equivalent}},
		},
		{
			name: "refused port",
			url:  func(t *testing.T) string { return "http://" + probetest.RefusedAddr(t) + "/" },
			code: 0, exit: 7, errLine: "curl: (7) Failed to connect to 127.0.0.1",
			classify: []judged{{catalog.PlaintextRejected, expect.Equivalent}, {catalog.DisableVsStrict, expect.Deviation}},
		},
		{
			name: "timeout",
			url: func(t *testing.T) string {
				s := probetest.NewServer(t, nil)
				s.Set(s.Hang())
				return s.URL()
			},
			timeout: 500 * time.Millisecond,
			code:    0, exit: 28, errLine: "curl: (28) Operation timed out",
			classify: []judged{{catalog.PlaintextRejected, expect.Deviation}, {catalog.Allowed, expect.Deviation}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{URL: c.url(t), Timeout: c.timeout})
			if err != nil {
				t.Fatalf("Curl: %v\n%s", err, o)
			}
			if o.HTTPCode != c.code || o.CurlExit != c.exit || o.ExitCode != c.exit {
				t.Errorf("got http_code=%03d curl_exit=%d transport_exit=%d, want %03d/%d/%d\n%s", o.HTTPCode, o.CurlExit, o.ExitCode, c.code, c.exit, c.exit, o)
			}
			if c.errLine == "" && o.ErrorLine != "" || !strings.Contains(o.ErrorLine, c.errLine) {
				t.Errorf("error line %q, want it to contain %q\n%s", o.ErrorLine, c.errLine, o)
			}
			if o.Body != c.body {
				t.Errorf("body %q, want %q", o.Body, c.body)
			}
			if o.Attempts != 1 || o.Where != "local" || len(o.Notes) != 0 || o.Command[0] != "curl" {
				t.Errorf("attempts %d, where %q, notes %q, command %q: want 1, local, none, curl…", o.Attempts, o.Where, o.Notes, o.Command)
			}
			if o.Duration <= 0 || o.Elapsed < o.Duration {
				t.Errorf("duration %v (curl time_total), elapsed %v: want 0 < duration ≤ elapsed", o.Duration, o.Elapsed)
			}
			for _, j := range c.classify {
				classified(t, o, j.e, j.want)
			}
		})
	}
}

// TestCurlBodyFraming proves that the body comes back byte for byte whatever it holds (no
// trailing newline, a forged marker, binary) and that a large one is cut to an excerpt.
func TestCurlBodyFraming(t *testing.T) {
	probetest.RequireTools(t, "curl")
	for name, body := range map[string]string{
		"no trailing newline": "abc",
		"trailing newlines":   "abc\n\n",
		"forged marker":       "x\n@@meshconform-0000000000000000W http_code=200\n{}\n@@meshconform-0000000000000000E\n",
		"binary":              "\x00\x01\xff\xfe\n\r\n",
		"empty":               "",
	} {
		t.Run(name, func(t *testing.T) {
			s := probetest.NewServer(t, probetest.Respond(200, body, nil))
			o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{URL: s.URL()})
			if err != nil {
				t.Fatalf("Curl: %v", err)
			}
			if o.Body != body || o.BodyBytes != len(body) || o.BodyTruncated || o.HTTPCode != 200 {
				t.Errorf("body %q (%d bytes, truncated %v, code %d), want %q\n%s", o.Body, o.BodyBytes, o.BodyTruncated, o.HTTPCode, body, o)
			}
		})
	}
	t.Run("large", func(t *testing.T) {
		body := strings.Repeat("é", probe.MaxBodyExcerpt) // 2 bytes a rune: cut inside a rune
		s := probetest.NewServer(t, probetest.Respond(200, body, nil))
		o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{URL: s.URL()})
		if err != nil {
			t.Fatalf("Curl: %v", err)
		}
		if !o.BodyTruncated || o.BodyBytes != len(body) || len(o.Body) > probe.MaxBodyExcerpt || !strings.HasPrefix(body, o.Body) || len(o.Body) < probe.MaxBodyExcerpt-1 {
			t.Errorf("excerpt of %d bytes (truncated %v, total %d), want the first ≤%d bytes on a rune boundary of %d", len(o.Body), o.BodyTruncated, o.BodyBytes, probe.MaxBodyExcerpt, len(body))
		}
		if !strings.Contains(o.String(), "body (first ") {
			t.Errorf("String() does not say the body was cut:\n%s", o)
		}
	})
}

// TestCurlMethodHeadersBody checks that method, request headers and body reach the server.
func TestCurlMethodHeadersBody(t *testing.T) {
	probetest.RequireTools(t, "curl")
	s := probetest.NewServer(t, func(c net.Conn, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		probetest.Respond(201, fmt.Sprintf("%s %s x-test=%q body=%q", req.Method, req.URL.Path, req.Header.Get("X-Test"), b), nil)(c, req)
	})
	o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{
		URL: s.URL() + "post", Method: "post", Headers: map[string]string{"X-Test": "a b;c"}, Body: `{"k": "it's"}`,
	})
	if err != nil {
		t.Fatalf("Curl: %v", err)
	}
	want := `POST /post x-test="a b;c" body="{\"k\": \"it's\"}"`
	if o.HTTPCode != 201 || o.Body != want {
		t.Errorf("got %03d %q, want 201 %q\n%s", o.HTTPCode, o.Body, want, o)
	}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestCurlXFCC reads an X-Forwarded-Client-Cert value back from a header-echo server
// (httpbin's /headers shape, and as a response header) and parses it.
func TestCurlXFCC(t *testing.T) {
	probetest.RequireTools(t, "curl")
	const (
		by   = "spiffe://cluster.local/ns/NS/sa/httpbin"
		uri  = "spiffe://cluster.local/ns/NS/sa/sleep"
		hash = "4c4ba20ca9bbb3d4b06c3bd6c8ff8d48bf1a1ca5e7d1d5b5b4b11a8b5ca2a2a1"
	)
	xfcc := "By=" + by + ";Hash=" + hash + `;Subject="";URI=` + uri
	s := probetest.NewServer(t, probetest.EchoHeaders("X-Forwarded-Client-Cert"))
	o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{
		URL:            s.URL() + "headers",
		Headers:        map[string]string{"X-Forwarded-Client-Cert": xfcc},
		CaptureHeaders: []string{"x-forwarded-client-cert", "content-type", "x-absent"},
	})
	if err != nil {
		t.Fatalf("Curl: %v", err)
	}
	classified(t, o, catalog.Allowed, expect.Documented)
	if got := o.Headers["x-forwarded-client-cert"]; got != xfcc {
		t.Fatalf("captured header %q, want %q\n%s", got, xfcc, o)
	}
	if o.Headers["content-type"] != "application/json" || len(o.Headers) != 2 {
		t.Errorf("captured %v, want x-forwarded-client-cert and content-type only", o.Headers)
	}
	fromBody, err := probe.EchoedHeader(o.Body, "x-forwarded-client-cert")
	if err != nil || fromBody != xfcc {
		t.Fatalf("EchoedHeader: %q, %v; want %q", fromBody, err, xfcc)
	}
	els, err := probe.ParseXFCC(fromBody)
	if err != nil {
		t.Fatalf("ParseXFCC: %v", err)
	}
	if len(els) != 1 {
		t.Fatalf("%d elements, want 1: %+v", len(els), els)
	}
	e := els[0]
	if e.By != by || !hex64.MatchString(e.Hash) || e.Subject != "" || len(e.URI) != 1 || e.URI[0] != uri {
		t.Errorf("parsed %+v, want By=%s, Hash of 64 hex, Subject empty, URI=[%s]", e, by, uri)
	}
}

// lossy is a transport that loses stdout on its first calls or reports a wrong exit code:
// what cilium and Kuma saw between API server and kubelet. It fakes the transport only.
type lossy struct {
	inner        probe.Executor
	loseStdout   int // calls whose stdout is dropped
	cutStdout    int // calls whose stdout is cut in half
	exitOverride *int
	calls        int
}

func (l *lossy) String() string { return "lossy(" + l.inner.String() + ")" }

func (l *lossy) Exec(ctx context.Context, cmd []string) (probe.ExecResult, error) {
	l.calls++
	res, err := l.inner.Exec(ctx, cmd)
	switch {
	case l.calls <= l.loseStdout:
		res.Stdout = nil
	case l.calls <= l.loseStdout+l.cutStdout:
		res.Stdout = res.Stdout[:len(res.Stdout)/2]
	}
	if l.exitOverride != nil {
		res.ExitCode = *l.exitOverride
	}
	return res, err
}

func TestCurlDoesNotBelieveEmptyStdout(t *testing.T) {
	probetest.RequireTools(t, "curl")
	s := probetest.NewServer(t, probetest.Reset())

	t.Run("lost once, then seen", func(t *testing.T) {
		ex := &lossy{inner: local, loseStdout: 1}
		o, err := probe.Curl(ctxT(t), ex, probe.HTTPRequest{URL: s.URL(), RetryDelay: time.Millisecond})
		if err != nil {
			t.Fatalf("Curl: %v\n%s", err, o)
		}
		if o.Attempts != 2 || ex.calls != 2 || o.CurlExit != 56 {
			t.Errorf("attempts %d (calls %d), exit %d; want 2 attempts and exit 56\n%s", o.Attempts, ex.calls, o.CurlExit, o)
		}
		if len(o.Notes) != 1 || !strings.Contains(o.Notes[0], "retried: attempt 1: stdout incomplete: stdout empty") {
			t.Errorf("notes %q, want the retry recorded", o.Notes)
		}
		classified(t, o, catalog.PlaintextRejected, expect.Documented)
	})

	t.Run("cut once, then seen", func(t *testing.T) {
		ok := probetest.NewServer(t, probetest.Respond(200, strings.Repeat("b", 100), nil))
		ex := &lossy{inner: local, cutStdout: 1}
		o, err := probe.Curl(ctxT(t), ex, probe.HTTPRequest{URL: ok.URL(), RetryDelay: time.Millisecond})
		if err != nil || o.Attempts != 2 || o.HTTPCode != 200 || len(o.Body) != 100 {
			t.Errorf("got %v, attempts %d, code %d, body %d bytes; want 2 attempts, 200, 100 bytes\n%s", err, o.Attempts, o.HTTPCode, len(o.Body), o)
		}
	})

	t.Run("always lost", func(t *testing.T) {
		ex := &lossy{inner: local, loseStdout: 100}
		o, err := probe.Curl(ctxT(t), ex, probe.HTTPRequest{URL: s.URL(), Attempts: 4, RetryDelay: time.Millisecond})
		if err == nil {
			t.Fatalf("Curl believed an empty stdout:\n%s", o)
		}
		for _, want := range []string{"no usable output after 4 attempt(s)", "attempt 4: stdout incomplete: stdout empty", "transport exit 56", "Recv failure: Connection reset by peer"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\nwant it to contain %q", err, want)
			}
		}
		if o.Attempts != 4 || ex.calls != 4 || o.ErrorLine != "curl: (56) Recv failure: Connection reset by peer" {
			t.Errorf("outcome after failure: attempts %d (calls %d), error line %q; want 4 and curl's line kept", o.Attempts, ex.calls, o.ErrorLine)
		}
	})

	t.Run("exit code lost or wrong", func(t *testing.T) {
		for _, code := range []int{-1, 0} {
			ex := &lossy{inner: local, exitOverride: &code}
			o, err := probe.Curl(ctxT(t), ex, probe.HTTPRequest{URL: s.URL()})
			if err != nil {
				t.Fatalf("Curl: %v", err)
			}
			if o.CurlExit != 56 || o.ExitCode != code {
				t.Errorf("transport exit %d: got curl exit %d, transport %d; want 56 from curl's JSON", code, o.CurlExit, o.ExitCode)
			}
			noted := strings.Contains(strings.Join(o.Notes, ";"), "transport reported exit 0, curl reported 56")
			if noted != (code == 0) {
				t.Errorf("transport exit %d: notes %q", code, o.Notes)
			}
		}
	})
}

func TestMissingBinary(t *testing.T) {
	const missing = "meshconform-no-such-binary"
	o, err := probe.Curl(ctxT(t), local, probe.HTTPRequest{URL: "http://127.0.0.1:1/", Binary: missing})
	var mb *probe.MissingBinaryError
	if !errors.As(err, &mb) || mb.Binary != missing || !strings.Contains(err.Error(), "apt-get install curl openssl") {
		t.Errorf("Curl with a missing binary: %v (%T), want a MissingBinaryError naming %s and the fix", err, err, missing)
	}
	if o.Attempts != 1 {
		t.Errorf("attempts %d, want no retry for a missing binary", o.Attempts)
	}
	// Through sh -c the shell reports it: exit 127 and "not found".
	_, _, err = probe.OpenSSLChain(ctxT(t), local, probe.TLSRequest{Host: "127.0.0.1", Port: 1, Binary: missing})
	if !errors.As(err, &mb) || mb.Binary != missing {
		t.Errorf("OpenSSLChain with a missing binary: %v (%T), want a MissingBinaryError naming %s", err, err, missing)
	}
}

// TestOpenSSLChain reads a mesh-like chain (root O=cluster.local, leaf with a SPIFFE URI SAN,
// 24h) from a TLS server with the real openssl s_client -alpn istio -showcerts.
func TestOpenSSLChain(t *testing.T) {
	probetest.RequireTools(t, "openssl")
	pki := probetest.NewPKI(t, "cluster.local")
	id := pki.SPIFFEID("NS", "httpbin")
	addr := probetest.TLSServer(t, pki.Leaf(t, id, 24*time.Hour), "istio")
	host, port := splitHostPort(t, addr)

	ch, o, err := probe.OpenSSLChain(ctxT(t), local, probe.TLSRequest{Host: host, Port: port, ServerName: "httpbin.NS", ALPN: []string{"istio"}})
	if err != nil {
		t.Fatalf("OpenSSLChain: %v\n%s", err, o)
	}
	if len(ch.Certs) != 2 {
		t.Fatalf("%d certificates, want leaf and root:\n%s", len(ch.Certs), ch)
	}
	leaf, _ := ch.Leaf()
	root, _ := ch.Root()
	if len(root.Organization) != 1 || root.Organization[0] != "cluster.local" || !root.IsCA || root.Subject != "O=cluster.local" {
		t.Errorf("root %s (org %v, CA %v), want subject O=cluster.local", root, root.Organization, root.IsCA)
	}
	if leaf.SPIFFEID() != id || len(leaf.URIs) != 1 || leaf.Issuer != "O=cluster.local" {
		t.Errorf("leaf %s, want URI SAN %s issued by O=cluster.local", leaf, id)
	}
	if leaf.Lifetime() != 24*time.Hour {
		t.Errorf("leaf lifetime %v, want 24h", leaf.Lifetime())
	}
	if ch.ALPN != "istio" || ch.Protocol != "TLSv1.3" || ch.Cipher == "" || !strings.HasPrefix(ch.Verify, "19 ") {
		t.Errorf("handshake summary: %s; want alpn istio, TLSv1.3, a cipher, verify 19 (self-signed root not trusted)", ch)
	}
	if o.Tool != probe.ToolOpenSSL || o.Command[0] != "sh" || !strings.Contains(o.Command[2], "-alpn istio -showcerts -connect "+addr+" -servername httpbin.NS </dev/null") {
		t.Errorf("outcome tool %q command %q", o.Tool, o.Command)
	}
	if strings.Contains(o.Body, "BEGIN CERTIFICATE") || !strings.Contains(o.Body, "[PEM omitted]") {
		t.Errorf("outcome body should be the summary without PEM:\n%s", o.Body)
	}

	t.Run("silent peer", func(t *testing.T) {
		host, port := splitHostPort(t, probetest.Silent(t))
		begin := time.Now()
		_, _, err := probe.OpenSSLChain(ctxT(t), local, probe.TLSRequest{Host: host, Port: port, Timeout: 300 * time.Millisecond})
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 5*time.Second {
			t.Errorf("OpenSSLChain to a silent peer: %v after %v; want the 300ms timeout", err, time.Since(begin))
		}
	})

	t.Run("refused", func(t *testing.T) {
		host, port := splitHostPort(t, probetest.RefusedAddr(t))
		ch, o, err := probe.OpenSSLChain(ctxT(t), local, probe.TLSRequest{Host: host, Port: port})
		if err == nil || len(ch.Certs) != 0 {
			t.Fatalf("OpenSSLChain to a refused port: %v, %d certs; want an error", err, len(ch.Certs))
		}
		if o.ExitCode == 0 || !strings.Contains(o.ErrorLine, "Connection refused") {
			t.Errorf("exit %d, error line %q; want non-zero and Connection refused\n%s", o.ExitCode, o.ErrorLine, o)
		}
	})
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// local runs commands here without proxy variables, so loopback requests stay loopback.
var local = probe.Local{Env: probetest.EnvWithoutProxy()}

// TestCurlPathAsIs: with --path-as-is (AUTHZ-007's raw paths) the real curl sends `..` and its
// percent-encoded forms as written; without it, curl squashes `/../` itself and the proxy never
// sees it.
func TestCurlPathAsIs(t *testing.T) {
	seen := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.RequestURI }))
	defer srv.Close()
	for _, tc := range []struct {
		path  string
		extra []string
		want  string
	}{
		{"/headers/../status/200", []string{"--path-as-is"}, "/headers/../status/200"},
		{"/headers/%2E%2E/status/200", []string{"--path-as-is"}, "/headers/%2E%2E/status/200"},
		{"/headers/../status/200", nil, "/status/200"},
	} {
		o, err := probe.Curl(context.Background(), probe.Local{}, probe.HTTPRequest{URL: srv.URL + tc.path, ExtraArgs: tc.extra})
		if err != nil || o.HTTPCode != 200 {
			t.Fatalf("%s: %v %v", tc.path, o, err)
		}
		if got := <-seen; got != tc.want {
			t.Errorf("%s with %v: the server saw %q, want %q", tc.path, tc.extra, got, tc.want)
		}
	}
}

// TestCurlCACert: with CACert the real curl trusts exactly those certificates: a server whose
// chain they sign answers 200, one signed by another CA fails verification (exit 60), and the
// file the command wrote is gone afterwards.
func TestCurlCACert(t *testing.T) {
	const host = "ingress.meshconform.example"
	ca, caKey := testCA(t, "meshconform test CA")
	other, _ := testCA(t, "another CA")
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: leafKey}}}
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pemOf := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	for _, tc := range []struct {
		name     string
		ca       string
		code     int
		curlExit int
	}{{"the server's CA", pemOf(ca), 200, 0}, {"another CA", pemOf(other), 0, 60}} {
		req := probe.HTTPRequest{URL: fmt.Sprintf("https://%s:%d/", host, port), CACert: tc.ca,
			ExtraArgs: []string{"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, port)}}
		o, err := probe.Curl(context.Background(), probe.Local{}, req)
		if err != nil || o.HTTPCode != tc.code || o.CurlExit != tc.curlExit {
			t.Errorf("%s: %v (%v), want %d and exit %d", tc.name, o, err, tc.code, tc.curlExit)
		}
	}
	if left, _ := filepath.Glob("/tmp/meshconform-ca-*.pem"); len(left) > 0 {
		t.Errorf("CA files left behind: %v", left)
	}
}

func testCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
