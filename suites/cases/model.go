// Package cases is the vocabulary behaviours are written in (suites/behaviors): the
// namespaces and sample workloads a behaviour needs, the policies each step applies or
// deletes, the probes that must then converge on a documented outcome, and what a behaviour
// requires of a run. No Ginkgo here, so that tier-0 and tier-1 tests read behaviours as data.
package cases

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/settings"
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
	// API is the ingress API (settings.IngressAPI): "" or "istio" for the gateway chart's
	// pods, configured with Istio's Gateway and VirtualService; "gateway-api" for a Gateway API
	// Gateway of class istio (Name) that each spec applies in its server namespace, and that
	// istiod deploys as Deployment and Service Service there.
	API string
	// Name is the Gateway API Gateway's name (API "gateway-api").
	Name               string
	Namespace, Service string
	Port               int32
	// HTTPSPort is the Service's TLS port (INGRESS-002).
	HTTPSPort int32
	// Selector is the gateway pods' labels, for Gateway.spec.selector (API istio).
	Selector map[string]string
}

// GatewayAPI says whether cases configure ingress with the Gateway API: a Gateway of their
// own in the server namespace (Namespace is then that namespace, set when the spec's
// namespaces exist) and HTTPRoutes.
func (g GatewayRef) GatewayAPI() bool { return g.API == IngressGatewayAPI }

// IngressGatewayAPI is GatewayRef.API for Gateway-API ingress (settings.IngressGatewayAPI).
const IngressGatewayAPI = settings.IngressGatewayAPI

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
// or (Proxy) in the container where its proxy runs (the data plane says which).
type Source struct {
	Role   Role
	Sample workload.Sample
	Proxy  bool
}

// Target is what a probe calls: a sample's Service in a role's namespace at one of its
// Service ports (0: the first), or the ingress gateway with a Host header.
type Target struct {
	Role   Role
	Sample workload.Sample
	Port   int32
	Path   string
	// RawPath sends Path as written (curl --path-as-is): `..` and `%2E%2E` reach the proxy
	// unresolved, as an attacker would send them.
	RawPath bool
	// ViaGateway sends the request to the ingress gateway, with Host set to Host; with HTTPS,
	// to its TLS port as https://Host (SNI Host), connecting to the gateway's Service.
	ViaGateway bool
	HTTPS      bool
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
	// Headers are request headers, made when the probe runs (a token minted then).
	Headers func(e Env) map[string]string
	// CACert is the PEM the client trusts for an https target (instead of the system's).
	CACert func(e Env) string
}

// Step applies and deletes objects, then converges every probe.
type Step struct {
	Name   string
	Apply  func(e Env) []policy.Object
	Delete func(e Env) []policy.Object
	Probes []Probe
}

// Object is any API object a behaviour writes: a policy.Object, a Secret, a webhook
// configuration.
type Object interface {
	metav1.Object
	runtime.Object
}

// Verb is an API verb a behaviour uses on an object, as RBAC names it.
type Verb string

// The verbs a Write may name.
const (
	Create Verb = "create"
	Get    Verb = "get"
	Update Verb = "update"
	Delete Verb = "delete"
)

// Write is what a behaviour writes outside its steps and the objects it applies: an object
// and the verbs it uses on it, in order (a Secret it creates, then deletes; the webhook
// configuration it gets, then updates; a policy it deletes through the Applier). The tier-1
// proof makes each as a ServiceAccount bound only to the suite's ClusterRole
// (manifests/rbac/suite-clusterrole.yaml), so that a verb the role lacks fails there rather
// than on someone's cluster.
type Write struct {
	Object Object
	Verbs  []Verb
}
