package expect

import (
	"fmt"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
)

// Classification is how an outcome relates to BEHAVIORS.md.
type Classification string

const (
	// Documented: the outcome has the shape the documents print.
	Documented Classification = "documented"
	// Equivalent: another known shape of the same result (BEHAVIORS.md, Tolerance).
	Equivalent Classification = "equivalent"
	// Deviation: anything else.
	Deviation Classification = "deviation"
)

// rank orders classifications from best to worst.
func (c Classification) rank() int {
	switch c {
	case Documented:
		return 0
	case Equivalent:
		return 1
	}
	return 2
}

// Classify judges one outcome against an expectation and says why, naming what was seen.
func Classify(e catalog.Expectation, o probe.Outcome) (Classification, string) {
	if o.Tool == probe.ToolOpenSSL {
		return Deviation, fmt.Sprintf("saw an openssl outcome (%s); %s is about curl", o.Summary(), e.Name)
	}
	match := func(s catalog.Shape) bool {
		if s.GRPCCode != "" || o.Tool == probe.ToolGRPC {
			// gRPC shapes judge only the echo client's outcomes, and those only against gRPC
			// shapes (MatchesGRPC is false for any other): a proxyless outcome is never counted
			// as a curl one.
			return o.Tool == probe.ToolGRPC && s.MatchesGRPC(o.GRPCCode, o.ErrorLine, o.Body)
		}
		return s.Matches(o.HTTPCode, o.CurlExit, o.ErrorLine, o.Body)
	}
	if match(e.Documented) {
		return Documented, fmt.Sprintf("saw %s: the documented %s {%s}", o.Summary(), e.Name, e.Documented)
	}
	for _, s := range e.Equivalents {
		if match(s) {
			return Equivalent, fmt.Sprintf("saw %s: equivalent to %s (%s), documented is {%s}", o.Summary(), e.Name, s, e.Documented)
		}
	}
	return Deviation, fmt.Sprintf("saw %s: not %s (%s)", o.Summary(), e.Name, e)
}
