// Package cases holds the behaviour specs as data: which namespaces and sample workloads a
// behaviour needs, which policies each step applies or deletes, and which probes must then
// converge on which documented outcome. The Ginkgo suites range over these tables; tier-1
// tests apply every object to a real API server (server-side dry-run), so a typo in a case
// fails in `make test`, not in a user's nightly run. No Ginkgo here.
package cases

import (
	"fmt"
	"sort"

	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
)

// Role names one of a case's namespaces; the runner maps it to a unique per-spec namespace.
type Role string

const (
	// Server is the namespace of the workloads under test (meshed).
	Server Role = "server"
	// Client is the namespace of the probing clients (meshed; plain clients opt out per pod).
	Client Role = "client"
	// Other is a second meshed server namespace (mesh-wide behaviours).
	Other Role = "other"
)

// Namespace is one namespace a case needs.
type Namespace struct {
	Role Role
	// Meshed namespaces get injection (istio-injection=enabled, or istio.io/rev under a
	// revisioned install); others are labelled istio-injection=disabled.
	Meshed  bool
	Samples []workload.Sample
}

// Env is what case data is a function of: the namespaces the runner created and what it
// read from the mesh (never assumed: managed meshes use other trust domains).
type Env struct {
	Namespaces    map[Role]string
	TrustDomain   string
	RootNamespace string
	// Gateway is the ingress gateway Service, for ingress cases.
	Gateway GatewayRef
}

// GatewayRef names the ingress gateway a case sends traffic through.
type GatewayRef struct {
	Namespace, Service string
	Port               int32
	// Selector is the gateway pods' labels, for Gateway.spec.selector.
	Selector map[string]string
}

// NS returns the namespace of role r; it panics on a role the case did not declare, which
// the tier-0 table test rules out.
func (e Env) NS(r Role) string {
	ns, ok := e.Namespaces[r]
	if !ok {
		panic(fmt.Sprintf("case uses namespace role %q it did not declare", r))
	}
	return ns
}

// SPIFFE is the SPIFFE id of service account sa in the namespace of role r.
func (e Env) SPIFFE(r Role, sa string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", e.TrustDomain, e.NS(r), sa)
}

// Principal is the AuthorizationPolicy principal of service account sa in role r.
func (e Env) Principal(r Role, sa string) string {
	return fmt.Sprintf("%s/ns/%s/sa/%s", e.TrustDomain, e.NS(r), sa)
}

// FQDN is the cluster-local name of service svc in role r.
func (e Env) FQDN(r Role, svc string) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", svc, e.NS(r))
}

// Source is where a probe runs: a sample's pod in a role's namespace, in its app container
// or (Container: istionames.ProxyContainerName) in its sidecar.
type Source struct {
	Role      Role
	Sample    workload.Sample
	Container string
}

// Target is what a probe calls: a sample's Service in a role's namespace at one of its
// Service ports (0: the first), or the ingress gateway with a Host header.
type Target struct {
	Role   Role
	Sample workload.Sample
	Port   int32
	Path   string
	// ViaGateway sends the request to the ingress gateway, with Host set to Host.
	ViaGateway bool
	Host       string
}

// Probe is one request and the outcome it must converge on.
type Probe struct {
	Name   string
	From   Source
	To     Target
	Method string
	Expect catalog.Expectation
	// Check, when set, is asserted on the converged outcome (e.g. the XFCC identities).
	Check func(e Env, o probe.Outcome) error
	// CaptureHeaders are response headers to keep as evidence.
	CaptureHeaders []string
}

// Step applies and deletes objects, then converges every probe.
type Step struct {
	Name   string
	Apply  func(e Env) []policy.Object
	Delete func(e Env) []policy.Object
	Probes []Probe
}

// Case is one behaviour spec.
type Case struct {
	ID   string
	Name string
	// Labels beyond the ID and area (the catalog's labels are added by the runner).
	Labels     []string
	Namespaces []Namespace
	Steps      []Step
	// Disruptive cases change the whole mesh (root-namespace policies): Serial, snapshot
	// and restore, off on clusters the suite did not create unless allowed.
	Disruptive bool
}

// Behavior is the catalog entry behind the case.
func (c Case) Behavior() catalog.Behavior { return catalog.MustLookup(c.ID) }

// Roles lists the case's namespace roles.
func (c Case) Roles() []Role {
	var rs []Role
	for _, n := range c.Namespaces {
		rs = append(rs, n.Role)
	}
	return rs
}

// Samples lists every sample the case deploys, sorted, for preloading and dry-runs.
func (c Case) Samples() []workload.Sample {
	seen := map[workload.Sample]bool{}
	for _, n := range c.Namespaces {
		for _, s := range n.Samples {
			seen[s] = true
		}
	}
	var out []workload.Sample
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Objects returns every object the case's steps apply, in order, for validation.
func (c Case) Objects(e Env) []policy.Object {
	var out []policy.Object
	for _, s := range c.Steps {
		if s.Apply != nil {
			out = append(out, s.Apply(e)...)
		}
	}
	return out
}
