package record_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/posture"
	"meshconform/framework/probe"
	"meshconform/framework/wait"
	"meshconform/suites/behaviors"
	"meshconform/suites/cases"
	"meshconform/suites/internal/record"
)

// The recording suite: specs that run the real recording code (record.Probe, the posture
// spec body, CP-001's body) against a scripted curl executor and a loopback API server, so
// TestRecordedReport can read the conformance report they produce. Every spec carries the
// label "recording"; the real posture and control-plane specs, registered by the imports,
// are filtered out.

// envReportsDir, when set, makes TestRecordingSuite run the suite and write its conformance
// report there.
const envReportsDir = "MESHCONFORM_RECORDING_SUITE_DIR"

// shape is one scripted curl result: what curl prints and how it exits.
type shape struct {
	code, exit     int
	errLine, body  string
	transportError error
}

var (
	reset = shape{exit: 56, errLine: "curl: (56) Recv failure: Connection reset by peer"}
	empty = shape{exit: 52, errLine: "curl: (52) Empty reply from server"}
	ok    = shape{code: 200, body: "ok"}
	down  = shape{transportError: errors.New("error dialing backend: dial tcp 10.0.0.7:10250: connect: connection refused")}
	// MTLS-008's 503, in the wording Envoy's code gives and in another reset reason.
	termination = shape{code: 503, body: catalog.TextConnectionTermReset}
	remoteReset = shape{code: 503, body: catalog.TextUpstreamConnect + ". reset reason: remote reset"}
)

// scripted is a probe.Executor that answers curl as a pod would, one shape per call: the
// last repeats, or with cycle they repeat in order. It writes curl's -w trailer with the
// command's own marker, so probe.Curl parses it as it parses a real curl.
type scripted struct {
	mu     sync.Mutex
	n      int
	cycle  bool
	shapes []shape
}

var reMarker = regexp.MustCompile(`@@meshconform-[0-9a-f]+`)

func (s *scripted) String() string { return "pod rec/client-0 container curl" }

func (s *scripted) Exec(_ context.Context, cmd []string) (probe.ExecResult, error) {
	s.mu.Lock()
	i := min(s.n, len(s.shapes)-1)
	if s.cycle {
		i = s.n % len(s.shapes)
	}
	s.n++
	sh := s.shapes[i]
	s.mu.Unlock()
	if sh.transportError != nil {
		return probe.ExecResult{ExitCode: -1}, sh.transportError
	}
	m := reMarker.FindString(strings.Join(cmd, " "))
	msg := ""
	if sh.errLine != "" {
		msg = sh.errLine[strings.Index(sh.errLine, ") ")+2:]
	}
	j, _ := json.Marshal(map[string]any{"exitcode": sh.exit, "errormsg": msg, "http_code": sh.code, "time_total": 0.002})
	out := fmt.Sprintf("%s\n%sW http_code=%03d\n%s\n%sH\n{}\n%sE\n", sh.body, m, sh.code, j, m, m)
	res := probe.ExecResult{Stdout: []byte(out), ExitCode: sh.exit}
	if sh.errLine != "" {
		res.Stderr = []byte(sh.errLine + "\n")
	}
	return res, nil
}

// fast converges in milliseconds against the scripted executor; a probe that never
// converges costs its Timeout.
var fast = expect.Config{Consecutive: 3, Timeout: 500 * time.Millisecond, Poll: 5 * time.Millisecond}

func probeSpec(id string, e catalog.Expectation, check func(cases.Env, probe.Outcome) error, cycle bool, shapes ...shape) {
	It(id+": probe", Label("recording", id), func(ctx SpecContext) {
		p := cases.Probe{Name: "client to server", Expect: e, Check: check}
		ex := &scripted{cycle: cycle, shapes: shapes}
		req := probe.HTTPRequest{URL: "http://httpbin.rec:8000/get", Timeout: time.Second, Attempts: 1}
		record.Probe(record.Metered(ctx), fast, expect.Default, id, p, cases.Env{}, ex, req)
	})
}

// window is an observation window of the waiter (wait.Throughout) that always holds.
func window(ctx context.Context, d time.Duration) {
	if err := wait.Throughout(ctx, d, 5*time.Millisecond, func(context.Context, int, time.Duration) error { return nil }); err != nil {
		Fail(err.Error())
	}
}

// timedSpec is a spec with every part the runner times, as the runner times them: a setup
// that waits 60ms inside the waiter (its workloads getting ready) and spends 20ms outside it,
// a probe that converges after two unmet observations, a teardown that waits 40ms and
// sleeps 10ms; failing, also diagnostics that take 15ms.
func timedSpec(id string, fail bool) {
	It(id+": timed parts", Label("recording", id), func(ctx SpecContext) {
		ctx2 := record.Metered(ctx)
		func() {
			defer record.Timed(record.Setup)()
			window(ctx2, 60*time.Millisecond)
			time.Sleep(20 * time.Millisecond)
		}()
		DeferCleanup(func() {
			defer record.Timed(record.Teardown)()
			window(record.Metered(context.Background()), 40*time.Millisecond)
			time.Sleep(10 * time.Millisecond)
		})
		DeferCleanup(func() {
			if !CurrentSpecReport().Failed() {
				return
			}
			defer record.Timed(record.Diagnostics)()
			time.Sleep(15 * time.Millisecond)
		})
		p := cases.Probe{Name: "client to server", Expect: catalog.PlaintextRejected}
		ex := &scripted{shapes: []shape{ok, ok, reset}}
		req := probe.HTTPRequest{URL: "http://httpbin.rec:8000/get", Timeout: time.Second, Attempts: 1}
		slow := fast
		slow.Poll = 20 * time.Millisecond
		record.Probe(ctx2, slow, expect.Default, id, p, cases.Env{}, ex, req)
		if fail {
			Fail("failing on purpose, after converging")
		}
	})
}

