package expect

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/probe/probetest"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("", "", "")
	if err != nil || c != (Config{Consecutive: 3, Timeout: 60 * time.Second, Poll: 250 * time.Millisecond}) {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = ParseConfig("5", "2m", " 100ms ")
	if err != nil || c != (Config{Consecutive: 5, Timeout: 2 * time.Minute, Poll: 100 * time.Millisecond}) {
		t.Errorf("set: %+v, %v", c, err)
	}
	for _, bad := range []struct{ consecutive, timeout, poll, want string }{
		{"three", "", "", "MESHCONFORM_CONSECUTIVE=\"three\": want a whole number ≥ 1 (example: MESHCONFORM_CONSECUTIVE=3)"},
		{"0", "", "", "MESHCONFORM_CONSECUTIVE=\"0\""},
		{"", "60", "", "MESHCONFORM_TIMEOUT=\"60\": want a positive Go duration (example: MESHCONFORM_TIMEOUT=90s)"},
		{"", "-1s", "", "MESHCONFORM_TIMEOUT=\"-1s\""},
		{"", "", "fast", "MESHCONFORM_POLL=\"fast\": want a positive Go duration (example: MESHCONFORM_POLL=500ms)"},
	} {
		if _, err := ParseConfig(bad.consecutive, bad.timeout, bad.poll); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error containing %q", bad, err, bad.want)
		}
	}
	if err := (Config{Consecutive: 1, Timeout: time.Second}).Validate(); err == nil {
		t.Error("Poll 0 accepted")
	}
}

func TestMode(t *testing.T) {
	if !Default.Accepts(Equivalent) || Strict.Accepts(Equivalent) || Default.Accepts(Deviation) || !Strict.Accepts(Documented) {
		t.Error("Accepts table wrong")
	}
}

func TestClassify(t *testing.T) {
	curl := func(code, exit int, errLine, body string) probe.Outcome {
		return probe.Outcome{Tool: probe.ToolCurl, HTTPCode: code, CurlExit: exit, ErrorLine: errLine, Body: body}
	}
	for _, c := range []struct {
		e      catalog.Expectation
		o      probe.Outcome
		want   Classification
		reason string
	}{
		{catalog.PlaintextRejected, curl(0, 56, "curl: (56) Recv failure: Connection reset by peer", ""), Documented, "the documented PlaintextRejected"},
		{catalog.PlaintextRejected, curl(0, 56, "curl: (56) OpenSSL SSL_read: unexpected eof", ""), Equivalent, "equivalent to PlaintextRejected (receive error"},
		{catalog.PlaintextRejected, curl(0, 35, "curl: (35) TLS connect error", ""), Equivalent, "TLS connect error"},
		{catalog.PlaintextRejected, curl(0, 16, "", ""), Equivalent, "HTTP/2 error"},
		{catalog.PlaintextRejected, curl(0, 28, "curl: (28) Operation timed out", ""), Deviation, `saw http_code=000 exit=28 "curl: (28) Operation timed out": not PlaintextRejected`},
		{catalog.PlaintextRejected, curl(200, 0, "", "ok"), Deviation, "saw http_code=200 exit=0"},
		{catalog.DisableVsStrict, curl(0, 56, "curl: (56) Recv failure: Connection reset by peer", ""), Equivalent, "reset"},
		{catalog.Allowed, probe.Outcome{Tool: probe.ToolOpenSSL, HTTPCode: -1, CurlExit: -1}, Deviation, "openssl outcome"},
		// AUTHZ-009: the sidecar closes a denied TCP connection (Istio checks for an EOF): exit 52
		// is documented; a reset, ztunnel's shape and the row's old documented one, is equivalent.
		{catalog.TCPForbidden, curl(0, 52, "curl: (52) Empty reply from server", ""), Documented, "the documented TCPForbidden {empty reply"},
		{catalog.TCPForbidden, curl(0, 56, "curl: (56) Recv failure: Connection reset by peer", ""), Equivalent, "equivalent to TCPForbidden (reset"},
		{catalog.TCPForbidden, curl(403, 0, "", "RBAC: access denied"), Deviation, "not TCPForbidden"},
		// EGRESS-001: 502 from the BlackHole route of an HTTP listener is documented; without
		// that listener the TCP catch-all closes the connection (what the row's old setup saw).
		{catalog.BlackHole, curl(502, 0, "", ""), Documented, "the documented BlackHole {502"},
		{catalog.BlackHole, curl(0, 52, "curl: (52) Empty reply from server", ""), Equivalent, "equivalent to BlackHole (TCP black hole, empty reply"},
		{catalog.BlackHole, curl(0, 56, "curl: (56) Recv failure: Connection reset by peer", ""), Equivalent, "equivalent to BlackHole (TCP black hole, reset"},
		{catalog.BlackHole, curl(200, 0, "", "ok"), Deviation, "not BlackHole"},
		// MTLS-010: mTLS to a plaintext port fails its handshake, which the default retry policy
		// retries; the row's old documented shape (any upstream connect error) is an equivalent.
		{catalog.UpstreamConnectError, curl(503, 0, "", "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end"), Documented, "the documented UpstreamConnectError {503 TLS error, retried"},
		{catalog.UpstreamConnectError, curl(503, 0, "", "upstream connect error or disconnect/reset before headers. reset reason: connection termination"), Equivalent, "equivalent to UpstreamConnectError (503 other upstream reset"},
		{catalog.UntrustedCertificate, curl(0, 60, "curl: (60) SSL certificate problem: unable to get local issuer certificate", ""), Documented, "certificate not trusted"},
	} {
		got, reason := Classify(c.e, c.o)
		if got != c.want || !strings.Contains(reason, c.reason) {
			t.Errorf("Classify(%s, %s) = %s %q; want %s with %q", c.e.Name, c.o.Summary(), got, reason, c.want, c.reason)
		}
	}
}

