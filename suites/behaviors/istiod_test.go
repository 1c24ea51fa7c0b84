package behaviors

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Lines in the shapes istiod prints them: timestamp, level, scope, message, tab-separated.
const (
	logInfo         = "2024-05-01T10:00:00.000000Z\tinfo\tads\tADS: new connection for node:sleep-5d8f6b8d4c-abcde.client-ns-1"
	logCA           = "2024-05-01T10:00:00.100000Z\tinfo\tserverca\tCSR successfully signed, sans [spiffe://cluster.local/ns/client-ns/sa/sleep]."
	logTLSBad       = "2024-05-01T10:00:01.%06dZ\tinfo\thttp: TLS handshake error from 10.244.0.1:%d: remote error: tls: bad certificate"
	logTLSEOF       = "2024-05-01T10:00:02.000000Z\tinfo\thttp: TLS handshake error from 127.0.0.1:40000: EOF"
	logCannotList   = "2024-05-01T10:00:03.000000Z\terror\tfailed to list CRDs: customresourcedefinitions.apiextensions.k8s.io is forbidden: User \"system:serviceaccount:istio-system:istiod-service-account\" cannot list resource \"customresourcedefinitions\" in API group \"apiextensions.k8s.io\" at the cluster scope"
	logKlogList     = "2024-05-01T10:00:03.500000Z\terror\tklog\tk8s.io/client-go/tools/cache/reflector.go:166: Failed to watch *v1beta1.PeerAuthentication: failed to list *v1beta1.PeerAuthentication: peerauthentications.security.istio.io is forbidden: User \"system:serviceaccount:istio-system:istiod\" cannot list resource \"peerauthentications\" in API group \"security.istio.io\" at the cluster scope"
	logWarnList     = "2024-05-01T10:00:03.600000Z\twarn\tklog\tfailed to list *v1.Secret: secrets is forbidden: User \"system:serviceaccount:istio-system:istiod\" cannot list resource \"secrets\" in API group \"\" in the namespace \"foo\""
	logCASeed       = "2021-03-04T19:02:43.290463Z\terror\tserverca\tAuthentication failed: Authenticator ClientCertAuthenticator at index 0 got error: no verified chain is found; Authenticator KubeJWTAuthenticator at index 1 got error: failed to validate the JWT from cluster \"Kubernetes\": the token is not authorized"
	logCAModern     = logCAGolden
	logCAModernJSON = `{"level":"error","time":"2024-05-01T10:00:05.000000Z","scope":"security","msg":"Failed to authenticate client from 10.244.0.9:51235: Authenticator ClientCertAuthenticator: no verified chain is found; Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster \"Kubernetes\": the token is not authenticated"}`
	logCANoJWT      = "2024-05-01T10:00:06.000000Z\terror\tsecurity\tFailed to authenticate client from 10.244.0.9:51236: Authenticator ClientCertAuthenticator: no verified chain is found"
)

// logCAGolden is a rejected CSR as istiod wrote it, recorded live once (2026-12-06: istiod built
// from release-1.31 @eed52ebb66ad, kind with Kubernetes 1.37.2, scripts/live.sh's broken istio
// run): CP-003's control (BadTokenControl: the grpc-agent template's pod with its projected
// token's audience changed) sending its CSR. pkg/log's console encoder (config.go:82-94, 160:
// zap's, tab-separated) prints formatDate's UTC time with microseconds (config.go:200), the
// lowercase level, the scope (scope.go:104), then security.Authenticate's message
// (pkg/security/authentication.go:60) with each authenticator's failure in istiod's order,
// client certificate first (pilot/pkg/bootstrap server.go:390-412; security.go:410): the agent
// presents no client certificate (cert_authenticator.go:69: "no verified chain is found"), and
// the API server's TokenReview refused the token's audience (kubeauth/kube_jwt.go:132,
// tokenreview/k8sauthn.go: "the service account authentication returns an error: " and
// kube-apiserver's status.error).
const logCAGolden = "2026-12-06T13:51:49.387257Z\terror\tsecurity\tFailed to authenticate client from 10.244.0.10:54720: " +
	"Authenticator ClientCertAuthenticator: no verified chain is found; " +
	"Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster \"Kubernetes\": the service account authentication returns an error: " +
	"[invalid bearer token, token audiences [\"meshconform-not-istio-ca\"] is invalid for the target audiences [\"istio-ca\"]]"

