package probe

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// TLSRequest is one `openssl s_client` call.
type TLSRequest struct {
	Host string
	Port int
	// ServerName is sent as SNI (-servername); default Host.
	ServerName string
	// ALPN protocols offered; Istio's mTLS listener matches "istio" (seed 000 uses -alpn istio).
	ALPN []string
	// Binary is the openssl to run; default "openssl".
	Binary string
	// Timeout bounds the call (s_client itself has none for a silent peer); 0 means
	// DefaultTLSTimeout.
	Timeout time.Duration
}

func (r TLSRequest) binary() string {
	if r.Binary == "" {
		return "openssl"
	}
	return r.Binary
}

// DefaultTLSTimeout bounds an s_client call when TLSRequest.Timeout is 0.
const DefaultTLSTimeout = 30 * time.Second

// OpenSSLCommand builds `sh -c 'exec openssl s_client … </dev/null'`: the shell gives
// s_client an empty stdin so it quits after the handshake, which a pod exec without stdin
// does not promise; exec leaves no shell between the caller and openssl.
func OpenSSLCommand(req TLSRequest) []string {
	sni := req.ServerName
	if sni == "" {
		sni = req.Host
	}
	args := []string{req.binary(), "s_client"}
	if len(req.ALPN) > 0 {
		args = append(args, "-alpn", strings.Join(req.ALPN, ","))
	}
	args = append(args, "-showcerts", "-connect", net.JoinHostPort(req.Host, strconv.Itoa(req.Port)))
	if sni != "" && net.ParseIP(sni) == nil {
		args = append(args, "-servername", sni)
	}
	return []string{"sh", "-c", "exec " + shellJoin(args) + " </dev/null"}
}

// Cert is one certificate of a served chain, with the fields the behaviours check.
type Cert struct {
	Subject, Issuer     string
	Organization        []string
	CommonName          string
	URIs, DNSNames      []string
	NotBefore, NotAfter time.Time
	IsCA                bool
	X509                *x509.Certificate
}

// Lifetime is NotAfter - NotBefore (CERT-004: 24h by default).
func (c Cert) Lifetime() time.Duration { return c.NotAfter.Sub(c.NotBefore) }

// SPIFFEID is the first spiffe:// URI SAN, or "".
func (c Cert) SPIFFEID() string {
	for _, u := range c.URIs {
		if strings.HasPrefix(u, "spiffe://") {
			return u
		}
	}
	return ""
}

func (c Cert) String() string {
	s := fmt.Sprintf("subject=%q issuer=%q valid %s..%s (%v)", c.Subject, c.Issuer,
		c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), c.Lifetime())
	if len(c.URIs) > 0 {
		s += fmt.Sprintf(" uri=%v", c.URIs)
	}
	if len(c.DNSNames) > 0 {
		s += fmt.Sprintf(" dns=%v", c.DNSNames)
	}
	return s
}

// Chain is what s_client printed: the certificates as served (leaf first) and the
// handshake summary.
type Chain struct {
	Certs []Cert
	// ALPN is the negotiated protocol ("" when s_client says "No ALPN negotiated").
	ALPN string
	// Protocol and Cipher from the "New, TLSv1.3, Cipher is …" line.
	Protocol, Cipher string
	// Verify is s_client's "Verify return code" line, e.g. "19 (self-signed certificate in
	// certificate chain)": s_client here has no trust anchors for the mesh.
	Verify string
}

// Leaf is the first certificate served; false when none was.
func (c Chain) Leaf() (Cert, bool) {
	if len(c.Certs) == 0 {
		return Cert{}, false
	}
	return c.Certs[0], true
}

// Root is the last certificate served (Istio serves its root with the chain); false when none was.
func (c Chain) Root() (Cert, bool) {
	if len(c.Certs) == 0 {
		return Cert{}, false
	}
	return c.Certs[len(c.Certs)-1], true
}

func (c Chain) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d certificate(s), protocol %s, cipher %s, alpn %q, verify %s", len(c.Certs),
		orNone(c.Protocol), orNone(c.Cipher), c.ALPN, orNone(c.Verify))
	for i, cert := range c.Certs {
		fmt.Fprintf(&b, "\n  %d: %s", i, cert)
	}
	return b.String()
}

