// Package e2e is the Ginkgo side of the suites: it brings up (or attaches to) the run once
// per suite, shares it with Ginkgo's parallel processes, and runs cases from suites/cases as
// specs: namespaces and workloads per spec, policies per step, probes that must converge,
// evidence recorded in the report, a diagnostics dump on failure, and cleanup that also
// runs on an interrupt.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meshconform/framework/baseline"
	"meshconform/framework/catalog"
	"meshconform/framework/dataplane"
	"meshconform/framework/expect"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
	"meshconform/internal/istiosrc"
	"meshconform/suites/cases"
	"meshconform/suites/internal/record"
)

// Run is what every spec stands on, the same in every Ginkgo process.
type Run struct {
	State  provision.State
	Config *rest.Config
	Kube   kubernetes.Interface
	Istio  istioclient.Interface
	// Dynamic applies and reads the Gateway API's objects (INGRESS_API=gateway-api).
	Dynamic dynamic.Interface
	Expect  expect.Config
	Mode    expect.Mode
	// DataPlane is the run's data-plane mode: everything that depends on it goes through it.
	DataPlane dataplane.DataPlane
	// Gateway is the ingress gateway found in the cluster (zero when none); GatewayErr says
	// why none was found.
	Gateway    cases.GatewayRef
	GatewayErr error
	// ReportsDir is where diagnostics and reports go.
	ReportsDir string
	// Baseline is the run's baseline, judged once by process 1 before any spec.
	Baseline *report.Baseline
}

// Current is the run of this process, set by the SynchronizedBeforeSuite of Bootstrap.
var Current *Run

// owned is process 1's: the run was brought up by this suite (no driver), so the suite ends it.
var owned bool

// Bootstrap registers the suite-level nodes. Call it once from the suite's test file:
//
//	var _ = e2e.Bootstrap("conformance")
//
// and, for the behaviour suite, declare the registered behaviours with Specs.
func Bootstrap(suite string) bool {
	SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
		start := time.Now()
		s, err := settings.FromEnvironment()
		Expect(err).NotTo(HaveOccurred(), "settings")
		st, own, err := provision.Acquire(ctx, s, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred(), "bringing up the run")
		owned = own
		// Specs and the baseline only start deleting their namespaces (the namespace
		// controller empties them while later specs run); once every process is done, this
		// waits until they are gone, so the run leaves nothing behind. It runs as process 1's
		// SynchronizedAfterSuite would: after every process, before the report is written.
		DeferCleanup(func() { awaitNamespaces(st.RunID) })
		fmt.Fprintf(GinkgoWriter, "run ready in %s: %s\n", provision.Elapsed(time.Since(start)), st.Summary())
		// Once per run (process 1), so the report holds one description of what was tested.
		AddReportEntry(report.EntryRun, runEntry(st), ReportEntryVisibilityNever)
		// The baseline, before any behaviour: its failure does not fail this node (the specs
		// must still be reported, as not judged); GateOnBaseline acts on it.
		skip := s.SkipBaseline || st.Settings.SkipBaseline
		var waits wait.Sum
		began := time.Now()
		b, reused := reuseBaseline(os.Getenv(baseline.ReuseEnv), began)
		if !reused {
			b = runBaseline(wait.WithMeter(ctx, &waits), st, skip)
		}
		phases := runPhases(st, start, os.Getenv(provision.SuitesStartedEnv))
		if !skip && !reused {
			phases = append(phases, report.Measured(report.PhaseBaseline, time.Since(began), waits.Summed().Wall))
		}
		record.Baseline(b)
		AddReportEntry(report.EntryTimings, report.Timings{Phases: phases}, ReportEntryVisibilityNever)
		fmt.Fprintln(GinkgoWriter, b.String())
		data, err := json.Marshal(shared{State: mustMarshal(st), Baseline: b})
		Expect(err).NotTo(HaveOccurred())
		setUp = time.Now()
		return data
	}, func(ctx SpecContext, data []byte) {
		var sh shared
		Expect(json.Unmarshal(data, &sh)).To(Succeed())
		st, err := provision.UnmarshalState(sh.State)
		Expect(err).NotTo(HaveOccurred())
		r, err := newRun(ctx, st)
		Expect(err).NotTo(HaveOccurred())
		r.Baseline = &sh.Baseline
		Current = r
	}, NodeTimeout(30*time.Minute))

	record.GateOnBaseline(baseline.Label, func() *report.Baseline {
		if Current == nil {
			return nil
		}
		return Current.Baseline
	})

	// What this run cannot exercise (no Istio, no data plane) is left out on purpose, each
	// spec with the reason, before its body runs.
	record.LeaveOut(func(labels []string) string {
		if Current == nil {
			return ""
		}
		if why := record.LeftOutBy(Current.State.Settings, baseline.Label)(labels); why != "" {
			return why
		}
		if Current.State.Mode() == settings.ModeAmbient {
			for _, l := range labels {
				if b, ok := catalog.Lookup(l); ok {
					if why := b.NotJudgedInAmbient(); why != "" {
						return why
					}
				}
			}
		}
		return notApplicable(Current)
	})

	record.Timings()

	ReportAfterSuite(suite+" conformance report", func(r Report) {
		if Current == nil {
			return
		}
		dir := filepath.Join(Current.ReportsDir, suite)
		var phases []report.Phase
		if !setUp.IsZero() {
			phases = append(phases, report.Phase{Name: report.PhaseSpecs, DurationSeconds: report.Seconds(time.Since(setUp))})
		}
		rep, err := record.WriteReport(dir, r, phases...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshconform: writing the conformance report: %v\n", err)
		}
		if owned {
			// Ginkgo's reason for a signal: an interrupted run is cleaned up, as the driver's is.
			interrupted := slices.Contains(r.SpecialSuiteFailureReasons, "Interrupted by User")
			ended, _ := provision.End(context.Background(), Current.State, provision.OutcomeOf(interrupted, !r.SuiteSucceeded), os.Stdout)
			if err == nil {
				// This suite ended the run: the cleanup and the total are its to record.
				if amended, aerr := report.RecordEnd(dir, Current.State.RunID, ended.Cleanup, ended.Total); aerr != nil {
					fmt.Fprintf(os.Stderr, "meshconform: %v\n", aerr)
				} else {
					rep = amended
				}
			}
		}
		switch {
		case err != nil:
		case os.Getenv(provision.SuitesStartedEnv) != "" && !owned:
			fmt.Fprintf(os.Stdout, "\nconformance report: %s (the closing table follows the cleanup)\n", dir)
		default:
			fmt.Fprintf(os.Stdout, "\n%s\nconformance report: %s\n", summaryTable(rep), dir)
		}
	})
	return true
}