// The golden line has the shape istiod's logger gives it, and the scanner reports which
// pattern found it: today's for the golden line, the seed's (older) for the seed's line, so
// the report says which wording an istiod used.
func TestCAAuthFailedGoldenLine(t *testing.T) {
	shape := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\terror\tsecurity\tFailed to authenticate client from [0-9.]+:\d+: Authenticator ClientCertAuthenticator: [^;]+; Authenticator KubeJWTAuthenticator: failed to validate the JWT from cluster "[^"]+": .+$`)
	if !shape.MatchString(logCAGolden) {
		t.Fatalf("the golden line is not in istiod's shape:\n%q", logCAGolden)
	}
	if !strings.Contains(logCAGolden, `token audiences ["`+WrongAudience+`"] is invalid for the target audiences ["istio-ca"]`) {
		t.Errorf("the golden line is not the one CP-003's control (audience %s) makes", WrongAudience)
	}
	if f := ScanIstiodLog(logCAGolden).CAAuthFailed; len(f.Examples) != 1 || f.Examples[0] != logCAGolden {
		t.Errorf("the evidence does not keep the whole line (with the TokenReview's reason): %q", f.Examples)
	}
	for _, c := range []struct {
		line, matched string
		count, older  int
	}{
		{logCAGolden, fmt.Sprintf("%q (1 lines)", PatternCAAuthFailed), 1, 0},
		{logCAModernJSON, fmt.Sprintf("%q (1 lines)", PatternCAAuthFailed), 1, 0},
		{logCASeed, fmt.Sprintf("%q, the older wording (1 lines)", PatternCAAuthFailedSeed), 0, 1},
		{logCANoJWT, "none", 0, 0},
	} {
		f := ScanIstiodLog(c.line).CAAuthFailed
		fields := findingFields(f, 1)
		if f.Count != c.count || f.Older != c.older || fields["matched"] != c.matched {
			t.Errorf("%s\n  matches %d, older %d, matched %q; want %d, %d, %q", c.line, f.Count, f.Older, fields["matched"], c.count, c.older, c.matched)
		}
		if fields["pattern"] != PatternCAAuthFailed || fields["older pattern"] != PatternCAAuthFailedSeed {
			t.Errorf("the evidence names the patterns %q and %q", fields["pattern"], fields["older pattern"])
		}
	}
}

func tlsBad(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(logTLSBad, i, 50000+i)
	}
	return out
}

func logText(lines ...[]string) string {
	var all []string
	for _, l := range lines {
		all = append(all, l...)
	}
	return strings.Join(all, "\n") + "\n"
}

// The documented patterns are seed 000's, verbatim; they must match the seed's own example
// lines.
func TestPatternsMatchTheSeedsExamples(t *testing.T) {
	seed := map[string]string{
		PatternCannotList: `error failed to list CRDs: customresourcedefinitions.apiextensions.k8s.io is forbidden: User "system:serviceaccount:istio-system:istiod-service-account" cannot list resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope`,
		// The seed shows only the message's start; its regexp needs serverca and JWT.
		PatternCAAuthFailedSeed:  logCASeed,
		PatternTLSBadCertificate: fmt.Sprintf(logTLSBad, 0, 1),
	}
	for p, line := range seed {
		if !regexp.MustCompile(p).MatchString(line) {
			t.Errorf("%q does not match %q", p, line)
		}
	}
	// The seed's CP-003 pattern cannot find what istiod prints today, nor today's the seed's.
	if regexp.MustCompile(PatternCAAuthFailedSeed).MatchString(logCAGolden) {
		t.Errorf("the seed's CP-003 pattern matches istiod 1.30/1.31's line; today's pattern would be unneeded")
	}
	if regexp.MustCompile(PatternCAAuthFailed).MatchString(logCASeed) {
		t.Errorf("today's CP-003 pattern matches the seed's line; the older pattern would be unneeded")
	}
}

func TestScanIstiodLog(t *testing.T) {
	text := logText(
		[]string{logInfo, logCA},
		tlsBad(12),
		[]string{logTLSEOF, logCannotList, logKlogList, logWarnList, logCASeed, logCAModern, logCAModernJSON, logCANoJWT, logInfo},
	)
	f := ScanIstiodLog(text)
	if f.Lines != 2+12+9 {
		t.Errorf("Lines = %d, want %d", f.Lines, 23)
	}
	tls := f.TLSBadCertificate
	if tls.ID != "CP-001" || tls.Count != 12 {
		t.Errorf("CP-001: %+v, want 12 matches (the EOF handshake error is not a bad certificate)", tls)
	}
	if len(tls.Examples) != MaxExamples || tls.Examples[MaxExamples-1] != fmt.Sprintf(logTLSBad, 11, 50011) || tls.Examples[0] != fmt.Sprintf(logTLSBad, 7, 50007) {
		t.Errorf("CP-001 examples are not the %d most recent, oldest first: %q", MaxExamples, tls.Examples)
	}
	// The warn line has no "error": the documented pattern is what the seed greps for.
	if f.CannotList.Count != 2 || f.CannotList.Examples[0] != logCannotList || f.CannotList.Examples[1] != logKlogList {
		t.Errorf("CP-002: %+v, want the two error lines", f.CannotList)
	}
	ca := f.CAAuthFailed
	if ca.Count != 2 || ca.Examples[0] != logCAModern || ca.Examples[1] != logCAModernJSON {
		t.Errorf("CP-003: %d %q, want istiod's two lines (text and JSON), not the one without JWT", ca.Count, ca.Examples)
	}
	if ca.Older != 1 || ca.OlderExamples[0] != logCASeed {
		t.Errorf("CP-003 older wording: %d %q, want the seed's serverca line", ca.Older, ca.OlderExamples)
	}
	if ca.Total() != 3 {
		t.Errorf("CP-003 total %d, want 3", ca.Total())
	}
	if got := f.String(); got != "23 lines: CP-001 12, CP-002 2, CP-003 2 (+1 older wording)" {
		t.Errorf("String() = %q", got)
	}
}