// script makes a loopback server that behaves as told, one behaviour per request in order
// (the last one repeats): the mesh changing under the probe, e.g. a policy landing.
func script(t *testing.T, steps ...probetest.Behavior) *probetest.Server {
	var mu sync.Mutex
	n := 0
	return probetest.NewServer(t, func(c net.Conn, req *http.Request) {
		mu.Lock()
		b := steps[min(n, len(steps)-1)]
		n++
		mu.Unlock()
		b(c, req)
	})
}

var (
	ok    = probetest.Respond(200, "ok", nil)
	reset = probetest.Reset()
	empty = probetest.CloseNoReply()
)

func curlRun(url string) func(context.Context) (probe.Outcome, error) {
	return func(ctx context.Context) (probe.Outcome, error) {
		return probe.Curl(ctx, local, probe.HTTPRequest{URL: url, Timeout: 2 * time.Second})
	}
}

func fast(n int) Config {
	return Config{Consecutive: n, Timeout: 10 * time.Second, Poll: 5 * time.Millisecond}
}

func TestConvergeWithCurl(t *testing.T) {
	probetest.RequireTools(t, "curl")
	ctx := context.Background()

	t.Run("200 then reset: converges after three resets in a row", func(t *testing.T) {
		s := script(t, ok, ok, reset)
		r, err := Converge(ctx, fast(3), Default, catalog.PlaintextRejected, curlRun(s.URL()))
		if err != nil {
			t.Fatal(err)
		}
		if r.Attempts != 5 || s.Hits() != 5 || r.Class != Documented || r.Outcome.CurlExit != 56 || len(r.History) != 5 {
			t.Errorf("attempts %d (hits %d), class %s, last exit %d, history %d; want 5, documented, 56, 5", r.Attempts, s.Hits(), r.Class, r.Outcome.CurlExit, len(r.History))
		}
		if r.Observations[0].Class != Deviation || r.Observations[2].Class != Documented {
			t.Errorf("observations: %v / %v", r.Observations[0].Class, r.Observations[2].Class)
		}
	})

	t.Run("a 200 in the middle resets the count", func(t *testing.T) {
		s := script(t, reset, reset, ok, reset, reset, reset, ok)
		r, err := Converge(ctx, fast(3), Default, catalog.PlaintextRejected, curlRun(s.URL()))
		if err != nil {
			t.Fatal(err)
		}
		if r.Attempts != 6 {
			t.Errorf("converged after %d probes, want 6 (2 resets, a 200, 3 resets)", r.Attempts)
		}
	})

	t.Run("equivalents count by default and make the streak equivalent", func(t *testing.T) {
		s := script(t, reset, empty, reset)
		r, err := Converge(ctx, fast(3), Default, catalog.PlaintextRejected, curlRun(s.URL()))
		if err != nil || r.Attempts != 3 || r.Class != Equivalent {
			t.Errorf("default mode: %v, attempts %d, class %s; want 3 and equivalent (one exit 52 in the streak)", err, r.Attempts, r.Class)
		}
	})

	t.Run("strict mode: an equivalent resets the count", func(t *testing.T) {
		s := script(t, reset, empty, reset, reset, reset)
		r, err := Converge(ctx, fast(3), Strict, catalog.PlaintextRejected, curlRun(s.URL()))
		if err != nil || r.Attempts != 5 || r.Class != Documented {
			t.Errorf("strict mode: %v, attempts %d, class %s; want 5 and documented", err, r.Attempts, r.Class)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		s := script(t, reset, ok)
		// Generous for a loaded 2-core machine: the test needs two probes, not speed.
		cfg := Config{Consecutive: 3, Timeout: 1500 * time.Millisecond, Poll: 20 * time.Millisecond}
		_, err := Converge(ctx, cfg, Default, catalog.PlaintextRejected, curlRun(s.URL()))
		if err == nil {
			t.Fatal("converged on a server that answers 200")
		}
		var ce *ConvergeError
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || ce.BestStreak != 1 || ce.Attempts < 2 {
			t.Fatalf("error %T (best streak %d, attempts %d): %v", err, ce.BestStreak, ce.Attempts, err)
		}
		msg := err.Error()
		for _, want := range []string{
			"PlaintextRejected not seen 3 times in a row within 1.5s (context deadline exceeded; mode default accepts documented or equivalent)",
			"longest streak 1",
			`expected: PlaintextRejected: documented {reset: http_code=000 exit=56 error~"Recv failure: Connection reset by peer"}; equivalent {receive error: http_code=000 exit=56}`,
			"last outcome (deviation: saw http_code=200 exit=0: not PlaintextRejected",
			"curl from local: http_code=200 curl_exit=0 transport_exit=0",
			"command: curl -sS -o - -w",
			"body (2 bytes):\n    | ok",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("deadline error lacks %q:\n%s", want, msg)
			}
		}
		history := regexp.MustCompile(`history \(oldest first\):\n  #1 \+\d+\.\ds documented http_code=000 exit=56 "curl: \(56\) Recv failure: Connection reset by peer"\n  #2 \+\d+\.\ds deviation http_code=200 exit=0\n`)
		if !history.MatchString(msg + "\n") {
			t.Errorf("deadline error lacks the compact history (%s):\n%s", history, msg)
		}
	})
}

