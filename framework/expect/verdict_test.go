package expect

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
)

// outcomes replays scripted outcomes (the last repeats; with cycle, they repeat in order).
func outcomes(cycle bool, os ...probe.Outcome) func(context.Context) (probe.Outcome, error) {
	n := 0
	return func(context.Context) (probe.Outcome, error) {
		i := min(n, len(os)-1)
		if cycle {
			i = n % len(os)
		}
		n++
		return os[i], nil
	}
}

var (
	resetOutcome = probe.Outcome{Tool: probe.ToolCurl, CurlExit: 56, ErrorLine: "curl: (56) Recv failure: Connection reset by peer"}
	emptyOutcome = probe.Outcome{Tool: probe.ToolCurl, CurlExit: 52, ErrorLine: "curl: (52) Empty reply from server"}
	okOutcome    = probe.Outcome{Tool: probe.ToolCurl, HTTPCode: 200, Body: "ok"}
)

// TestConvergedReasonMatchesClass: a streak of documented and equivalent outcomes is
// equivalent, and its reason must say why it is equivalent, not quote the last (documented)
// outcome's reason.
func TestConvergedReasonMatchesClass(t *testing.T) {
	r, err := Converge(context.Background(), fast(3), Default, catalog.PlaintextRejected,
		outcomes(false, resetOutcome, emptyOutcome, resetOutcome))
	if err != nil {
		t.Fatal(err)
	}
	if r.Class != Equivalent || !strings.Contains(r.Reason, "equivalent to PlaintextRejected (empty reply") || strings.Contains(r.Reason, "the documented") {
		t.Errorf("converged %s with reason %q; want equivalent with the empty reply's reason", r.Class, r.Reason)
	}
	if r.Outcome.CurlExit != 56 {
		t.Errorf("Outcome is the last seen: exit %d, want 56", r.Outcome.CurlExit)
	}
}

func TestConvergeErrorVerdict(t *testing.T) {
	cfg := Config{Consecutive: 3, Timeout: 150 * time.Millisecond, Poll: 5 * time.Millisecond}
	for _, c := range []struct {
		name   string
		mode   Mode
		run    func(context.Context) (probe.Outcome, error)
		class  Classification
		reason string
	}{
		{"stuck on 200", Default, outcomes(false, okOutcome), Deviation, "last judged probe: saw http_code=200 exit=0: not PlaintextRejected"},
		{"flapping", Default, outcomes(true, resetOutcome, resetOutcome, okOutcome), Deviation, "longest streak 2"},
		{"equivalent in strict mode", Strict, outcomes(false, emptyOutcome), Equivalent, "last judged probe: saw http_code=000 exit=52"},
		{"transport down", Default, func(context.Context) (probe.Outcome, error) {
			return probe.Outcome{}, errors.New("exec: connection refused")
		},
			Deviation, "no probe could be judged, last: exec: connection refused"},
	} {
		_, err := Converge(context.Background(), cfg, c.mode, catalog.PlaintextRejected, c.run)
		var ce *ConvergeError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a *ConvergeError", c.name, err)
		}
		class, reason := ce.Verdict()
		if class != c.class || !strings.HasPrefix(reason, "did not converge: PlaintextRejected not seen 3 times in a row within 150ms") || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: Verdict() = %s %q; want %s with %q", c.name, class, reason, c.class, c.reason)
		}
		if lines := HistoryLines(ce.Observations, ce.Attempts); len(lines) != len(ce.Observations) || !strings.HasPrefix(lines[0], "#1 +") {
			t.Errorf("%s: history lines %q", c.name, lines)
		}
	}
}
