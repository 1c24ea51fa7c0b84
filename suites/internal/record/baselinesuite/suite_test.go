// Package baselinesuite_test runs a small real Ginkgo suite wired as the conformance suite is
// (the baseline judged in process 1's SynchronizedBeforeSuite and recorded with
// record.Baseline, then record.GateOnBaseline) against a scripted curl executor, and reads the
// conformance report it writes: once with a baseline that passes, once with one that fails,
// and with the run's settings leaving specs out (record.LeaveOut): no Istio, no data plane.
// It is its own package because a Ginkgo suite has one SynchronizedBeforeSuite.
package baselinesuite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"meshconform/framework/baseline"
	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/suites/internal/record"
)

// Environment of the child process: where to write the report, and the cluster to script.
const (
	envDir      = "MESHCONFORM_BASELINE_SUITE_DIR"
	envScenario = "MESHCONFORM_BASELINE_SCENARIO" // "working", "broken", "no-mesh" or "no-dataplane"
	bodyMarker  = "MESHCONFORM_BASELINE_BODY_RAN"
)

// shape is one scripted curl result.
type shape struct {
	code, exit int
	errLine    string
}

var (
	ok          = shape{code: 200}
	refused     = shape{exit: 7, errLine: "curl: (7) Failed to connect to 10.244.0.9 port 9 after 1 ms: Couldn't connect to server"}
	timedOut    = shape{exit: 28, errLine: "curl: (28) Operation timed out after 2001 milliseconds with 0 bytes received"}
	connTimeout = shape{exit: 28, errLine: "curl: (28) Failed to connect to 10.244.0.9 port 9 after 2001 ms: Timeout was reached"}
)

// cluster answers curl by URL, as the plain client's pod would: the httpbin Service, the
// httpbin pod's closed port, /delay.
type cluster map[string]shape

var reMarker = regexp.MustCompile(`@@meshconform-[0-9a-f]+`)

func (cluster) String() string { return "pod baseline-x/plain-client-0 container curl" }

func (c cluster) Exec(_ context.Context, cmd []string) (probe.ExecResult, error) {
	sh, found := c[cmd[len(cmd)-1]]
	if !found {
		return probe.ExecResult{ExitCode: -1}, fmt.Errorf("scripted cluster: no answer for %v", cmd)
	}
	m := reMarker.FindString(strings.Join(cmd, " "))
	msg := ""
	if sh.errLine != "" {
		msg = sh.errLine[strings.Index(sh.errLine, ") ")+2:]
	}
	j, _ := json.Marshal(map[string]any{"exitcode": sh.exit, "errormsg": msg, "http_code": sh.code})
	res := probe.ExecResult{Stdout: []byte(fmt.Sprintf("\n%sW http_code=%03d\n%s\n%sH\n{}\n%sE\n", m, sh.code, j, m, m)), ExitCode: sh.exit}
	if sh.errLine != "" {
		res.Stderr = []byte(sh.errLine + "\n")
	}
	return res, nil
}

var targets = baseline.Targets{ServerURL: "http://httpbin.baseline-x:8000/get", ClosedURL: "http://10.244.0.9:9/",
	SlowURL: "http://httpbin.baseline-x:8000/delay/5", SlowTimeout: 2 * time.Second}

var fast = expect.Config{Consecutive: 3, Timeout: 300 * time.Millisecond, Poll: 5 * time.Millisecond}

// current is this process's baseline, as e2e.Current.Baseline is.
var current *report.Baseline

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	c := cluster{targets.ServerURL: ok, targets.ClosedURL: refused, targets.SlowURL: timedOut}
	if os.Getenv(envScenario) == "broken" {
		// A NetworkPolicy that drops: the closed port times out while connecting.
		c[targets.ClosedURL] = connTimeout
	}
	b, err := baseline.Run(ctx, fast, c, baseline.Checks(targets))
	Expect(err).NotTo(HaveOccurred())
	record.Baseline(b)
	data, err := json.Marshal(b)
	Expect(err).NotTo(HaveOccurred())
	return data
}, func(data []byte) {
	var b report.Baseline
	Expect(json.Unmarshal(data, &b)).To(Succeed())
	current = &b
})

var _ = record.GateOnBaseline(baseline.Label, func() *report.Baseline { return current })

// The run's settings, as e2e.Bootstrap reads them from its state.
var _ = record.LeaveOut(record.LeftOutBy(func() settings.Settings {
	switch os.Getenv(envScenario) {
	case "no-mesh":
		return settings.Settings{Install: settings.InstallNone}
	case "no-dataplane":
		return settings.Settings{Install: settings.InstallAuto, NoDataPlane: true}
	}
	return settings.Settings{Install: settings.InstallAuto}
}(), baseline.Label))

// ran marks that a behaviour's body ran, which must not happen after a failed baseline.
func ran(id string) {
	if dir := os.Getenv(envDir); dir != "" {
		f, err := os.OpenFile(dir+"/"+bodyMarker, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = fmt.Fprintln(f, id)
			_ = f.Close()
		}
	}
}

var _ = Describe("behaviours", func() {
	It("MTLS-001: passes", Label("MTLS-001", "mtls"), func() {
		ran("MTLS-001")
		record.Check("MTLS-001", nil, "the documented outcome", map[string]string{"seen": "reset"})
	})
	DescribeTable("authz", func(id string) {
		ran(id)
		record.Check(id, nil, "the documented outcome", nil)
	}, Entry("AUTHZ-001: passes", Label("AUTHZ-001", "authz"), "AUTHZ-001"))
	// Ordered with a BeforeAll, as the posture suite is: a spec left out must not run it.
	Describe("needs a data plane", Ordered, func() {
		BeforeAll(func() { ran("PROBE-001 BeforeAll") })
		It("PROBE-001: passes", Label("PROBE-001", "probes", catalog.LabelDataPlane), func() {
			ran("PROBE-001")
			record.Check("PROBE-001", nil, "the documented outcome", nil)
		})
	})
})

var _ = ReportAfterSuite("baseline conformance report", func(r Report) {
	if dir := os.Getenv(envDir); dir != "" {
		if rep, err := record.WriteReport(dir, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
		} else {
			_ = os.WriteFile(dir+"/summary.txt", []byte(rep.SummaryText()), 0o644)
		}
	}
})

// TestBaselineSuite is the suite itself; TestBaselineRecorded runs it in a child process.
func TestBaselineSuite(t *testing.T) {
	if os.Getenv(envDir) == "" {
		t.Skip("run by TestBaselineRecorded")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "baseline recording")
}
