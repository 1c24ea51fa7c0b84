package report

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The phases of a run, in the order they run. Each is measured where it happens: the driver's
// (scripts/e2e, provision.Up and Down) reach the report through the run state and the
// driver's amendment (RecordEnd); the suite's are measured in process 1.
const (
	// PhasePreflight: provision.Up's checks (settings, engine, ports, chart index).
	PhasePreflight = "preflight"
	// PhaseCluster: the kind cluster created or reused until its nodes and CoreDNS are
	// ready, or KUBE_CONTEXT attached and its permissions checked.
	PhaseCluster = "cluster"
	// PhaseImages: Istio's and the samples' images pulled on the host and loaded into the
	// kind nodes (absent on an existing cluster).
	PhaseImages = "images"
	// PhaseIstio: Istio installed through Helm and waited for, or detected and waited for
	// (absent with ISTIO_INSTALL=none).
	PhaseIstio = "istio"
	// PhaseCompile: from the driver starting `go tool ginkgo` to the suite's first node:
	// building Ginkgo's CLI and the suite's test binary (or finding them in Go's cache) and
	// starting its processes. Only a driver measures it.
	PhaseCompile = "compile"
	// PhaseBaseline: the cluster baseline (its namespace, plain workloads ready, its probes
	// converged, its namespace's deletion started), in process 1 before any spec (absent with
	// BASELINE=0).
	PhaseBaseline = "baseline"
	// PhaseSpecs: from the end of the suite's setup (process 1's SynchronizedBeforeSuite) to
	// its conformance report: every spec on every process, and the after-suite nodes, among
	// them the wait until every namespace the baseline and the specs deleted is gone.
	PhaseSpecs = "specs"
	// PhaseCleanup: provision.Down (KEEP_CLUSTER: the kind cluster deleted; the Istio a run
	// installed on an existing cluster uninstalled), measured by whoever ends the run.
	PhaseCleanup = "cleanup"
)

// ConformanceSuite is the behaviour suite's name (suites/e2e_test.go): its conformance report
// is written to <REPORTS_DIR>/conformance/, where the driver amends it (RecordEnd).
const ConformanceSuite = "conformance"

// provisioning are the phases spent bringing the cluster and Istio up and down: kind, Docker
// and Helm's time, but for what they spend inside the waiter.
var provisioning = []string{PhaseCluster, PhaseImages, PhaseIstio, PhaseCleanup}

// Timings is the report's section on where the run's time went: its phases in the order they
// ran and its total. Every value is measured, never estimated: a phase that did not happen, or
// that nothing measured, is absent (never zero). Reports from before timings have none.
type Timings struct {
	Phases []Phase `json:"phases,omitempty"`
	// TotalSeconds is the run's wall time from the start of provision.Up (before preflight)
	// to the end of provision.Down, measured by whoever ended the run (the driver, or a suite
	// that brought its run up itself); absent when the run was ended elsewhere.
	TotalSeconds *float64 `json:"totalSeconds,omitempty"`
	// Processes is how many Ginkgo processes ran the specs (Ginkgo's ParallelTotal).
	Processes int `json:"processes,omitempty"`
}

// Phase is one phase of the run and its wall time.
type Phase struct {
	Name            string  `json:"name"`
	DurationSeconds float64 `json:"durationSeconds"`
	// WaitSeconds is the part of the phase spent inside framework/wait's waiter, polling until
	// the cluster or the mesh was as awaited (kind nodes ready, istiod ready, namespaces
	// gone, …); absent when the phase was not metered (PhaseCompile, PhaseSpecs: the specs'
	// own waits are in their SpecTimings).
	WaitSeconds *float64 `json:"waitSeconds,omitempty"`
}

