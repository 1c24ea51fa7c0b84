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
//	PROBE-001[injected]=pass   every spec of PROBE-001 whose name contains "injected" (one at
//	                           least): a part of a behaviour, e.g. the part a run without a
//	                           data plane could judge while the behaviour is left out
type Want struct {
	ID             string // a behaviour ID, "*" or "baseline"
	Spec           string // with an ID: a substring of the spec names the Want is about
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
	var spec string
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		key, spec = key[:i], key[i+1:len(key)-1]
		if spec == "" {
			return Want{}, fmt.Errorf("%q: the spec part in [] is empty", s)
		}
	}
	if key != "*" && !idPattern.MatchString(key) {
		return Want{}, fmt.Errorf("%q: %q is not a behaviour ID (like MTLS-001), * or baseline", s, key)
	}
	if key == "*" && spec != "" {
		return Want{}, fmt.Errorf("%q: * takes no spec part", s)
	}
	res, class, _ := strings.Cut(state, "/")
	w := Want{ID: key, Spec: spec, Result: Result(res), Classification: Classification(class)}
	if spec != "" && class != "" {
		return Want{}, fmt.Errorf("%q: a spec has a result, not a classification", s)
	}
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
	case w.Spec != "":
		return w.ID + "[" + w.Spec + "]=" + string(w.Result)
	case w.Classification != "":
		return w.ID + "=" + string(w.Result) + "/" + string(w.Classification)
	}
	return w.ID + "=" + string(w.Result)
}

// checkSpecs compares the specs of b whose names contain w.Spec with w.Result.
func (w Want) checkSpecs(b Behavior) []string {
	var bad []string
	n := 0
	for _, s := range b.Specs {
		if !strings.Contains(s.Name, w.Spec) {
			continue
		}
		n++
		if s.Result != w.Result {
			bad = append(bad, fmt.Sprintf("%s: spec %q seen %s: %s", w, s.Name, s.Result, firstLine(s.Message)))
		}
	}
	if n == 0 {
		bad = append(bad, fmt.Sprintf("%s: %s has no spec whose name contains %q", w, b.ID, w.Spec))
	}
	return bad
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
			b, ok := r.Behavior(w.ID)
			if w.Spec != "" { // a part of the behaviour: the behaviour itself is still for "*"
				if !ok {
					bad = append(bad, fmt.Sprintf("%s: the report has no %s", w, w.ID))
				} else {
					bad = append(bad, w.checkSpecs(b)...)
				}
				continue
			}
			named[w.ID] = true
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
