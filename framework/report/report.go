// Package report holds the conformance report of one run (in the spirit of gateway-api's
// ConformanceReport): the run's versions and, per behaviour ID of framework/catalog, the
// result, the classification of the outcome seen and the evidence. It builds reports from
// Ginkgo's JSON report or JUnit XML, merges many runs into a behaviour × version matrix
// (Markdown and a self-contained HTML page) and diffs two runs: the upgrade gate.
//
// It imports Ginkgo's types package only (data, no DSL): suites record what the report needs
// with Ginkgo's AddReportEntry under the Entry* names below.
package report

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"meshconform/framework/catalog"
)

// APIVersion and Kind mark a file as a conformance report, so readers can tell it from other
// JSON or YAML.
const (
	APIVersion = "meshconform.io/v1alpha1"
	Kind       = "ConformanceReport"
)

// File names of the conformance report in a reports directory. Ginkgo's own reports sit
// beside them (junit.xml, ginkgo.json); the names differ so that nothing overwrites another.
const (
	FileJSON = "conformance.json"
	FileYAML = "conformance.yaml"
)

// Result is what happened to a behaviour in one run.
type Result string

const (
	Pass Result = "pass"
	Fail Result = "fail"
	Skip Result = "skip"
	// NotJudged: the behaviour's specs were not run because the cluster baseline failed (see
	// Baseline): the cluster is at fault, so the behaviour is neither passed nor failed.
	NotJudged Result = "not-judged"
	// LeftOut: the behaviour's specs were left out on purpose because the run cannot exercise
	// them (no Istio with ISTIO_INSTALL=none, no data plane with DATAPLANE=0); each spec's
	// message says why. Nothing was proven, as for a skip, but the run chose it and says so.
	LeftOut Result = "left-out"
)

// rank orders results from worst to best: fail and not-judged < skip < pass. A skip is worse
// than a pass (nothing was proven) but better than a failure; a behaviour not judged because
// the cluster was broken proves as little as a failure does.
func (r Result) rank() int {
	switch r {
	case Pass:
		return 2
	case Skip, LeftOut:
		return 1
	default:
		return 0
	}
}

// Classification says how the outcome seen compares with BEHAVIORS.md (see its "Tolerance"
// section). Empty means not applicable: the behaviour is not checked against an outcome shape.
type Classification string

const (
	Documented Classification = "documented"
	Equivalent Classification = "equivalent"
	Deviation  Classification = "deviation"
)

// severity orders classifications from best to worst; "" (not applicable) is below all.
func (c Classification) severity() int {
	switch c {
	case Documented:
		return 1
	case Equivalent:
		return 2
	case Deviation:
		return 3
	default:
		return 0
	}
}

// Valid reports whether c is one of the three classifications or empty.
func (c Classification) Valid() bool { return c == "" || c.severity() > 0 }

// Worst returns the worse of two classifications; "" loses to any other.
func Worst(a, b Classification) Classification {
	if b.severity() > a.severity() {
		return b
	}
	return a
}

// Cluster says where a run ran.
const (
	ClusterCreated  = "created"  // a kind cluster the suite created
	ClusterExisting = "existing" // a cluster the suite was pointed at
)

// The data-plane modes a run records (DATAPLANE_MODE; framework/settings).
const (
	ModeSidecar   = "sidecar"
	ModeAmbient   = "ambient"
	ModeProxyless = "proxyless"
)

// RunMode is the data-plane mode r ran: its Mode, or ModeSidecar for a report written before
// reports recorded the mode, when sidecar was the only mode meshconform ran.
func RunMode(r Run) string {
	if r.Mode == "" {
		return ModeSidecar
	}
	return r.Mode
}

// The ingress APIs a run records (INGRESS_API; framework/settings).
const (
	IngressIstio      = "istio"
	IngressGatewayAPI = "gateway-api"
)

