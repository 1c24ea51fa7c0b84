package probe

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCurlCommand(t *testing.T) {
	cmd := CurlCommand(HTTPRequest{
		URL: "http://httpbin.ns:8000/post", Method: "post", Body: "a=b",
		Headers:  map[string]string{"X-B": "2", "X-A": "1"},
		Timeout:  1500 * time.Millisecond,
		Insecure: true, ExtraArgs: []string{"--resolve", "h:80:10.0.0.1"},
	}, "@@m")
	want := []string{"curl", "-sS", "-o", "-", "-w", `\n@@mW http_code=%{http_code}\n%{json}\n@@mH\n%{header_json}\n@@mE\n`,
		"-X", "POST", "-H", "X-A: 1", "-H", "X-B: 2", "--data-raw", "a=b", "--max-time", "1.5", "-k",
		"--resolve", "h:80:10.0.0.1", "--url", "http://httpbin.ns:8000/post"}
	if !slices.Equal(cmd, want) {
		t.Errorf("CurlCommand:\n got %q\nwant %q", cmd, want)
	}
	if cmd := CurlCommand(HTTPRequest{URL: "http://x/", Method: "HEAD", Binary: "/usr/local/bin/curl"}, "@@m"); cmd[0] != "/usr/local/bin/curl" || !slices.Contains(cmd, "--head") || slices.Contains(cmd, "-X") {
		t.Errorf("HEAD: %q", cmd)
	}
	if cmd := CurlCommand(HTTPRequest{URL: "http://x/"}, "@@m"); !slices.Contains(cmd, "--max-time") || cmd[slices.Index(cmd, "--max-time")+1] != "30" {
		t.Errorf("no Timeout: %q, want --max-time 30 (DefaultCurlTimeout)", cmd)
	}
	if a, b := newMarker(), newMarker(); a == b || !strings.HasPrefix(a, "@@meshconform-") || len(a) != len("@@meshconform-")+16 {
		t.Errorf("markers %q %q: want distinct random markers", a, b)
	}
}

func TestOpenSSLCommand(t *testing.T) {
	cmd := OpenSSLCommand(TLSRequest{Host: "httpbin.ns", Port: 8000, ALPN: []string{"istio", "h2"}})
	want := []string{"sh", "-c", "exec openssl s_client -alpn istio,h2 -showcerts -connect httpbin.ns:8000 -servername httpbin.ns </dev/null"}
	if !slices.Equal(cmd, want) {
		t.Errorf("OpenSSLCommand:\n got %q\nwant %q", cmd, want)
	}
	// No SNI for an IP; hostile names are quoted for the shell.
	cmd = OpenSSLCommand(TLSRequest{Host: "10.0.0.1", Port: 443, ServerName: "a'b;rm -rf /"})
	if cmd[2] != `exec openssl s_client -showcerts -connect 10.0.0.1:443 -servername 'a'\''b;rm -rf /' </dev/null` {
		t.Errorf("quoted: %s", cmd[2])
	}
	if cmd = OpenSSLCommand(TLSRequest{Host: "fd00::1", Port: 443}); !strings.Contains(cmd[2], "-connect '[fd00::1]:443' </dev/null") || strings.Contains(cmd[2], "-servername") {
		t.Errorf("IPv6: %s", cmd[2])
	}
}

func TestOutcomeString(t *testing.T) {
	o := Outcome{
		Tool: ToolCurl, HTTPCode: 0, CurlExit: 56, ExitCode: -1,
		ErrorLine: "curl: (56) Recv failure: Connection reset by peer",
		Body:      "", Headers: map[string]string{"x-b": "2", "x-a": "1"},
		Duration: 3 * time.Millisecond, Elapsed: 250 * time.Millisecond,
		Where: "pod ns/client container curl", Command: []string{"curl", "-sS", "-w", "%{json} it's", "--url", "http://s/"},
		Stderr: "curl: (56) Recv failure: Connection reset by peer\n", Attempts: 2, Notes: []string{"retried: attempt 1: stdout empty"},
	}
	s := o.String()
	for _, want := range []string{
		"curl from pod ns/client container curl: http_code=000 curl_exit=56 transport_exit=-1 in 3ms (wall 250ms), 2 attempt(s)",
		`command: curl -sS -w '%{json} it'\''s' --url http://s/`,
		"error:   curl: (56) Recv failure: Connection reset by peer",
		"headers:\n    x-a: 1\n    x-b: 2",
		"body:    (empty)",
		"stderr:\n    | curl: (56)",
		"note: retried: attempt 1: stdout empty",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	if got := o.Summary(); got != `http_code=000 exit=56 "curl: (56) Recv failure: Connection reset by peer"` {
		t.Errorf("Summary() = %s", got)
	}
	o = Outcome{Tool: ToolCurl, HTTPCode: 403, Body: "RBAC: access denied", BodyBytes: 19}
	if got := o.Summary(); got != `http_code=403 exit=0 body="RBAC: access denied"` {
		t.Errorf("Summary() = %s", got)
	}
	if s := o.String(); !strings.Contains(s, "body (19 bytes):\n    | RBAC: access denied") {
		t.Errorf("String():\n%s", s)
	}
}
