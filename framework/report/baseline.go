package report

import (
	"fmt"
	"strings"
)

// BaselineStatus says how the run's baseline ended.
type BaselineStatus string

const (
	// BaselinePassed: plain traffic behaved as it must without a mesh; behaviour results are
	// the mesh's.
	BaselinePassed BaselineStatus = "passed"
	// BaselineFailed: the cluster is at fault; no behaviour was judged.
	BaselineFailed BaselineStatus = "failed"
	// BaselineSkipped: the user turned the baseline off (BASELINE=0); behaviour results stand
	// without proof that the cluster itself works.
	BaselineSkipped BaselineStatus = "skipped"
)

// ClusterAtFault is what a failed baseline's verdict starts with, in the report and the
// closing summary: the words a reader must not miss.
const ClusterAtFault = "cluster at fault: no behaviour was judged"

// Baseline is the report's section on the run's baseline: a plain client to a plain server,
// no mesh involved (framework/baseline judges it). It comes before every behaviour.
type Baseline struct {
	Status BaselineStatus `json:"status"`
	// Verdict says in a sentence what the status means for the behaviours.
	Verdict string          `json:"verdict"`
	Probes  []BaselineProbe `json:"probes,omitempty"`
	// Diagnostics says where a failed baseline's diagnostics dump is (its namespace's pods,
	// events and logs, the nodes) and what it holds.
	Diagnostics string `json:"diagnostics,omitempty"`
}

// BaselineProbe is one probe of the baseline and its full evidence.
type BaselineProbe struct {
	Name string `json:"name"`
	// Why the probe is there, for a reader who does not know the baseline.
	Purpose string `json:"purpose,omitempty"`
	Result  Result `json:"result"` // pass or fail
	// Reason is the judgement: what was seen against what was expected.
	Reason   string   `json:"reason,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// Failed reports whether the baseline failed.
func (b *Baseline) Failed() bool { return b != nil && b.Status == BaselineFailed }

// String is the baseline on a few lines, for the console and failure messages: the verdict,
// then one line a probe.
func (b Baseline) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "baseline %s: %s", b.Status, b.Verdict)
	for _, p := range b.Probes {
		fmt.Fprintf(&sb, "\n  %-4s %s: %s", p.Result, p.Name, firstLine(p.Reason))
	}
	if b.Diagnostics != "" {
		fmt.Fprintf(&sb, "\n  diagnostics: %s", firstLine(b.Diagnostics))
	}
	return sb.String()
}

// NotJudgedValue is the value of an EntryNotJudged entry: why a spec was not run.
type NotJudgedValue struct {
	Reason string `json:"reason"`
}

// String is what Ginkgo prints for the entry.
func (v NotJudgedValue) String() string { return "not judged: " + v.Reason }

// LeftOutValue is the value of an EntryLeftOut entry: why the run left a spec out on purpose,
// e.g. "needs a running data plane; this run has none (DATAPLANE=0)".
type LeftOutValue struct {
	Reason string `json:"reason"`
}

const leftOutPrefix = "left out: "

// String is what Ginkgo prints for the entry, and the spec's message in the report.
func (v LeftOutValue) String() string { return leftOutPrefix + v.Reason }
