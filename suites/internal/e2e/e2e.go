// Package e2e is the Ginkgo side of the suites: it brings up (or attaches to) the run once
// per suite, shares it with Ginkgo's parallel processes, and runs cases from suites/cases as
// specs: namespaces and workloads per spec, policies per step, probes that must converge,
// evidence recorded in the report, a diagnostics dump on failure, and cleanup that also
// runs on an interrupt.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meshconform/framework/catalog"
	"meshconform/framework/expect"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/suites/cases"
	"meshconform/suites/internal/record"
)

// Run is what every spec stands on, the same in every Ginkgo process.
type Run struct {
	State  provision.State
	Config *rest.Config
	Kube   kubernetes.Interface
	Istio  istioclient.Interface
	Expect expect.Config
	Mode   expect.Mode
	// Gateway is the ingress gateway found in the cluster (zero when none); GatewayErr says
	// why none was found.
	Gateway    cases.GatewayRef
	GatewayErr error
	// ReportsDir is where diagnostics and reports go.
	ReportsDir string
}

// Current is the run of this process, set by the SynchronizedBeforeSuite of Bootstrap.
var Current *Run

// owned is process 1's: the run was brought up by this suite (no driver), so the suite ends it.
var owned bool

// Bootstrap registers the suite-level nodes. Call it once from the suite's test file:
//
//	var _ = e2e.Bootstrap("conformance")
func Bootstrap(suite string) bool {
	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		s, err := settings.FromEnvironment()
		Expect(err).NotTo(HaveOccurred(), "settings")
		start := time.Now()
		st, own, err := provision.Acquire(ctx, s, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred(), "bringing up the run")
		owned = own
		fmt.Fprintf(GinkgoWriter, "run ready in %s: %s\n", provision.Elapsed(time.Since(start)), st.Summary())
		// Once per run (process 1), so the report holds one description of what was tested.
		AddReportEntry(report.EntryRun, runEntry(st), ReportEntryVisibilityNever)
		data, err := st.Marshal()
		Expect(err).NotTo(HaveOccurred())
		return data
	}, func(ctx SpecContext, data []byte) {
		st, err := provision.UnmarshalState(data)
		Expect(err).NotTo(HaveOccurred())
		r, err := newRun(ctx, st)
		Expect(err).NotTo(HaveOccurred())
		Current = r
	}, NodeTimeout(30*time.Minute))

	ReportAfterSuite(suite+" conformance report", func(r Report) {
		if Current == nil {
			return
		}
		dir := filepath.Join(Current.ReportsDir, suite)
		rep, err := record.WriteReport(dir, r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshconform: writing the conformance report: %v\n", err)
		} else {
			fmt.Fprintf(os.Stdout, "\n%s\nconformance report: %s\n", summaryTable(rep), dir)
		}
		if owned {
			failed := !r.SuiteSucceeded
			ctx := context.Background()
			if err := provision.Down(ctx, Current.State, provision.OutcomeOf(ctx, failed), os.Stdout); err != nil {
				fmt.Fprintf(os.Stderr, "meshconform: cleanup: %v\n", err)
			}
		}
	})
	return true
}

func runEntry(st provision.State) report.Run {
	cluster := report.ClusterCreated
	if st.Existing || !st.CreatedCluster {
		cluster = report.ClusterExisting
	}
	return report.Run{ID: st.RunID, IstioVersion: st.Istio.Version, IstioRevision: st.Istio.Revision,
		KubernetesVersion: st.KubernetesVersion, NodeImage: st.NodeImage, Mode: report.ModeSidecar,
		Strict: st.Settings.Strict, Cluster: cluster, Date: st.Started}
}

func newRun(ctx context.Context, st provision.State) (*Run, error) {
	cfg, err := st.RESTConfig()
	if err != nil {
		return nil, err
	}
	// Probes exec many times in parallel; client-go's default 5 QPS would throttle them.
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	istio, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ec, err := expect.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	mode := expect.Default
	if st.Settings.Strict {
		mode = expect.Strict
	}
	r := &Run{State: st, Config: cfg, Kube: kube, Istio: istio, Expect: ec, Mode: mode,
		ReportsDir: st.Settings.ReportsDir}
	if r.ReportsDir == "" {
		r.ReportsDir = settings.DefaultReportsDir
	}
	r.Gateway, r.GatewayErr = cases.FindGateway(ctx, kube, st.Istio.Revision)
	return r, nil
}

// CaseLabels are a case's Ginkgo labels: its behaviour ID, its area and the catalog's labels.
func CaseLabels(c cases.Case) Labels {
	return IDLabels(c.ID, c.Labels...)
}

// IDLabels are the Ginkgo labels of a spec of behaviour id.
func IDLabels(id string, extra ...string) Labels {
	b := catalog.MustLookup(id)
	ls := Labels{id, string(b.Area)}
	ls = append(ls, b.Labels...)
	return append(ls, extra...)
}

// summaryTable is the short table a run ends with.
func summaryTable(rep report.Report) string {
	var bad []string
	for _, b := range rep.Behaviors {
		if b.Result == report.Fail {
			bad = append(bad, b.ID)
		}
	}
	sm := rep.Summary
	var sb strings.Builder
	fmt.Fprintf(&sb, "behaviours: %d passed (%d documented, %d equivalent), %d failed (%d deviations), %d skipped\n",
		sm.Passed, sm.Documented, sm.Equivalent, sm.Failed, sm.Deviation, sm.Skipped)
	if len(bad) > 0 {
		fmt.Fprintf(&sb, "failed: %s\nrerun one: make e2e LABELS=%s REUSE_CLUSTER=1\n", strings.Join(bad, " "), bad[0])
	}
	return sb.String()
}
