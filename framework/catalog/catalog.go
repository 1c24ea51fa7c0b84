// Package catalog is the repository's catalog of behaviours, docs/behaviors.md, embedded in the
// binaries and parsed at start, so that suites, reports and the upgrade gate name behaviours by
// ID instead of by test function. It is the one source of IDs, expected outcomes and their
// evidence: nothing outside the repository is held against it.
package catalog

import (
	"slices"

	"meshconform"
)

// Area groups behaviours the way BEHAVIORS.md's sections do.
type Area string

const (
	AreaMTLS         Area = "mtls"
	AreaIdentity     Area = "identity"
	AreaAuthz        Area = "authz"
	AreaJWT          Area = "jwt"
	AreaEgress       Area = "egress"
	AreaProbes       Area = "probes"
	AreaControlPlane Area = "controlplane"
	AreaIngress      Area = "ingress"
	AreaPosture      Area = "posture"
)

// Labels beyond the ID that suites attach to specs (Ginkgo Label).
const (
	// LabelSlow marks behaviours that pull large images or wait long.
	LabelSlow = "slow"
	// LabelDisruptive marks behaviours that change the whole mesh (root-namespace policies):
	// they run Serial and are off by default on a cluster the suite did not create.
	LabelDisruptive = "disruptive"
	// LabelDataPlane marks specs that need a running data plane (a sidecar, gateway or ztunnel
	// that starts and carries traffic); DATAPLANE=0 leaves them out, e.g. where only istiod
	// can run (istiod built from source, no proxy image).
	LabelDataPlane = "dataplane"
	// LabelAgent marks specs that need a running pilot-agent but no Envoy (Istio's injection
	// template grpc-agent): they run where a data plane runs, or where ISTIO_AGENT_IMAGE gives
	// an image holding pilot-agent (DATAPLANE=0 with istiod built from source).
	LabelAgent = "agent"
)

// Behavior is one row of BEHAVIORS.md. Title, Setup, Expected and Source are the file's
// cells verbatim (Markdown included), so a report can quote the document.
type Behavior struct {
	ID       string
	Title    string
	Area     Area
	Source   string // which seed document(s) and section
	Setup    string // empty for posture checks, which set nothing up
	Expected string // for posture checks: when the check passes
	Labels   []string
	// Expectations are the outcome shapes the behaviour's probes are checked against
	// (empty when the behaviour is not checked with curl, e.g. certificates or logs).
	Expectations []Expectation
	// Ambient is the behaviour's expected outcome in ambient mode, or why it has none (the
	// catalog's ambient column). The other fields are the sidecar's.
	Ambient Ambient
	// Proxyless is the behaviour's verdict for the proxyless data plane (the catalog's
	// "Proxyless data plane" table); zero when the table has no row for it.
	Proxyless Proxyless
}

// HasLabel reports whether the behaviour carries label l.
func (b Behavior) HasLabel(l string) bool { return slices.Contains(b.Labels, l) }

// GinkgoLabels is the ID followed by the extra labels, ready for Ginkgo's Label(...).
func (b Behavior) GinkgoLabels() []string { return append([]string{b.ID}, b.Labels...) }

// behaviors is docs/behaviors.md, parsed once: the one source of IDs, titles, setups, expected
// outcomes, sources, labels and outcome shapes. A malformed file stops every binary at start
// (TestCatalogFile names the problem first).
var behaviors = mustParse(meshconform.BehaviorsFile())

func mustParse(data []byte) []Behavior {
	bs, err := Parse(data)
	if err != nil {
		panic(err)
	}
	return bs
}

// All returns every behaviour in file order. The slice is a copy.
func All() []Behavior {
	out := make([]Behavior, len(behaviors))
	for i, b := range behaviors {
		b.Labels = slices.Clone(b.Labels)
		b.Expectations = slices.Clone(b.Expectations)
		out[i] = b
	}
	return out
}

// Lookup finds a behaviour by its ID (e.g. "MTLS-002").
func Lookup(id string) (Behavior, bool) {
	for _, b := range All() {
		if b.ID == id {
			return b, true
		}
	}
	return Behavior{}, false
}

// MustLookup is Lookup for spec declarations, where an unknown ID is a programming error.
func MustLookup(id string) Behavior {
	b, ok := Lookup(id)
	if !ok {
		panic("catalog: no behaviour " + id + " in docs/behaviors.md")
	}
	return b
}

// IDs returns every ID in file order.
func IDs() []string {
	ids := make([]string, len(behaviors))
	for i, b := range behaviors {
		ids[i] = b.ID
	}
	return ids
}

// Areas returns the areas in file order, each once.
func Areas() []Area {
	var out []Area
	for _, b := range behaviors {
		if !slices.Contains(out, b.Area) {
			out = append(out, b.Area)
		}
	}
	return out
}

// InArea returns the behaviours of one area in file order.
func InArea(a Area) []Behavior {
	var out []Behavior
	for _, b := range All() {
		if b.Area == a {
			out = append(out, b)
		}
	}
	return out
}