var _ = record.Timings()

// istiodLogs serves istiod's log through a loopback API server: two TLS handshake errors,
// and with grow one more on every read (errors that persist).
type istiodLogs struct {
	mu    sync.Mutex
	reads int
	grow  bool
}

func (l *istiodLogs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	n := 2
	if l.grow {
		n += l.reads - 1
	}
	var b strings.Builder
	b.WriteString("2026-12-01T05:00:00.000000Z\tinfo\tads\tPush debounce stable\n")
	for i := range n {
		fmt.Fprintf(&b, "2026-12-01T05:00:%02d.000000Z\tinfo\thttp: TLS handshake error from 10.244.0.%d:51234: remote error: tls: bad certificate\n", i%60, i+2)
	}
	return b.String()
}

func apiServer(logs *istiodLogs) kubernetes.Interface {
	pods := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-0", Namespace: "istio-system", Labels: map[string]string{"app": "istiod"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery"}}},
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/istio-system/pods":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(pods)
		case "/api/v1/namespaces/istio-system/pods/istiod-0/log":
			_, _ = w.Write([]byte(logs.text()))
		default:
			http.NotFound(w, r)
		}
	}))
	DeferCleanup(srv.Close)
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		Fail(err.Error())
	}
	return kube
}

func check(id string, r posture.Result, findings ...string) posture.CheckResult {
	c := posture.CheckResult{ID: id, Title: "scripted check", Result: r, Examined: "3 pods in 1 meshed namespace"}
	for _, f := range findings {
		c.Findings = append(c.Findings, posture.Finding{Kind: "Pod", Namespace: "rec", Name: f, Message: "offends"})
	}
	return c
}

var _ = Describe("recording", func() {
	probeSpec("REC-001", catalog.PlaintextRejected, nil, false, reset)
	probeSpec("REC-002", catalog.PlaintextRejected, nil, false, reset, empty, reset)
	probeSpec("REC-003", catalog.PlaintextRejected, nil, false, ok)
	probeSpec("REC-004", catalog.PlaintextRejected, nil, true, reset, reset, ok)
	probeSpec("REC-005", catalog.Allowed, func(cases.Env, probe.Outcome) error {
		return errors.New("XFCC names spiffe://cluster.local/ns/rec/sa/other, want sa/client")
	}, false, ok)
	probeSpec("REC-006", catalog.PlaintextRejected, nil, false, down)
	probeSpec("REC-011", catalog.DisableVsStrict, nil, false, termination)
	probeSpec("REC-012", catalog.DisableVsStrict, nil, false, remoteReset)

	It("REC-007: posture check that fails", Label("recording", "REC-007"), func() {
		w := behaviors.Want{ID: "REC-007", Before: posture.Fail, After: posture.Pass, FindingIn: "plain-client", Why: "hardening fixes it"}
		behaviors.Verify(w, check("REC-007", posture.Fail, "plain-client-5d8f"), check("REC-007", posture.Fail, "plain-client-5d8f"))
	})
	It("REC-008: posture check that passes", Label("recording", "REC-008"), func() {
		w := behaviors.Want{ID: "REC-008", Before: posture.Fail, After: posture.Pass, Why: "hardening fixes it"}
		behaviors.Verify(w, check("REC-008", posture.Fail, "sleep-1"), check("REC-008", posture.Pass))
	})

	It("CP-001: errors that settle", Label("recording", "CP-001"), func(ctx SpecContext) {
		kube := apiServer(&istiodLogs{})
		behaviors.TLSErrors(record.Metered(ctx), kube, "istio-system", "", time.Time{}, 200*time.Millisecond, 20*time.Millisecond)
	})
	It("CP-001: errors that persist", Label("recording", "CP-001"), func(ctx SpecContext) {
		kube := apiServer(&istiodLogs{grow: true})
		behaviors.TLSErrors(record.Metered(ctx), kube, "istio-system", "", time.Time{}, 200*time.Millisecond, 20*time.Millisecond)
	})

	timedSpec("REC-009", false)
	timedSpec("REC-010", true)
})

var _ = ReportAfterSuite("recording conformance report", func(r Report) {
	if dir := os.Getenv(envReportsDir); dir != "" {
		if _, err := record.WriteReport(dir, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
})

// runRecordingSuite runs this test binary again as the recording suite and returns the
// directory holding its conformance report and Ginkgo JSON report.
func runRecordingSuite() (dir string, output []byte, err error) {
	dir, err = os.MkdirTemp("", "recording-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingSuite$", "-ginkgo.label-filter=recording",
		"-ginkgo.no-color", "-ginkgo.json-report="+filepath.Join(dir, "ginkgo.json"))
	cmd.Env = append(os.Environ(), envReportsDir+"="+dir)
	output, err = cmd.CombinedOutput()
	return dir, output, err
}
