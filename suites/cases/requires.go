package cases

import "fmt"

// Requires is what a behaviour needs of a run. A requirement the run does not meet makes the
// behaviour not applicable there: the report shows it left out, with the reason, distinct
// from a pass, a failure and a skip.
type Requires struct {
	// DataPlane: a running proxy that carries traffic (the catalog's dataplane label).
	DataPlane bool
	// Disruptive: changes the whole mesh (the catalog's disruptive label); runs only on a
	// cluster the suite created, or with ALLOW_DISRUPTIVE=1.
	Disruptive bool
	// IngressGateway: an ingress gateway of the control plane under test.
	IngressGateway bool
	// Agent: a running pilot-agent without Envoy (the catalog's agent label; Istio's
	// grpc-agent injection template).
	Agent bool
	// Mode is the data-plane mode the behaviour is written for ("" for any): what it asserts
	// (a proxy container, the injector's probe rewrite) exists only there.
	Mode string
	// Waypoint: in ambient mode the outcome needs a waypoint in the path (L7: HTTP methods
	// and paths, request principals, XFCC), the catalog's `needs waypoint` (catalog.Ambient.
	// NeedsWaypoint). In sidecar mode every proxy is L7 and this asks nothing.
	Waypoint bool
}

// RunFacts is what requirements are judged against: what the run has.
type RunFacts struct {
	// Mode is the run's data-plane mode (dataplane.DataPlane.Mode).
	Mode string
	// NoDataPlane: nothing runs a proxy (DATAPLANE=0).
	NoDataPlane bool
	// NoAgent: no pod can run pilot-agent: no data plane (DATAPLANE=0) and no ISTIO_AGENT_IMAGE.
	NoAgent bool
	// DisruptiveAllowed: the suite created the cluster, or ALLOW_DISRUPTIVE=1.
	DisruptiveAllowed bool
	// NoGateway says why the run has no ingress gateway ("" when it has one).
	NoGateway string
	// NoWaypoint says why an ambient run cannot put a waypoint in a behaviour's path ("" when
	// it can; read only in ambient mode).
	NoWaypoint string
}

// Unmet is why a run with facts f cannot exercise a behaviour with requirements r, "" when
// it can. The first unmet requirement is named, with how to meet it.
func (r Requires) Unmet(f RunFacts) string {
	switch {
	case r.Mode != "" && r.Mode != f.Mode:
		return fmt.Sprintf("written for the %s data plane; this run's is %s", r.Mode, f.Mode)
	case r.DataPlane && f.NoDataPlane:
		return "needs a running data plane (sidecar, gateway or ztunnel); this run has none (DATAPLANE=0)"
	case r.Agent && f.NoAgent:
		return "needs a running pilot-agent (Istio's grpc-agent template, no Envoy); this run has no data plane (DATAPLANE=0) and no ISTIO_AGENT_IMAGE (an image holding pilot-agent, e.g. scripts/istiod-image.sh's <hub>/pilot-agent:<version>)"
	case r.Disruptive && !f.DisruptiveAllowed:
		return "changes the whole mesh: it runs only on a cluster the suite created, or with ALLOW_DISRUPTIVE=1"
	case r.IngressGateway && f.NoGateway != "":
		return "needs an ingress gateway: " + f.NoGateway
	case r.Waypoint && f.Mode == "ambient" && f.NoWaypoint != "":
		return "needs a waypoint (L7 in ambient mode: only a waypoint enforces HTTP attributes): " + f.NoWaypoint
	}
	return ""
}