// RunIngress is the ingress API r's INGRESS-001/002 used: its IngressAPI, or IngressIstio for
// a report written before reports recorded it, when the gateway chart was the only one.
func RunIngress(r Run) string {
	if r.IngressAPI == "" {
		return IngressIstio
	}
	return r.IngressAPI
}

// Comparable says whether two runs' results may be compared behaviour by behaviour: only runs
// of the same data-plane mode (the same expectation is a 403 from a sidecar and a reset from
// ztunnel, so results of two modes are never compared as one), and of the same ingress API
// (INGRESS-001/002 then exercise other objects and another proxy deployment).
func Comparable(base, candidate Run) error {
	if b, c := RunMode(base), RunMode(candidate); b != c {
		return fmt.Errorf("the base ran the %s data plane and the candidate the %s one: results of two modes are never compared as one; compare two runs of the same DATAPLANE_MODE", b, c)
	}
	if b, c := RunIngress(base), RunIngress(candidate); b != c {
		return fmt.Errorf("the base's ingress behaviours used the %s ingress API and the candidate's the %s one: INGRESS-001/002 of two ingress APIs are never compared as one; compare two runs of the same INGRESS_API", b, c)
	}
	return nil
}

// Run is the metadata of one run. Suites record it with AddReportEntry(EntryRun, run) in
// their SynchronizedBeforeSuite, so it reaches both the JSON and the JUnit report.
type Run struct {
	ID                string `json:"id,omitempty"`
	IstioVersion      string `json:"istioVersion,omitempty"`
	IstioRevision     string `json:"istioRevision,omitempty"`
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`
	NodeImage         string `json:"nodeImage,omitempty"`
	// Mode is the data-plane mode (ModeSidecar, ModeAmbient, ModeProxyless); absent in reports from before
	// it was recorded, which RunMode reads as sidecar.
	Mode string `json:"mode,omitempty"`
	// IngressAPI is the API INGRESS-001/002 configured ingress with (INGRESS_API): absent for
	// IngressIstio (and in reports from before it was recorded), IngressGatewayAPI otherwise.
	IngressAPI string `json:"ingressAPI,omitempty"`
	// Strict runs fail on anything but a documented outcome; default runs on deviations only.
	Strict  bool      `json:"strict"`
	Cluster string    `json:"cluster,omitempty"` // ClusterCreated or ClusterExisting
	Date    time.Time `json:"date,omitzero"`
	// DryRun marks a report built from `ginkgo --dry-run`: every behaviour is a skip.
	DryRun bool `json:"dryRun,omitempty"`
	// NoMesh: the run had no Istio on purpose (ISTIO_INSTALL=none); every behaviour is left out.
	NoMesh bool `json:"noMesh,omitempty"`
	// NoDataPlane: the run left out the specs that need a running data plane (DATAPLANE=0).
	NoDataPlane bool `json:"noDataPlane,omitempty"`
	// IstioBuild says how the Istio tested was built when it is not a release, e.g. "source
	// build of release-1.31 at eed52ebb66ad" (scripts/istiod-image.sh).
	IstioBuild string `json:"istioBuild,omitempty"`
	// SuiteFailures are failures outside specs (e.g. Istio did not install), which leave the
	// specs skipped; they explain a column of skips.
	SuiteFailures []string `json:"suiteFailures,omitempty"`

	// Source is the file the report was read from; set by the readers, never written.
	Source string `json:"-"`
}

// Behavior is the result of one behaviour ID in one run, combined over every spec that
// carries the ID's label: any failed spec fails it, the classification is the worst recorded.
type Behavior struct {
	ID             string         `json:"id"`
	Title          string         `json:"title,omitempty"`
	Area           string         `json:"area,omitempty"`
	Result         Result         `json:"result"`
	Classification Classification `json:"classification,omitempty"`
	// Reason is why the worst classification was given (from the classification entry).
	Reason          string       `json:"reason,omitempty"`
	Evidence        []Evidence   `json:"evidence,omitempty"`
	Specs           []SpecResult `json:"specs"`
	DurationSeconds float64      `json:"durationSeconds"`
}

// SpecResult is one Ginkgo spec behind a behaviour.
type SpecResult struct {
	Name            string  `json:"name"`
	Result          Result  `json:"result"`
	Message         string  `json:"message,omitempty"` // failure or skip message
	DurationSeconds float64 `json:"durationSeconds"`
	// Timings says where the spec's time went (absent: nothing measured, e.g. a spec left
	// out before its body, or a report from before timings).
	Timings *SpecTimings `json:"timings,omitempty"`
}

// Summary counts behaviours.
type Summary struct {
	Behaviors  int `json:"behaviors"`
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	Documented int `json:"documented"`
	Equivalent int `json:"equivalent"`
	Deviation  int `json:"deviation"`
	// NotJudged counts behaviours whose specs did not run because the baseline failed.
	NotJudged int `json:"notJudged,omitempty"`
	// LeftOut counts behaviours left out on purpose (see LeftOut); LeftOutWhy counts them by
	// reason.
	LeftOut    int            `json:"leftOut,omitempty"`
	LeftOutWhy map[string]int `json:"leftOutWhy,omitempty"`
}

// Report is the conformance report of one run.
type Report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Run        Run    `json:"run"`
	// Baseline is the run's check of plain reachability without the mesh (nil: the suites
	// recorded none, e.g. a report from before the baseline existed or a dry run).
	Baseline *Baseline `json:"baseline,omitempty"`
	// Timings is where the run's time went (nil: nothing recorded them, e.g. a report from
	// before timings).
	Timings   *Timings   `json:"timings,omitempty"`
	Summary   Summary    `json:"summary"`
	Behaviors []Behavior `json:"behaviors"`
}

// Behavior returns the behaviour with the given ID.
func (r Report) Behavior(id string) (Behavior, bool) {
	for _, b := range r.Behaviors {
		if b.ID == id {
			return b, true
		}
	}
	return Behavior{}, false
}

// idPattern is a behaviour ID as BEHAVIORS.md writes them: MTLS-002, POSTURE-007.
var idPattern = regexp.MustCompile(`^[A-Z]+-[0-9]{3}$`)

// IsBehaviorID reports whether a label is a behaviour ID.
func IsBehaviorID(label string) bool { return idPattern.MatchString(label) }

// BehaviorIDs picks the behaviour IDs out of a spec's labels, in order, each once.
func BehaviorIDs(labels []string) []string {
	var ids []string
	for _, l := range labels {
		l = strings.TrimSpace(l)
		if IsBehaviorID(l) && !slices.Contains(ids, l) {
			ids = append(ids, l)
		}
	}
	return ids
}

// describe fills title and area from the catalog; an ID the catalog does not know keeps its
// prefix as the area, so a report from a newer suite still reads.
func describe(id string) (title, area string) {
	if b, ok := catalog.Lookup(id); ok {
		return b.Title, string(b.Area)
	}
	prefix, _, _ := strings.Cut(id, "-")
	return "", strings.ToLower(prefix)
}

// order sorts behaviour IDs as the catalog lists them; unknown IDs follow, by name.
func order(a, b string) int {
	ia, ib := catalogIndex(a), catalogIndex(b)
	if ia != ib {
		return cmp.Compare(ia, ib)
	}
	return strings.Compare(a, b)
}

var catalogIDs = catalog.IDs()

func catalogIndex(id string) int {
	if i := slices.Index(catalogIDs, id); i >= 0 {
		return i
	}
	return len(catalogIDs)
}

// finish sorts behaviours, their specs and evidence, and counts the summary, so that the same
// run always gives the same bytes.
func (r *Report) finish() {
	r.APIVersion, r.Kind = APIVersion, Kind
	slices.SortFunc(r.Behaviors, func(a, b Behavior) int { return order(a.ID, b.ID) })
	r.Summary = Summary{}
	for i := range r.Behaviors {
		b := &r.Behaviors[i]
		if b.Title == "" || b.Area == "" {
			t, a := describe(b.ID)
			b.Title, b.Area = cmp.Or(b.Title, t), cmp.Or(b.Area, a)
		}
		slices.SortStableFunc(b.Specs, func(x, y SpecResult) int { return strings.Compare(x.Name, y.Name) })
		slices.SortStableFunc(b.Evidence, func(x, y Evidence) int { return strings.Compare(x.Spec, y.Spec) })
		r.Summary.Behaviors++
		switch b.Result {
		case Pass:
			r.Summary.Passed++
		case Fail:
			r.Summary.Failed++
		case NotJudged:
			r.Summary.NotJudged++
		case LeftOut:
			r.Summary.LeftOut++
			if r.Summary.LeftOutWhy == nil {
				r.Summary.LeftOutWhy = map[string]int{}
			}
			r.Summary.LeftOutWhy[b.leftOutReason()]++
		default:
			r.Summary.Skipped++
		}
		switch b.Classification {
		case Documented:
			r.Summary.Documented++
		case Equivalent:
			r.Summary.Equivalent++
		case Deviation:
			r.Summary.Deviation++
		}
	}
}

// combine folds one spec's result into a behaviour.
func (b *Behavior) combine(s SpecResult, entries []entryValues) {
	b.Specs = append(b.Specs, s)
	b.DurationSeconds = roundSeconds(b.DurationSeconds + s.DurationSeconds)
	b.Result = combineResults(b.Result, s.Result)
	for _, e := range entries {
		for _, c := range e.classes {
			if c.ID != "" && c.ID != b.ID {
				continue
			}
			if w := Worst(b.Classification, c.Class); w != b.Classification || b.Reason == "" && w == c.Class {
				b.Classification, b.Reason = w, c.Reason
			}
		}
		for _, ev := range e.evidence {
			if ev.ID != "" && ev.ID != b.ID {
				continue
			}
			ev.Spec = cmp.Or(ev.Spec, s.Name)
			b.Evidence = append(b.Evidence, ev)
		}
	}
}

// combineResults folds two results of one behaviour: any failure wins, then not judged (a
// spec that could not run leaves the behaviour unproven even if another passed), then left out
// (the run could not exercise part of it, so a pass of the rest does not prove the behaviour:
// its specs say what passed), then pass, then skip.
func combineResults(a, b Result) Result {
	switch {
	case a == Fail || b == Fail:
		return Fail
	case a == NotJudged || b == NotJudged:
		return NotJudged
	case a == LeftOut || b == LeftOut:
		return LeftOut
	case a == Pass || b == Pass:
		return Pass
	default:
		return Skip
	}
}

// leftOutReason is why a left-out behaviour was left out: its first left-out spec's reason.
func (b Behavior) leftOutReason() string {
	for _, s := range b.Specs {
		if s.Result == LeftOut {
			return strings.TrimPrefix(s.Message, leftOutPrefix)
		}
	}
	return "unknown"
}

func roundSeconds(s float64) float64 {
	return float64(time.Duration(s*float64(time.Second)).Round(time.Millisecond)) / float64(time.Second)
}

// State is a behaviour's result and classification as one short word pair: "pass/documented".
func (b Behavior) State() string {
	if b.Classification == "" {
		return string(b.Result)
	}
	return string(b.Result) + "/" + string(b.Classification)
}

// Seen is the one-line evidence of a behaviour: for a failure, what its failed specs saw (their
// evidence, else their failure message); otherwise the first evidence, else the first message.
func (b Behavior) Seen() string {
	if b.Result == Fail {
		for _, s := range b.Specs {
			if s.Result != Fail {
				continue
			}
			for _, e := range b.Evidence {
				if e.Spec == s.Name && e.Summary() != "" {
					return e.Summary()
				}
			}
			if s.Message != "" {
				return firstLine(s.Message)
			}
		}
	}
	for _, e := range b.Evidence {
		if s := e.Summary(); s != "" {
			return s
		}
	}
	for _, s := range b.Specs {
		if s.Message != "" {
			return firstLine(s.Message)
		}
	}
	return ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// Describe names a run for people: "Istio 1.31.1 (rev canary), Kubernetes 1.37.0, strict".
func (r Run) Describe() string {
	var parts []string
	if r.IstioVersion != "" {
		s := "Istio " + r.IstioVersion
		if r.IstioRevision != "" {
			s += " (revision " + r.IstioRevision + ")"
		}
		if r.IstioBuild != "" {
			s += " [" + r.IstioBuild + "]"
		}
		parts = append(parts, s)
	}
	if r.NoMesh {
		parts = append(parts, "no Istio (ISTIO_INSTALL=none)")
	}
	if r.NoDataPlane {
		parts = append(parts, "no data plane (DATAPLANE=0)")
	}
	if r.KubernetesVersion != "" {
		parts = append(parts, "Kubernetes "+r.KubernetesVersion)
	}
	if len(parts) == 0 && r.ID == "" {
		return "no run metadata"
	}
	parts = append(parts, RunMode(r)+" data plane")
	if RunIngress(r) != IngressIstio {
		parts = append(parts, "Gateway API ingress")
	}
	if r.Strict {
		parts = append(parts, "strict")
	}
	if r.ID != "" {
		parts = append(parts, "run "+r.ID)
	}
	return strings.Join(parts, ", ")
}

// mergeRun fills empty fields of r from o, and says which version fields disagree: one report
// is one cell of the matrix, so two Istio versions in it are an error.
func (r *Run) mergeRun(o Run) error {
	if r.IstioVersion != "" && o.IstioVersion != "" && r.IstioVersion != o.IstioVersion {
		return fmt.Errorf("the suites ran against different Istio versions (%s and %s); build one report per version", r.IstioVersion, o.IstioVersion)
	}
	if r.Mode != "" && o.Mode != "" && r.Mode != o.Mode {
		return fmt.Errorf("the suites ran against different data-plane modes (%s and %s); build one report per mode", r.Mode, o.Mode)
	}
	if r.KubernetesVersion != "" && o.KubernetesVersion != "" && r.KubernetesVersion != o.KubernetesVersion {
		return fmt.Errorf("the suites ran against different Kubernetes versions (%s and %s); build one report per version", r.KubernetesVersion, o.KubernetesVersion)
	}
	r.ID = cmp.Or(r.ID, o.ID)
	r.IstioVersion = cmp.Or(r.IstioVersion, o.IstioVersion)
	r.IstioRevision = cmp.Or(r.IstioRevision, o.IstioRevision)
	r.KubernetesVersion = cmp.Or(r.KubernetesVersion, o.KubernetesVersion)
	r.NodeImage = cmp.Or(r.NodeImage, o.NodeImage)
	r.Mode = cmp.Or(r.Mode, o.Mode)
	r.IngressAPI = cmp.Or(r.IngressAPI, o.IngressAPI)
	r.Strict = r.Strict || o.Strict
	r.Cluster = cmp.Or(r.Cluster, o.Cluster)
	if !o.Date.IsZero() && (r.Date.IsZero() || o.Date.Before(r.Date)) {
		r.Date = o.Date // the run started when its first suite did
	}
	r.DryRun = r.DryRun || o.DryRun
	r.NoMesh = r.NoMesh || o.NoMesh
	r.NoDataPlane = r.NoDataPlane || o.NoDataPlane
	r.IstioBuild = cmp.Or(r.IstioBuild, o.IstioBuild)
	r.SuiteFailures = append(r.SuiteFailures, o.SuiteFailures...)
	return nil
}