// reuseBaseline is the passed baseline of the report at from (baseline.ReuseEnv), when the
// driver named one and it may stand for this suite's; otherwise the suite judges its own, and
// says why it did not reuse.
func reuseBaseline(from string, now time.Time) (report.Baseline, bool) {
	if from == "" {
		return report.Baseline{}, false
	}
	// The baseline section only: the report of a suite with every spec skipped holds no
	// behaviour, which report.Read refuses.
	var rep struct {
		APIVersion string           `json:"apiVersion"`
		Kind       string           `json:"kind"`
		Baseline   *report.Baseline `json:"baseline"`
	}
	info, err := os.Stat(from)
	if err == nil {
		var data []byte
		if data, err = os.ReadFile(from); err == nil {
			err = json.Unmarshal(data, &rep)
		}
	}
	if err == nil && (rep.APIVersion != report.APIVersion || rep.Kind != report.Kind) {
		err = fmt.Errorf("not a conformance report (apiVersion %q, kind %q)", rep.APIVersion, rep.Kind)
	}
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "baseline: not reusing %s (%v): judging the cluster again\n", from, err)
		return report.Baseline{}, false
	}
	b, ok, why := baseline.Reuse(rep.Baseline, from, now.Sub(info.ModTime()))
	if !ok {
		fmt.Fprintf(GinkgoWriter, "baseline: not reusing it: %s; judging the cluster again\n", why)
	}
	return b, ok
}

// awaitNamespaces waits until every namespace of run runID that specs started deleting is
// gone (the specs phase counts the wait). A namespace left behind is said on stderr, with
// what holds it: the run must not leave a cluster changed.
func awaitNamespaces(runID string) {
	if Current == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	began := time.Now()
	n, err := workload.WaitTerminating(ctx, Current.Kube, runID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshconform: cleanup: %v\n", err)
		return
	}
	fmt.Fprintf(GinkgoWriter, "cleanup: %d namespace(s) still being deleted when the specs ended, gone %s later\n",
		n, provision.Elapsed(time.Since(began)))
}

// setUp is when process 1's SynchronizedBeforeSuite ended: the specs phase starts there.
var setUp time.Time

