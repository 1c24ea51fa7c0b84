package report

import (
	"fmt"
	"slices"
	"strings"
)

// Want is one expectation about a run, for `meshconform report check`: a behaviour's state,
// the state of every behaviour no other Want names, or the baseline's status.
//
//	CERT-003=pass              the result only
//	MTLS-001=pass/documented   the result and the classification
//	*=left-out                 every behaviour not named by another Want
//	baseline=passed            the baseline's status (passed, failed, skipped)
type Want struct {
	ID             string // a behaviour ID, "*" or "baseline"
	Result         Result // for behaviours
	Classification Classification
	Baseline       BaselineStatus // for "baseline"
}

// ParseWant reads one "KEY=STATE" expectation.
func ParseWant(s string) (Want, error) {
	key, state, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || key == "" || state == "" {
		return Want{}, fmt.Errorf("%q is not KEY=STATE: use e.g. CERT-003=pass, MTLS-001=pass/documented, '*=left-out' or baseline=passed", s)
	}
	if key == "baseline" {
		st := BaselineStatus(state)
		if st != BaselinePassed && st != BaselineFailed && st != BaselineSkipped {
			return Want{}, fmt.Errorf("%q: the baseline's status is passed, failed or skipped", s)
		}
		return Want{ID: key, Baseline: st}, nil
	}
	if key != "*" && !idPattern.MatchString(key) {
		return Want{}, fmt.Errorf("%q: %q is not a behaviour ID (like MTLS-001), * or baseline", s, key)
	}
	res, class, _ := strings.Cut(state, "/")
	w := Want{ID: key, Result: Result(res), Classification: Classification(class)}
	if !slices.Contains([]Result{Pass, Fail, Skip, NotJudged, LeftOut}, w.Result) {
		return Want{}, fmt.Errorf("%q: result %q is not pass, fail, skip, not-judged or left-out", s, res)
	}
	if class != "" && (!w.Classification.Valid() || w.Classification == "") {
		return Want{}, fmt.Errorf("%q: classification %q is not documented, equivalent or deviation", s, class)
	}
	return w, nil
}

func (w Want) String() string {
	switch {
	case w.ID == "baseline":
		return "baseline=" + string(w.Baseline)
	case w.Classification != "":
		return w.ID + "=" + string(w.Result) + "/" + string(w.Classification)
	}
	return w.ID + "=" + string(w.Result)
}

func (w Want) matches(b Behavior) bool {
	return b.Result == w.Result && (w.Classification == "" || b.Classification == w.Classification)
}

// Check compares the report with wants and returns one line per mismatch, each with what was
// seen (the behaviour's state and its evidence, or the baseline's verdict); none means every
// expectation holds. A behaviour a Want names that the report lacks is a mismatch; with a "*"
// Want, so is a report with no behaviour left for it.
func (r Report) Check(wants []Want) []string {
	var bad []string
	named := map[string]bool{}
	var rest *Want
	for i, w := range wants {
		switch w.ID {
		case "baseline":
			switch {
			case r.Baseline == nil:
				bad = append(bad, fmt.Sprintf("%s: the report records no baseline", w))
			case r.Baseline.Status != w.Baseline:
				bad = append(bad, fmt.Sprintf("%s: baseline %s: %s", w, r.Baseline.Status, r.Baseline.String()))
			}
		case "*":
			rest = &wants[i]
		default:
			named[w.ID] = true
			b, ok := r.Behavior(w.ID)
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s: the report has no %s", w, w.ID))
			case !w.matches(b):
				bad = append(bad, fmt.Sprintf("%s: seen %s: %s", w, b.State(), b.Seen()))
			}
		}
	}
	if rest != nil {
		n := 0
		for _, b := range r.Behaviors {
			if named[b.ID] {
				continue
			}
			n++
			if !rest.matches(b) {
				bad = append(bad, fmt.Sprintf("%s: %s seen %s: %s", rest, b.ID, b.State(), b.Seen()))
			}
		}
		if n == 0 {
			bad = append(bad, fmt.Sprintf("%s: no behaviour is left for it", rest))
		}
	}
	return bad
}
