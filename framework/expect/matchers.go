package expect

import (
	"fmt"

	"github.com/onsi/gomega/types"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
)

// Satisfy matches a probe.Outcome (or a Result, by its Outcome) that mode accepts for e,
// for Gomega's Expect and Eventually. Converge is the way to wait; this is for one look.
//
//	Expect(outcome).To(expect.Satisfy(catalog.RBACDenied, expect.Default))
func Satisfy(e catalog.Expectation, mode Mode) types.GomegaMatcher {
	return &outcomeMatcher{e: e, mode: mode}
}

// BeDocumented is Satisfy in Strict mode.
func BeDocumented(e catalog.Expectation) types.GomegaMatcher { return Satisfy(e, Strict) }

type outcomeMatcher struct {
	e      catalog.Expectation
	mode   Mode
	class  Classification
	reason string
}

func (m *outcomeMatcher) Match(actual any) (bool, error) {
	var o probe.Outcome
	switch a := actual.(type) {
	case probe.Outcome:
		o = a
	case *probe.Outcome:
		if a == nil {
			return false, fmt.Errorf("expect.Satisfy: nil *probe.Outcome")
		}
		o = *a
	case Result:
		o = a.Outcome
	default:
		return false, fmt.Errorf("expect.Satisfy: want a probe.Outcome or expect.Result, got %T", actual)
	}
	m.class, m.reason = Classify(m.e, o)
	return m.mode.Accepts(m.class), nil
}

func (m *outcomeMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("%s (mode %s): %s\n%s", m.class, m.mode, m.reason, evidence(actual))
}

func (m *outcomeMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("did not want %s, but %s (mode %s): %s\n%s", m.e.Name, m.class, m.mode, m.reason, evidence(actual))
}

func evidence(actual any) string {
	switch a := actual.(type) {
	case probe.Outcome:
		return a.String()
	case *probe.Outcome:
		return a.String()
	case Result:
		return a.Outcome.String()
	}
	return fmt.Sprint(actual)
}
