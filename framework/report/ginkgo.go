package report

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// Option adjusts how a report is built.
type Option func(*buildOptions)

type buildOptions struct {
	run Run
}

// WithRun sets run metadata the suites did not record (or that the caller knows better, e.g.
// the node image given to make e2e). Versions that disagree with a recorded EntryRun are an
// error, not silently replaced.
func WithRun(r Run) Option { return func(o *buildOptions) { o.run = r } }

// builder accumulates specs from either reader.
type builder struct {
	run       Run
	baseline  *Baseline
	timings   *Timings
	processes int
	behaviors map[string]*Behavior
	order     []string
}

func newBuilder(opts []Option) *builder {
	var o buildOptions
	for _, opt := range opts {
		opt(&o)
	}
	return &builder{run: o.run, behaviors: map[string]*Behavior{}}
}

// spec is one spec as either reader sees it.
type spec struct {
	name       string
	leafType   string // "It", "SynchronizedBeforeSuite", ...
	suiteLevel bool
	labels     []string
	result     Result
	message    string
	seconds    float64
	entries    entryValues
}

func (b *builder) add(s spec) error {
	for _, r := range s.entries.runs {
		if err := b.run.mergeRun(r); err != nil {
			return err
		}
	}
	for _, bl := range s.entries.baselines {
		// One per run; with several suites in one report, a failed one wins.
		if b.baseline == nil || bl.Status == BaselineFailed {
			b.baseline = &bl
		}
	}
	for _, t := range s.entries.timings {
		if b.timings == nil {
			b.timings = &Timings{}
		}
		b.timings.merge(t)
	}
	switch {
	case s.result == Skip && len(s.entries.notJudged) > 0:
		s.result, s.message = NotJudged, s.entries.notJudged[0].String()
	case s.result == Skip && len(s.entries.leftOut) > 0:
		s.result, s.message = LeftOut, s.entries.leftOut[0].String()
	}
	if s.suiteLevel {
		if s.result == Fail {
			b.run.SuiteFailures = append(b.run.SuiteFailures, fmt.Sprintf("[%s] %s", s.leafType, firstLine(s.message)))
		}
		return nil
	}
	sr := SpecResult{Name: s.name, Result: s.result, Message: s.message, DurationSeconds: roundSeconds(s.seconds)}
	if n := len(s.entries.spec); n > 0 && !s.entries.spec[n-1].Empty() {
		sr.Timings = &s.entries.spec[n-1] // one per spec; a retried spec's last attempt
	}
	for _, id := range BehaviorIDs(s.labels) {
		bh, ok := b.behaviors[id]
		if !ok {
			bh = &Behavior{ID: id, Result: Skip}
			b.behaviors[id] = bh
			b.order = append(b.order, id)
		}
		bh.combine(sr, []entryValues{s.entries})
	}
	return nil
}

func (b *builder) report() Report {
	r := Report{Run: b.run, Baseline: b.baseline, Timings: b.timings}
	if r.Timings != nil && b.processes > 0 {
		r.Timings.Processes = b.processes
	}
	// A suite that recorded no mode ran sidecars: the only mode before the mode was recorded.
	r.Run.Mode = RunMode(r.Run)
	for _, id := range b.order {
		r.Behaviors = append(r.Behaviors, *b.behaviors[id])
	}
	r.finish()
	return r
}

// FromGinkgo builds the conformance report of one run from Ginkgo's reports, one per suite
// (the JSON report of `ginkgo -r` holds several). A spec counts for every behaviour ID among
// its labels (container labels included); specs without one are not behaviours and are left
// out. Call it from a ReportAfterSuite with the in-process report, or on a JSON report file
// through Read.
func FromGinkgo(reports []types.Report, opts ...Option) (Report, error) {
	b := newBuilder(opts)
	for _, suite := range reports {
		if err := b.run.mergeRun(Run{Date: suite.StartTime.UTC(), DryRun: suite.SuiteConfig.DryRun}); err != nil {
			return Report{}, err
		}
		b.processes = max(b.processes, suite.SuiteConfig.ParallelTotal)
		for _, sr := range suite.SpecReports {
			s := spec{
				name:       sr.FullText(),
				leafType:   sr.LeafNodeType.String(),
				suiteLevel: sr.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes),
				labels:     sr.Labels(),
				result:     resultOf(sr.State, suite.SuiteConfig.DryRun),
				seconds:    sr.RunTime.Seconds(),
			}
			if sr.State.Is(types.SpecStateFailureStates | types.SpecStateSkipped | types.SpecStatePending) {
				s.message = sr.Failure.Message
			}
			for _, e := range sr.ReportEntries {
				asJSON, err := entryJSON(e)
				if err == nil {
					err = s.entries.add(e.Name, asJSON)
				}
				if err != nil {
					return Report{}, fmt.Errorf("spec %q: %w", specName(s), err)
				}
			}
			if err := b.add(s); err != nil {
				return Report{}, err
			}
		}
	}
	return b.report(), nil
}

// entryJSON is an entry's value as JSON. A report read from a file carries it in AsJSON; the
// report a ReportAfterSuite receives in a serial run is Ginkgo's in-process one, whose values
// are still the recorded Go values (AsJSON is filled only when Ginkgo encodes the report).
func entryJSON(e types.ReportEntry) (string, error) {
	if e.Value.AsJSON != "" {
		return e.Value.AsJSON, nil
	}
	raw := e.Value.GetRawValue()
	if raw == nil {
		return "", nil
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return "", fmt.Errorf("entry %s: %w", e.Name, err)
	}
	return string(data), nil
}

func specName(s spec) string {
	if s.name == "" {
		return "[" + s.leafType + "]"
	}
	return s.name
}

func resultOf(state types.SpecState, dryRun bool) Result {
	switch {
	case dryRun:
		return Skip // nothing ran, so nothing is proven
	case state == types.SpecStatePassed:
		return Pass
	case state.Is(types.SpecStateFailureStates):
		return Fail
	default:
		return Skip
	}
}

// trimSkipPrefix turns JUnit's "skipped - REASON" into REASON.
func trimSkipPrefix(m string) string {
	for _, p := range []string{"skipped - ", "skipped"} {
		if rest, ok := strings.CutPrefix(m, p); ok {
			return rest
		}
	}
	return m
}
