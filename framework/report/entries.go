package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Names of the Ginkgo report entries the suites record and the readers pick up. Ginkgo
// writes an entry's value as JSON into its JSON report (ReportEntries[].Value.AsJSON) and as a
// <property> of the test case into its JUnit report, so both readers see the same values.
//
//	AddReportEntry(report.EntryRun, run)                                  // SynchronizedBeforeSuite
//	AddReportEntry(report.EntryClassification, report.Classified(c, why)) // in the spec
//	AddReportEntry(report.EntryEvidence, evidence)                        // in the spec
//
// Visibility is the suite's choice (ReportEntryVisibilityFailureOrVerbose keeps the console
// short); entries are recorded in the reports whatever it is.
const (
	// EntryRun carries a Run: the versions and mode of this run.
	EntryRun = "meshconform.run"
	// EntryClassification carries a ClassificationValue. Several in one spec (several
	// probes) are fine: the worst wins.
	EntryClassification = "meshconform.classification"
	// EntryEvidence carries an Evidence: the outcome seen. Several in one spec are kept.
	EntryEvidence = "meshconform.evidence"
	// EntryBaseline carries a Baseline: the run's check of the cluster without the mesh,
	// recorded once (process 1's SynchronizedBeforeSuite).
	EntryBaseline = "meshconform.baseline"
	// EntryNotJudged carries a NotJudgedValue on a spec that was skipped because the
	// baseline failed: the spec's result is NotJudged, not Skip.
	EntryNotJudged = "meshconform.notjudged"
	// EntryLeftOut carries a LeftOutValue on a spec the run left out on purpose (it cannot
	// exercise it): the spec's result is LeftOut, not Skip.
	EntryLeftOut = "meshconform.leftout"
	// EntryTimings carries a Timings: the run's phases measured before the specs (the run
	// state's, the suite's compile and baseline), recorded once (process 1's
	// SynchronizedBeforeSuite).
	EntryTimings = "meshconform.timings"
	// EntrySpecTimings carries a SpecTimings: where one spec's time went, recorded once per
	// spec after its cleanup (a ReportAfterEach).
	EntrySpecTimings = "meshconform.spectimings"
)

// ClassificationValue is the value of an EntryClassification entry.
type ClassificationValue struct {
	// ID scopes the entry to one behaviour when a spec carries several IDs; empty means all.
	ID     string         `json:"id,omitempty"`
	Class  Classification `json:"class"`
	Reason string         `json:"reason,omitempty"`
}

// Classified is the value to record for a classification.
func Classified(c Classification, reason string) ClassificationValue {
	return ClassificationValue{Class: c, Reason: reason}
}

// For scopes the classification to one behaviour ID of the spec.
func (v ClassificationValue) For(id string) ClassificationValue { v.ID = id; return v }

// String is what Ginkgo prints for the entry.
func (v ClassificationValue) String() string {
	s := string(v.Class)
	if v.ID != "" {
		s = v.ID + " " + s
	}
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	return s
}

