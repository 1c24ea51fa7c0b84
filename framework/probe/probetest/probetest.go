// Package probetest provides loopback servers that end connections the ways a mesh does
// (answer, reset, close, hang, TLS only) and a small mesh-like PKI, so that tier-0 tests run
// the real curl and openssl against real sockets. It reproduces TCP and TLS behaviour only;
// it is not a model of Istio.
package probetest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RequireTools fails the test when a binary tier 0 runs for real is missing.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found in PATH (%v): tier-0 tests run the real curl and openssl; apt-get install curl openssl", n, err)
		}
	}
}

// Behavior is what the server does with one connection after reading its request.
type Behavior func(c net.Conn, req *http.Request)

// Respond answers with an HTTP/1.1 response and closes.
func Respond(code int, body string, headers map[string]string) Behavior {
	return func(c net.Conn, _ *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
		keys := make([]string, 0, len(headers))
		for k := range headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s\r\n", k, headers[k])
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		_, _ = c.Write([]byte(b.String()))
	}
}

// EchoHeaders answers 200 with the request headers as httpbin's /headers does
// ({"headers": {...}}), and copies the named request headers into the response headers.
func EchoHeaders(copyToResponse ...string) Behavior {
	return func(c net.Conn, req *http.Request) {
		hs := map[string]string{}
		for k, v := range req.Header {
			hs[k] = strings.Join(v, ",")
		}
		hs["Host"] = req.Host
		body, _ := json.Marshal(map[string]any{"headers": hs})
		out := map[string]string{"Content-Type": "application/json"}
		for _, k := range copyToResponse {
			if v := req.Header.Get(k); v != "" {
				out[k] = v
			}
		}
		Respond(200, string(body), out)(c, req)
	}
}

// Reset aborts the connection with a TCP RST (SO_LINGER 0, then close), after the request
// was read, as a STRICT sidecar does once it has seen plaintext. Resetting right on accept
// is racy on loopback: curl then sees either exit 56 or exit 7.
func Reset() Behavior {
	return func(c net.Conn, _ *http.Request) {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
}

// CloseNoReply closes cleanly without answering (curl: exit 52, "Empty reply from server").
func CloseNoReply() Behavior { return func(net.Conn, *http.Request) {} }

// Server is a loopback HTTP/1.1 server whose behaviour can change while it runs.
type Server struct {
	l        net.Listener
	behavior atomic.Pointer[Behavior]
	hits     atomic.Int64
	hang     chan struct{}
	wg       sync.WaitGroup
}

// NewServer starts a server on 127.0.0.1 doing b; it stops when the test ends.
func NewServer(t testing.TB, b Behavior) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	s := &Server{l: l, hang: make(chan struct{})}
	s.Set(b)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Hang reads the request and never answers, until the server closes.
func (s *Server) Hang() Behavior {
	return func(net.Conn, *http.Request) { <-s.hang }
}

// Set changes what the server does with the next connections.
func (s *Server) Set(b Behavior) { s.behavior.Store(&b) }

// Hits counts the requests read.
func (s *Server) Hits() int { return int(s.hits.Load()) }

// Addr is host:port; URL is http://host:port/.
func (s *Server) Addr() string { return s.l.Addr().String() }
func (s *Server) URL() string  { return "http://" + s.Addr() + "/" }

// Close stops accepting, releases hanging connections and waits for the handlers.
func (s *Server) Close() {
	select {
	case <-s.hang:
	default:
		close(s.hang)
	}
	_ = s.l.Close()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			// Read the whole body now: closing with unread data would turn every close into a
			// reset. Behaviours get it back from req.Body.
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			s.hits.Add(1)
			(*s.behavior.Load())(c, req)
		}()
	}
}

// RefusedAddr is a loopback address nothing listens on (curl: exit 7).
func RefusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TLSServer accepts TLS on loopback with cert (its Certificate is the served chain) and the
// given ALPN protocols, completes the handshake and closes. Plaintext fails the handshake
// and is closed without a reply.
func TLSServer(t testing.TB, cert tls.Certificate, alpn ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn, MinVersion: tls.VersionTLS12})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { _ = tl.Close(); wg.Wait() })
	return l.Addr().String()
}

// PKI is a mesh-like CA: a self-signed root whose subject is O=<trust domain>, as istiod's
// self-signed root is, issuing leaves that carry only a SPIFFE URI SAN.
type PKI struct {
	TrustDomain string
	Root        *x509.Certificate
	rootKey     *ecdsa.PrivateKey
}

// NewPKI makes a root for trustDomain, valid for ten years from an hour ago.
func NewPKI(t testing.TB, trustDomain string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{trustDomain}},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &PKI{TrustDomain: trustDomain, Root: root, rootKey: key}
}

// SPIFFEID is spiffe://<trust domain>/ns/<ns>/sa/<sa>.
func (p *PKI) SPIFFEID(ns, sa string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", p.TrustDomain, ns, sa)
}

// Leaf issues a workload certificate for id with the given lifetime, served with the root.
func (p *PKI) Leaf(t testing.TB, id string, lifetime time.Duration) tls.Certificate {
	t.Helper()
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    now,
		NotAfter:     now.Add(lifetime),
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.Root, &key.PublicKey, p.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, p.Root.Raw}, PrivateKey: key}
}

// EnvWithoutProxy is this process's environment without proxy variables, for a
// probe.Local{Env: …}: curl would send loopback requests to an http_proxy otherwise.
func EnvWithoutProxy() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Silent accepts connections and never reads or writes until the test ends: a peer that
// neither answers nor closes.
func Silent(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}