func TestConvergeProbeErrors(t *testing.T) {
	calls := 0
	run := func(context.Context) (probe.Outcome, error) {
		calls++
		if calls == 2 {
			return probe.Outcome{}, errors.New("pod exec: connection refused")
		}
		return probe.Outcome{Tool: probe.ToolCurl, HTTPCode: 403, Body: "RBAC: access denied", CurlExit: 0}, nil
	}
	r, err := Converge(context.Background(), fast(2), Default, catalog.RBACDenied, run)
	if err != nil || r.Attempts != 4 {
		t.Errorf("%v, attempts %d; want 4 (a probe error breaks the streak)", err, r.Attempts)
	}

	// History is bounded; the error says how many probes ran.
	_, err = Converge(context.Background(), Config{Consecutive: 1, Timeout: 300 * time.Millisecond, Poll: time.Microsecond}, Default, catalog.Allowed,
		func(context.Context) (probe.Outcome, error) { return probe.Outcome{}, errors.New("transport down") })
	var ce *ConvergeError
	if !errors.As(err, &ce) || len(ce.Observations) != maxHistory || !regexp.MustCompile(`history \(last 64 of \d+, oldest first\)`).MatchString(err.Error()) ||
		!strings.Contains(err.Error(), "last probe failed: transport down") {
		t.Errorf("bounded history: %d observations\n%v", len(ce.Observations), err)
	}
	if _, err := Converge(context.Background(), Config{}, Default, catalog.Allowed, nil); err == nil {
		t.Error("zero Config accepted")
	}
}

func TestConvergeFunc(t *testing.T) {
	calls := 0
	err := ConvergeFunc(context.Background(), fast(3), func(context.Context) error {
		calls++
		if calls == 3 {
			return errors.New("pod not Ready")
		}
		return nil
	})
	if err != nil || calls != 6 {
		t.Errorf("%v after %d calls; want success after 6 (ok ok FAIL ok ok ok)", err, calls)
	}

	ready := errors.New("readiness probe failed: HTTP probe failed with statuscode: 503")
	calls = 0
	err = ConvergeFunc(context.Background(), Config{Consecutive: 2, Timeout: 200 * time.Millisecond, Poll: 10 * time.Millisecond}, func(context.Context) error {
		calls++
		if calls%2 == 0 {
			return fmt.Errorf("check %d: %w", calls, ready)
		}
		return nil
	})
	if err == nil || !errors.Is(err, ready) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ConvergeFunc on a flapping check: %v", err)
	}
	for _, want := range []string{"condition not met 2 times in a row within 200ms", "longest streak 1", "last error: check ", "history (oldest first):\n  #1 +"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	if !regexp.MustCompile(`#1 \+\d+\.\ds ok\n  #2 \+\d+\.\ds check 2: readiness probe failed`).MatchString(err.Error()) {
		t.Errorf("error lacks the compact history:\n%s", err)
	}
}

func TestSatisfyMatcher(t *testing.T) {
	g := gomega.NewWithT(t)
	denied := probe.Outcome{Tool: probe.ToolCurl, HTTPCode: 403, Body: "RBAC: access denied", BodyBytes: 19}
	g.Expect(denied).To(Satisfy(catalog.RBACDenied, Strict))
	g.Expect(&denied).To(BeDocumented(catalog.Denied403))
	g.Expect(Result{Outcome: denied}).NotTo(Satisfy(catalog.Allowed, Default))

	m := Satisfy(catalog.Allowed, Default)
	if okay, err := m.Match(denied); okay || err != nil {
		t.Fatalf("Allowed matched a 403: %v %v", okay, err)
	}
	msg := m.FailureMessage(denied)
	for _, want := range []string{"deviation (mode default): saw http_code=403 exit=0 body=\"RBAC: access denied\": not Allowed", "body (19 bytes):"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	if _, err := m.Match("200"); err == nil {
		t.Error("a string was accepted as an outcome")
	}
}

var local = probe.Local{Env: probetest.EnvWithoutProxy()}
