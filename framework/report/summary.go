package report

import (
	"fmt"
	"strings"
)

// SummaryText is the short table a run ends with: the baseline first (a failed one says the
// cluster is at fault and nothing below was judged), then the run (versions and data-plane
// mode), the behaviours, how to rerun one,
// and where the time went (TimeText).
func (r Report) SummaryText() string {
	var sb strings.Builder
	switch {
	case r.Baseline == nil:
		sb.WriteString("baseline: none recorded\n")
	case r.Baseline.Failed():
		fmt.Fprintf(&sb, "BASELINE FAILED: %s\n", ClusterAtFault)
		for _, p := range r.Baseline.Probes {
			fmt.Fprintf(&sb, "  %-4s %s: %s\n", p.Result, p.Name, firstLine(p.Reason))
		}
		sb.WriteString("  fix the cluster, then rerun the baseline alone: make e2e LABELS=baseline REUSE_CLUSTER=1\n")
	default:
		fmt.Fprintf(&sb, "baseline: %s (%s)\n", r.Baseline.Status, r.Baseline.Verdict)
	}
	// What the results stand on, its data-plane mode above all (it decides what each means).
	fmt.Fprintf(&sb, "run: %s\n", r.Run.Describe())
	var bad []string
	for _, b := range r.Behaviors {
		if b.Result == Fail {
			bad = append(bad, b.ID)
		}
	}
	sm := r.Summary
	fmt.Fprintf(&sb, "behaviours: %d passed (%d documented, %d equivalent), %d failed (%d deviations), %d skipped",
		sm.Passed, sm.Documented, sm.Equivalent, sm.Failed, sm.Deviation, sm.Skipped)
	if sm.NotJudged > 0 {
		fmt.Fprintf(&sb, ", %d not judged (the baseline failed)", sm.NotJudged)
	}
	if sm.LeftOut > 0 {
		fmt.Fprintf(&sb, ", %d left out on purpose", sm.LeftOut)
	}
	sb.WriteString("\n")
	for _, why := range sortedKeys(sm.LeftOutWhy) {
		fmt.Fprintf(&sb, "  left out: %d: %s\n", sm.LeftOutWhy[why], why)
	}
	if len(bad) > 0 {
		fmt.Fprintf(&sb, "failed: %s\nrerun one: make e2e LABELS=%s REUSE_CLUSTER=1\n", strings.Join(bad, " "), bad[0])
	}
	sb.WriteString(r.TimeText())
	return sb.String()
}