// runPhases are the run's phases before the specs, as process 1 knows them at the end of its
// setup: Up's (from the run state, whoever ran it), and the compile phase when a driver said
// when it started go tool ginkgo (startedEnv, provision.SuitesStartedEnv): from then to this
// suite's first node (began).
func runPhases(st provision.State, began time.Time, startedEnv string) []report.Phase {
	phases := slices.Clone(st.Phases)
	if startedEnv == "" {
		return phases
	}
	started, err := time.Parse(time.RFC3339Nano, startedEnv)
	if err != nil || began.Before(started) {
		fmt.Fprintf(GinkgoWriter, "meshconform: %s=%q is no start time before this suite's: no compile phase\n", provision.SuitesStartedEnv, startedEnv)
		return phases
	}
	return append(phases, report.Phase{Name: report.PhaseCompile, DurationSeconds: report.Seconds(began.Sub(started))})
}

// shared is what process 1 hands every process: the run and its baseline.
type shared struct {
	State    json.RawMessage `json:"state"`
	Baseline report.Baseline `json:"baseline"`
}

func mustMarshal(st provision.State) []byte {
	GinkgoHelper()
	data, err := st.Marshal()
	Expect(err).NotTo(HaveOccurred())
	return data
}

func runEntry(st provision.State) report.Run {
	cluster := report.ClusterCreated
	if st.Existing || !st.CreatedCluster {
		cluster = report.ClusterExisting
	}
	return report.Run{ID: st.RunID, IstioVersion: st.Istio.Version, IstioRevision: st.Istio.Revision,
		KubernetesVersion: st.KubernetesVersion, NodeImage: st.NodeImage, Mode: st.Mode(),
		Strict: st.Settings.Strict, Cluster: cluster, Date: st.Started,
		NoMesh: st.Settings.NoMesh(), NoDataPlane: st.Settings.NoDataPlane, IstioBuild: istioBuild(st.Istio.Version),
		IngressAPI: ingressAPI(st.Settings)}
}

// ingressAPI is the report's IngressAPI: absent for the default (istio), so that reports of
// runs that used the gateway chart stay as they were.
func ingressAPI(s settings.Settings) string {
	if s.Ingress() == settings.IngressIstio {
		return ""
	}
	return s.Ingress()
}

// dataPlaneOf is the run's data plane: proxyless gRPC when the state's mode is proxyless, ambient
// when it is ambient, else the sidecar mode; sidecar and ambient run unless DATAPLANE=0.
func dataPlaneOf(st provision.State) dataplane.DataPlane {
	switch st.Mode() {
	case settings.ModeProxyless:
		return dataplane.Proxyless{}
	case settings.ModeAmbient:
		return dataplane.Ambient{Running: !st.Settings.NoDataPlane}
	}
	return dataplane.Sidecar{Running: !st.Settings.NoDataPlane}
}

// istioBuild says, for a version that is no Istio release but a source build of a branch
// pinned in internal/istiosrc (scripts/istiod-image.sh), what was built; "" for a release.
func istioBuild(version string) string {
	b, ok := istiosrc.ByVersion(version)
	if !ok {
		return ""
	}
	return b.Build()
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
	ec, err := st.Settings.ExpectConfig()
	if err != nil {
		return nil, err
	}
	mode := expect.Default
	if st.Settings.Strict {
		mode = expect.Strict
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	r := &Run{State: st, Config: cfg, Kube: kube, Istio: istio, Dynamic: dyn, Expect: ec, Mode: mode, DataPlane: dataPlaneOf(st),
		ReportsDir: st.Settings.ReportsDir}
	if r.ReportsDir == "" {
		r.ReportsDir = settings.DefaultReportsDir
	}
	if st.Settings.Ingress() == settings.IngressGatewayAPI {
		// Each ingress spec deploys its own Gateway; the gateway chart is not looked for.
		r.Gateway, r.GatewayErr = cases.FindGatewayAPI(ctx, kube, dyn)
	} else {
		r.Gateway, r.GatewayErr = cases.FindGateway(ctx, kube, st.Istio.Revision)
	}
	return r, nil
}

// IDLabels are the Ginkgo labels of a spec of behaviour id.
func IDLabels(id string, extra ...string) Labels {
	b := catalog.MustLookup(id)
	ls := Labels{id, string(b.Area)}
	ls = append(ls, b.Labels...)
	return append(ls, extra...)
}

// InjectedSpecLabels are the labels of a spec that judges only what the injector wrote into a
// pod of behaviour id, never the running proxy: IDLabels without catalog.LabelDataPlane, so that
// it runs where no proxy can (DATAPLANE=0). The behaviour's other specs stay left out there,
// and the behaviour is reported left out, with this spec's result among its specs.
func InjectedSpecLabels(id string, extra ...string) Labels {
	var ls Labels
	for _, l := range IDLabels(id, extra...) {
		if l != catalog.LabelDataPlane {
			ls = append(ls, l)
		}
	}
	return ls
}

// summaryTable is the short table a run ends with.
func summaryTable(rep report.Report) string { return rep.SummaryText() }