// SpecTimings is where one spec's time went, measured in its process (suites/internal/record).
// A part that did not happen is absent: a spec without namespaces has no setup, one that
// passed no diagnostics. The spec's own durationSeconds (Ginkgo's) holds all of them.
type SpecTimings struct {
	// SetupSeconds: the runner's setup, wall time: namespaces created, sample workloads
	// deployed and waited for until they and their proxies were ready.
	SetupSeconds *float64 `json:"setupSeconds,omitempty"`
	// ConvergenceSeconds: the time the spec's body (outside setup) spent inside the waiter:
	// probes and checks converging on the expected outcome, observation windows.
	ConvergenceSeconds *float64 `json:"convergenceSeconds,omitempty"`
	// MeshWaitSeconds: the part of ConvergenceSeconds before each wait's final streak began,
	// the mesh not yet showing the expected outcome (all of a wait that did not converge). The
	// rest of ConvergenceSeconds confirmed it: the N probes in a row, and windows.
	MeshWaitSeconds *float64 `json:"meshWaitSeconds,omitempty"`
	// TeardownSeconds: the spec's cleanup, wall time: the root namespace's policies restored,
	// its namespaces' deletion requested (the suite waits once, at its end, until they are
	// gone: the next spec need not wait for the namespace controller).
	TeardownSeconds *float64 `json:"teardownSeconds,omitempty"`
	// DiagnosticsSeconds: the failure dump, wall time (failed specs only).
	DiagnosticsSeconds *float64 `json:"diagnosticsSeconds,omitempty"`
	// WaitSeconds: all the time the spec spent inside the waiter, in every part (readiness,
	// convergence, deletion): what the closing table counts as waiting for Kubernetes and Istio.
	WaitSeconds *float64 `json:"waitSeconds,omitempty"`
}

// Empty reports whether nothing was measured.
func (t SpecTimings) Empty() bool { return t == SpecTimings{} }

// Seconds is d in the report's unit: seconds, rounded to the millisecond.
func Seconds(d time.Duration) float64 { return roundSeconds(d.Seconds()) }

// SecondsOf is d as an optional field's value.
func SecondsOf(d time.Duration) *float64 { return new(Seconds(d)) }

// Measured is a phase that took took, of which waited inside the waiter.
func Measured(name string, took, waited time.Duration) Phase {
	return Phase{Name: name, DurationSeconds: Seconds(took), WaitSeconds: SecondsOf(waited)}
}

// Phase returns the phase of that name.
func (t *Timings) Phase(name string) (Phase, bool) {
	if t == nil {
		return Phase{}, false
	}
	i := slices.IndexFunc(t.Phases, func(p Phase) bool { return p.Name == name })
	if i < 0 {
		return Phase{}, false
	}
	return t.Phases[i], true
}

// Add appends phases, each replacing one of the same name.
func (t *Timings) Add(phases ...Phase) {
	for _, p := range phases {
		if i := slices.IndexFunc(t.Phases, func(q Phase) bool { return q.Name == p.Name }); i >= 0 {
			t.Phases[i] = p
			continue
		}
		t.Phases = append(t.Phases, p)
	}
}

// merge adds o's phases that t lacks: several suites of one run share the driver's phases.
func (t *Timings) merge(o Timings) {
	for _, p := range o.Phases {
		if _, ok := t.Phase(p.Name); !ok {
			t.Phases = append(t.Phases, p)
		}
	}
	if t.TotalSeconds == nil {
		t.TotalSeconds = o.TotalSeconds
	}
	t.Processes = max(t.Processes, o.Processes)
}

// RecordEnd adds to the conformance report in dir what the run's owner measured after the
// suite wrote it: the cleanup phase (provision.Down) and the run's total, and writes it again
// (JSON and YAML). The report must be run runID's: one left by an earlier run (this run's
// suite wrote none) is not touched, and the error says so.
func RecordEnd(dir, runID string, cleanup Phase, total time.Duration) (Report, error) {
	path := filepath.Join(dir, FileJSON)
	if _, err := os.Stat(path); err != nil {
		return Report{}, fmt.Errorf("no conformance report in %s: the suites wrote none", dir)
	}
	r, err := Read(path)
	if err != nil {
		return Report{}, err
	}
	if r.Run.ID != runID {
		return r, fmt.Errorf("%s is run %q's, not this run's (%s): the suites wrote no report of their own", path, r.Run.ID, runID)
	}
	if r.Timings == nil {
		r.Timings = &Timings{}
	}
	r.Timings.Add(cleanup)
	r.Timings.TotalSeconds = SecondsOf(total)
	if err := r.WriteFiles(dir); err != nil {
		return r, err
	}
	return r, nil
}