// Evidence is the value of an EntryEvidence entry: the outcome a probe saw, as text (what
// probe.Outcome.String() prints) and as fields. HTTPCode and CurlExit are pointers because 0
// is a real value ("000", exit 0): write them as new(o.HTTPCode).
type Evidence struct {
	// ID scopes the evidence to one behaviour when a spec carries several IDs; empty means all.
	ID string `json:"id,omitempty"`
	// Spec is the spec that recorded it; the readers fill it in.
	Spec      string `json:"spec,omitempty"`
	Text      string `json:"text,omitempty"`
	HTTPCode  *int   `json:"httpCode,omitempty"`
	CurlExit  *int   `json:"curlExit,omitempty"`
	ErrorLine string `json:"errorLine,omitempty"`
	Body      string `json:"body,omitempty"`
	// Where the probe ran: pod/container, or "local".
	Where    string `json:"where,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	// Expected names the outcome shape that was expected (e.g. "PlaintextRejected").
	Expected string `json:"expected,omitempty"`
	// Fields hold evidence that is not a curl outcome: certificate subjects, log counts.
	Fields map[string]string `json:"fields,omitempty"`
	// History is what the probe saw while it converged (or failed to), one observation a
	// line, oldest first: "#4 +1.2s deviation http_code=200 exit=0". The outcome above is the
	// last of them.
	History []string `json:"history,omitempty"`
}

// For scopes the evidence to one behaviour ID of the spec.
func (e Evidence) For(id string) Evidence { e.ID = id; return e }

// String is what Ginkgo prints for the entry.
func (e Evidence) String() string {
	if e.Text != "" {
		return e.Text
	}
	return e.Summary()
}

// Summary is the evidence on one line: "HTTP 000, curl exit 56, curl: (56) Recv failure: … (from ns/pod)".
func (e Evidence) Summary() string {
	var parts []string
	if e.HTTPCode != nil {
		parts = append(parts, fmt.Sprintf("HTTP %03d", *e.HTTPCode))
	}
	if e.CurlExit != nil {
		parts = append(parts, fmt.Sprintf("curl exit %d", *e.CurlExit))
	}
	switch {
	case e.ErrorLine != "":
		parts = append(parts, e.ErrorLine)
	case e.Body != "":
		parts = append(parts, fmt.Sprintf("body %q", truncate(firstLine(e.Body), 80)))
	}
	if len(parts) == 0 {
		if e.Text != "" {
			return firstLine(e.Text)
		}
		return fieldsLine(e.Fields)
	}
	s := strings.Join(parts, ", ")
	if e.Where != "" {
		s += " (from " + e.Where + ")"
	}
	return s
}

func fieldsLine(f map[string]string) string {
	keys := sortedKeys(f)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + f[k]
	}
	return strings.Join(parts, ", ")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// entryValues are the meshconform entries of one spec, decoded.
type entryValues struct {
	classes   []ClassificationValue
	evidence  []Evidence
	runs      []Run
	baselines []Baseline
	notJudged []NotJudgedValue
	leftOut   []LeftOutValue
	timings   []Timings
	spec      []SpecTimings
}

// add decodes one report entry; entries of other names are not ours and are ignored.
func (v *entryValues) add(name, asJSON string) error {
	switch name {
	case EntryClassification:
		var c ClassificationValue
		if err := decodeEntry(asJSON, &c); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		if c.Class == "" || !c.Class.Valid() {
			return fmt.Errorf("entry %s: class %q is not one of documented, equivalent, deviation", name, c.Class)
		}
		v.classes = append(v.classes, c)
	case EntryEvidence:
		var e Evidence
		if err := decodeEntry(asJSON, &e); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.evidence = append(v.evidence, e)
	case EntryRun:
		var r Run
		if err := decodeEntry(asJSON, &r); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.runs = append(v.runs, r)
	case EntryBaseline:
		var b Baseline
		if err := decodeEntry(asJSON, &b); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.baselines = append(v.baselines, b)
	case EntryNotJudged:
		var n NotJudgedValue
		if err := decodeEntry(asJSON, &n); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.notJudged = append(v.notJudged, n)
	case EntryLeftOut:
		var l LeftOutValue
		if err := decodeEntry(asJSON, &l); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.leftOut = append(v.leftOut, l)
	case EntryTimings:
		var t Timings
		if err := decodeEntry(asJSON, &t); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.timings = append(v.timings, t)
	case EntrySpecTimings:
		var t SpecTimings
		if err := decodeEntry(asJSON, &t); err != nil {
			return fmt.Errorf("entry %s: %w", name, err)
		}
		v.spec = append(v.spec, t)
	}
	return nil
}

// decodeEntry reads an entry's JSON. A value recorded as a string holding JSON arrives
// encoded twice; it is unwrapped once, so both ways of recording work.
func decodeEntry(asJSON string, v any) error {
	data := []byte(asJSON)
	var s string
	if json.Unmarshal(data, &s) == nil {
		data = []byte(s)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("value %s is not the JSON this package writes: %w", truncate(asJSON, 120), err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