var (
	reNewLine  = regexp.MustCompile(`(?m)^New, (\S+), Cipher is (\S+)`)
	reALPN     = regexp.MustCompile(`(?m)^ALPN protocol: (\S+)`)
	reVerify   = regexp.MustCompile(`(?m)^\s*Verify return code: (.+)$`)
	reErrLines = regexp.MustCompile(`(?m)^.*(?:errno=|error:|:error:|connect: ).*$`)
)

// ParseChain reads s_client -showcerts output: every CERTIFICATE PEM block, in order,
// and the handshake summary lines.
func ParseChain(text string) (Chain, error) {
	var ch Chain
	rest := []byte(text)
	for i := 0; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return ch, fmt.Errorf("certificate %d: %w", i, err)
		}
		ch.Certs = append(ch.Certs, certOf(c))
	}
	if m := reNewLine.FindStringSubmatch(text); m != nil {
		ch.Protocol, ch.Cipher = m[1], m[2]
	}
	if m := reALPN.FindStringSubmatch(text); m != nil {
		ch.ALPN = m[1]
	}
	if m := reVerify.FindStringSubmatch(text); m != nil {
		ch.Verify = strings.TrimSpace(m[1])
	}
	if len(ch.Certs) == 0 {
		return ch, errors.New("no certificate in the output (was the handshake refused? see stderr)")
	}
	return ch, nil
}

func certOf(c *x509.Certificate) Cert {
	out := Cert{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		Organization: c.Subject.Organization,
		CommonName:   c.Subject.CommonName,
		DNSNames:     c.DNSNames,
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		IsCA:         c.IsCA,
		X509:         c,
	}
	for _, u := range c.URIs {
		out.URIs = append(out.URIs, u.String())
	}
	return out
}

// withoutPEM drops the PEM blocks from s_client's output, keeping the readable summary.
func withoutPEM(text string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "-----BEGIN "):
			in = true
			b.WriteString("[PEM omitted]\n")
		case strings.HasPrefix(l, "-----END "):
			in = false
		case !in:
			b.WriteString(l + "\n")
		}
	}
	return strings.TrimSpace(b.String())
}

// OpenSSLChain runs openssl s_client through ex and parses the chain the server served.
// A non-zero exit with certificates printed is not an error (a server that wants a client
// certificate ends the handshake after sending its own); no certificate is.
func OpenSSLChain(ctx context.Context, ex Executor, req TLSRequest) (Chain, Outcome, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTLSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	begin := time.Now()
	cmd := OpenSSLCommand(req)
	res, err := ex.Exec(ctx, cmd)
	o := Outcome{Tool: ToolOpenSSL, HTTPCode: -1, CurlExit: -1, ExitCode: res.ExitCode, Where: ex.String(),
		Command: cmd, Stderr: string(res.Stderr), Attempts: 1}
	o.Elapsed = time.Since(begin)
	o.Duration = o.Elapsed
	o.Body, o.BodyBytes, o.BodyTruncated = excerpt([]byte(withoutPEM(string(res.Stdout))))
	if m := reErrLines.FindString(string(res.Stderr)); m != "" {
		o.ErrorLine = strings.TrimSpace(m)
	}
	if mb := missingBinary(req.binary(), ex.String(), res, err); mb != nil {
		return Chain{}, o, mb
	}
	if err != nil {
		return Chain{}, o, fmt.Errorf("openssl s_client to %s:%d via %s: %w", req.Host, req.Port, ex, err)
	}
	if len(res.Stdout) == 0 {
		return Chain{}, o, fmt.Errorf("openssl s_client to %s:%d via %s: empty stdout (exit %d, stderr %q)",
			req.Host, req.Port, ex, res.ExitCode, clip(strings.TrimSpace(o.Stderr), 300))
	}
	ch, perr := ParseChain(string(res.Stdout))
	if perr != nil {
		return ch, o, fmt.Errorf("openssl s_client to %s:%d via %s: %w\n%s", req.Host, req.Port, ex, perr, o)
	}
	return ch, o, nil
}