func TestScanIstiodLogEdges(t *testing.T) {
	if f := ScanIstiodLog(""); f.Lines != 0 || f.TLSBadCertificate.Total()+f.CannotList.Total()+f.CAAuthFailed.Total() != 0 {
		t.Errorf("empty log: %+v", f)
	}
	// CRLF line ends, no final newline, a huge line: all counted, the example clipped.
	long := fmt.Sprintf(logTLSBad, 1, 1) + strings.Repeat("é", 2000)
	f := ScanIstiodLog(logInfo + "\r\n" + long + "\r\n\r\n" + fmt.Sprintf(logTLSBad, 2, 2))
	if f.Lines != 3 || f.TLSBadCertificate.Count != 2 {
		t.Fatalf("got %d lines, %d matches; want 3 and 2", f.Lines, f.TLSBadCertificate.Count)
	}
	ex := f.TLSBadCertificate.Examples[0]
	if len(ex) > MaxExampleLen+len("…") || !strings.HasSuffix(ex, "…") || strings.ContainsRune(ex, '\ufffd') {
		t.Errorf("long example not clipped on a rune boundary to %d bytes: %d bytes, %q…", MaxExampleLen, len(ex), ex[:60])
	}
	if strings.HasSuffix(f.TLSBadCertificate.Examples[1], "\r") {
		t.Errorf("example keeps the CR: %q", f.TLSBadCertificate.Examples[1])
	}
}

func TestFindingAbsent(t *testing.T) {
	clean := ScanIstiodLog(logText([]string{logInfo, logCA, logTLSEOF}))
	for _, f := range []Finding{clean.TLSBadCertificate, clean.CannotList, clean.CAAuthFailed} {
		if err := f.Absent(); err != nil {
			t.Errorf("%s on a clean log: %v", f.ID, err)
		}
	}
	dirty := ScanIstiodLog(logText([]string{logCannotList, logCAModern}))
	err := dirty.CannotList.Absent()
	if err == nil {
		t.Fatal("CP-002 with a cannot-list line passed")
	}
	for _, want := range []string{"CP-002", "1 line(s)", PatternCannotList, logCannotList, "ClusterRoleBinding"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CP-002 error lacks %q:\n%v", want, err)
		}
	}
	// istiod's own line: a failure, and the message names the pattern it matched.
	err = dirty.CAAuthFailed.Absent()
	if err == nil {
		t.Fatal("CP-003 with istiod 1.30/1.31's JWT failure passed")
	}
	for _, want := range []string{"CP-003", "1 line(s) matching", PatternCAAuthFailed, "0 matching the same failure as older Istio releases", "documented shape", logCAModern} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CP-003 error lacks %q:\n%v", want, err)
		}
	}
	// Only the seed's older wording: still a failure, and the message says which it saw.
	err = ScanIstiodLog(logText([]string{logCASeed})).CAAuthFailed.Absent()
	if err == nil {
		t.Fatal("CP-003 with the seed's serverca line passed")
	}
	for _, want := range []string{"CP-003", "0 line(s) matching", "1 matching the same failure as older Istio releases", "older wording", logCASeed} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CP-003 error lacks %q:\n%v", want, err)
		}
	}
}

func TestCheckTLSErrorsSettled(t *testing.T) {
	scan := func(n int) LogFindings { return ScanIstiodLog(logText([]string{logInfo}, tlsBad(n))) }
	cases := []struct {
		before, after int
		pass          bool
	}{
		{0, 0, true},  // none at all
		{4, 4, true},  // transient: seen during warm-up, not since
		{4, 2, true},  // fewer (istiod restarted): did not grow
		{0, 3, false}, // started during the window
		{4, 9, false}, // still growing
	}
	for _, c := range cases {
		err := CheckTLSErrorsSettled(scan(c.before), scan(c.after))
		if c.pass != (err == nil) {
			t.Errorf("before %d, after %d: err %v, want pass=%t", c.before, c.after, err, c.pass)
			continue
		}
		if err != nil {
			for _, want := range []string{"CP-001", fmt.Sprintf("grew from %d to %d", c.before, c.after), fmt.Sprintf(logTLSBad, c.after-1, 50000+c.after-1)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("before %d, after %d: error lacks %q:\n%v", c.before, c.after, want, err)
				}
			}
		}
	}
}

func TestIstiodSelector(t *testing.T) {
	if got := IstiodSelector(""); got != "app=istiod" {
		t.Errorf("IstiodSelector(\"\") = %q", got)
	}
	if got := IstiodSelector("canary"); got != "app=istiod,istio.io/rev=canary" {
		t.Errorf("IstiodSelector(canary) = %q", got)
	}
}
