package e2e

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/catalog"
	"meshconform/framework/dataplane"
	"meshconform/framework/expect"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/suites/cases"
	"meshconform/suites/internal/record"
)

// Behavior is one spec of a catalog behaviour, registered from the behaviour's own file in
// suites/behaviors (in the spirit of gateway-api's conformance tests): what it needs, what it
// deploys, and either a probe table (Steps) or a Run function. The runner (Specs) turns every
// registered value into one Ginkgo spec labelled with the ID, the area and the catalog's labels;
// a requirement the run does not meet makes the spec "left out" (not applicable) in the
// report, with the reason, never a silent skip.
type Behavior struct {
	ID string
	// Name is the spec's text after "ID: " (after "ID <Part>: " when Part is set).
	Name string
	// Part names a second spec of the same behaviour ("injected spec").
	Part string
	// InjectedSpec marks a spec that judges only what the injector wrote into a pod (the
	// control plane alone decides it): it drops the catalog's dataplane label, so it runs where
	// no proxy can (DATAPLANE=0); the behaviour's other specs stay left out there.
	InjectedSpec bool
	Requires     cases.Requires
	// Serial runs the spec alone (after the parallel ones): disruptive behaviours always are.
	Serial  bool
	Timeout time.Duration
	// Namespaces (and their samples) the runner creates, and waits for, before Steps or Run.
	Namespaces []cases.Namespace
	// Steps is a probe table; Run is the body of the few behaviours that are not one.
	Steps []cases.Step
	Run   func(ctx context.Context, t *T)
	// Objects lists what Run applies, for the tier-1 dry run (Steps' objects are found alone).
	Objects func(e cases.Env) []policy.Object
	// Writes lists Run's other writes, in order: the objects it writes with the Kubernetes API
	// itself and the Objects it deletes, for the tier-1 proof that the suite's ClusterRole
	// allows them (Steps' deletes are found alone).
	Writes func(e cases.Env) []cases.Write
	// Group names an ordered group of specs that share one setup (RegisterGroup).
	Group string
	// Proxyless is the behaviour's gRPC analogue, run instead of Namespaces and Steps when the
	// run's data plane is proxyless (DATAPLANE_MODE=proxyless): its own samples (Istio's echo
	// server and clients) and probes judged against gRPC shapes. nil: a proxyless run leaves
	// the spec out (the catalog's proxyless row says why, or that the analogue is not written).
	Proxyless *Table
}

// Table is a probe table of its own: namespaces (and their samples) and steps.
type Table struct {
	Namespaces []cases.Namespace
	Steps      []cases.Step
}

// Text is the spec's text.
func (b Behavior) Text() string {
	if b.Part != "" {
		return fmt.Sprintf("%s %s: %s", b.ID, b.Part, b.Name)
	}
	return fmt.Sprintf("%s: %s", b.ID, b.Name)
}

// Labels are the spec's Ginkgo labels: the ID, the area, the catalog's labels (without
// dataplane for an injected spec).
func (b Behavior) Labels() Labels {
	if b.InjectedSpec {
		return InjectedSpecLabels(b.ID)
	}
	return IDLabels(b.ID)
}

// AllObjects is every object the spec applies, for validation against a real API server.
func (b Behavior) AllObjects(e cases.Env) []policy.Object {
	var out []policy.Object
	for _, s := range b.Steps {
		if s.Apply != nil {
			out = append(out, s.Apply(e)...)
		}
	}
	if b.Objects != nil {
		out = append(out, b.Objects(e)...)
	}
	if b.Proxyless != nil {
		for _, s := range b.Proxyless.Steps {
			if s.Apply != nil {
				out = append(out, s.Apply(e)...)
			}
		}
	}
	return out
}

// requires is what the spec needs of the run: the value's own requirements, and the
// catalog's labels (dataplane unless an injected spec, disruptive, agent) and its ambient
// column's `needs waypoint`.
func (b Behavior) requires() cases.Requires {
	r := b.Requires
	c := catalog.MustLookup(b.ID)
	r.DataPlane = r.DataPlane || (c.HasLabel(catalog.LabelDataPlane) && !b.InjectedSpec)
	r.Disruptive = r.Disruptive || c.HasLabel(catalog.LabelDisruptive)
	r.Agent = r.Agent || c.HasLabel(catalog.LabelAgent)
	r.Waypoint = r.Waypoint || c.Ambient.NeedsWaypoint
	return r
}

// Group is specs that share one setup, run once before the first of them and undone after
// the last (an Ordered container): the posture audit hardens the mesh once for seven checks.
type Group struct {
	Name string
	// Setup runs once (BeforeAll); what it registers with DeferCleanup runs after the group.
	Setup func(ctx context.Context)
	// Writes lists what Setup and its cleanup write besides namespaces and workloads (the
	// posture hardening), for the tier-1 proof that the suite's ClusterRole allows it.
	Writes func(e cases.Env) []cases.Write
}

var (
	mu         sync.Mutex
	registered []Behavior
	groups     = map[string]Group{}
)

// Register adds a behaviour spec; call it from a package-level var in its own file:
//
//	var _ = e2e.Register(e2e.Behavior{ID: "MTLS-002", ...})
func Register(b Behavior) bool {
	mu.Lock()
	defer mu.Unlock()
	registered = append(registered, b)
	return true
}

// RegisterGroup adds a group that behaviours name in Behavior.Group.
func RegisterGroup(g Group) bool {
	mu.Lock()
	defer mu.Unlock()
	groups[g.Name] = g
	return true
}

// RegisteredGroup is the group registered as name.
func RegisteredGroup(name string) (Group, bool) {
	mu.Lock()
	defer mu.Unlock()
	g, ok := groups[name]
	return g, ok
}

// Registered is every registered spec, by catalog order of ID, then Part.
func Registered() []Behavior {
	mu.Lock()
	defer mu.Unlock()
	order := map[string]int{}
	for i, id := range catalog.IDs() {
		order[id] = i
	}
	out := slices.Clone(registered)
	slices.SortStableFunc(out, func(a, b Behavior) int {
		return cmp.Or(cmp.Compare(order[a.ID], order[b.ID]), cmp.Compare(a.Part, b.Part))
	})
	return out
}

// Validate lists what is wrong with the registered values: an ID the catalog does not have,
// neither or both of Steps and Run, a group nobody registered, a gateway probe without the
// requirement, two specs with one text.
func Validate(bs []Behavior) []error {
	var errs []error
	texts := map[string]bool{}
	for _, b := range bs {
		if _, ok := catalog.Lookup(b.ID); !ok {
			errs = append(errs, fmt.Errorf("%s: not in docs/behaviors.md", b.ID))
			continue
		}
		if (len(b.Steps) > 0) == (b.Run != nil) {
			errs = append(errs, fmt.Errorf("%s: wants exactly one of Steps and Run", b.Text()))
		}
		if b.Group != "" {
			if _, ok := groups[b.Group]; !ok {
				errs = append(errs, fmt.Errorf("%s: group %q is not registered", b.Text(), b.Group))
			}
		}
		for _, s := range b.Steps {
			for _, p := range s.Probes {
				if p.To.ViaGateway && !b.Requires.IngressGateway {
					errs = append(errs, fmt.Errorf("%s: probe %q goes through the ingress gateway without Requires.IngressGateway", b.Text(), p.Name))
				}
			}
		}
		errs = append(errs, validateProxyless(b)...)
		if texts[b.Text()] {
			errs = append(errs, fmt.Errorf("%s: two specs with this text", b.Text()))
		}
		texts[b.Text()] = true
	}
	return errs
}

// validateProxyless: a proxyless table belongs to a behaviour the catalog judges on the
// proxyless data plane, and each of its probes expects a gRPC shape the catalog's row names
// (so that a proxyless probe can never be judged against a curl shape, nor against an outcome
// the catalog does not document); the catalog's judged rows have a table in every spec of the
// behaviour that drives the data plane.
func validateProxyless(b Behavior) []error {
	c := catalog.MustLookup(b.ID)
	var errs []error
	if b.Proxyless == nil {
		if c.Proxyless.Judged() && c.NotJudgedInProxyless() == "" && b.requires().DataPlane {
			errs = append(errs, fmt.Errorf("%s: the catalog's proxyless row is %s, and the spec has no proxyless table", b.Text(), c.Proxyless.Verdict))
		}
		return errs
	}
	if !c.Proxyless.Judged() {
		return append(errs, fmt.Errorf("%s: a proxyless table, and the catalog's proxyless row is %q", b.Text(), c.Proxyless.Verdict))
	}
	for _, s := range b.Proxyless.Steps {
		for _, p := range s.Probes {
			if p.Expect.Documented.GRPCCode == "" {
				errs = append(errs, fmt.Errorf("%s: proxyless probe %q expects %s, not a gRPC shape", b.Text(), p.Name, p.Expect.Name))
			}
			if !slices.ContainsFunc(c.Proxyless.Expectations, func(e catalog.Expectation) bool { return e.Name == p.Expect.Name }) {
				errs = append(errs, fmt.Errorf("%s: proxyless probe %q expects %s, which the catalog's proxyless row does not name", b.Text(), p.Name, p.Expect.Name))
			}
			if p.From.Proxy {
				errs = append(errs, fmt.Errorf("%s: proxyless probe %q runs in a proxy: the proxyless data plane has none", b.Text(), p.Name))
			}
		}
	}
	return errs
}

// defaultSpecTimeout bounds one spec: workloads (image pulls on a fresh node), then each
// probe's convergence.
const defaultSpecTimeout = 20 * time.Minute

// byText maps each declared spec's text to its value, for the left-out check.
var byText = map[string]Behavior{}

// Specs declares every registered behaviour as a Ginkgo spec, one container per area in the
// catalog's order; a group's specs sit in one Ordered container with the group's setup.
func Specs() bool {
	bs := Registered()
	if errs := Validate(bs); len(errs) > 0 {
		panic(fmt.Sprintf("meshconform: registered behaviours: %v", errs))
	}
	for _, area := range catalog.Areas() {
		var in []Behavior
		for _, b := range bs {
			if catalog.MustLookup(b.ID).Area == area {
				in = append(in, b)
			}
		}
		if len(in) == 0 {
			continue
		}
		Describe(string(area), func() {
			var grouped []string
			for _, b := range in {
				if b.Group == "" {
					declare(b, b.serial())
				} else if !slices.Contains(grouped, b.Group) {
					grouped = append(grouped, b.Group)
				}
			}
			for _, name := range grouped {
				g := groups[name]
				var members []Behavior
				decorators := []any{Ordered}
				for _, b := range in {
					if b.Group == name {
						members = append(members, b)
						if b.serial() && !slices.Contains(decorators, any(Serial)) {
							// Ginkgo wants Serial on the Ordered container, not its specs.
							decorators = append(decorators, Serial)
						}
					}
				}
				Describe(name, append(decorators, func() {
					BeforeAll(func(ctx SpecContext) { g.Setup(record.Metered(ctx)) })
					for _, b := range members {
						declare(b, false)
					}
				})...)
			}
		})
	}
	return true
}

// ProtectsRootNamespace: the runner snapshots the root namespace's policies after setting up
// the spec's namespaces and restores them after the spec (a disruptive spec with namespaces).
func (b Behavior) ProtectsRootNamespace() bool {
	return len(b.Namespaces) > 0 && b.requires().Disruptive
}

// serial: the spec runs alone, after the parallel ones (disruptive ones always do).
func (b Behavior) serial() bool { return b.Serial || b.requires().Disruptive }

func declare(b Behavior, serial bool) {
	byText[b.Text()] = b
	decorators := []any{b.Labels(), SpecTimeout(cmp.Or(b.Timeout, defaultSpecTimeout))}
	if serial {
		decorators = append(decorators, Serial)
	}
	It(b.Text(), append(decorators, func(ctx SpecContext) { run(ctx, b) })...)
}

// notApplicable is why the current spec cannot run on this run ("" when it can): a
// requirement of its Behavior the run does not meet.
func notApplicable(r *Run) string {
	b, ok := byText[CurrentSpecReport().LeafNodeText]
	if !ok {
		return ""
	}
	return b.LeftOutIn(r.Facts())
}

// LeftOutIn is why a run with facts f leaves the spec out ("" when it runs there): the data-plane
// mode's reasons (the catalog's and the spec's own), then the first requirement f does not meet.
func (b Behavior) LeftOutIn(f cases.RunFacts) string {
	switch f.Mode {
	case dataplane.ModeProxyless:
		if why := b.notJudgedInProxyless(); why != "" {
			return why
		}
	case dataplane.ModeAmbient:
		if why := b.notJudgedInAmbient(); why != "" {
			return why
		}
	}
	return b.requires().Unmet(f)
}

// notJudgedInAmbient says why an ambient run leaves the spec out: the catalog's reason, or, for a
// spec whose path has no waypoint, a probe that expects a shape ambient gives only through one
// (catalog.AmbientWithoutWaypoint: AUTHZ-005 first asserts AUTHZ-001's 403, a ztunnel reset in
// ambient) or that runs in the pod's proxy, which an ambient pod does not have. A spec's Run
// function is not read here; T.Converge refuses the same shapes while it runs.
func (b Behavior) notJudgedInAmbient() string {
	if why := catalog.MustLookup(b.ID).NotJudgedInAmbient(); why != "" {
		return why
	}
	for _, s := range b.Steps {
		for _, p := range s.Probes {
			switch {
			case p.From.Proxy:
				return fmt.Sprintf("DATAPLANE_MODE=ambient: step %q, probe %q runs in the pod's proxy, and an ambient pod has none", s.Name, p.Name)
			case !b.requires().Waypoint && !catalog.AmbientWithoutWaypoint(p.Expect):
				return fmt.Sprintf("DATAPLANE_MODE=ambient: step %q, probe %q expects %s, which ambient gives only through a waypoint (or not at all), "+
					"and this spec puts none in its path", s.Name, p.Name, p.Expect.Name)
			}
		}
	}
	return ""
}

// notJudgedInProxyless says why a proxyless run leaves the spec out: the catalog's reason, or,
// for a behaviour the catalog judges there, a spec with neither a proxyless table nor
// requirements met by what the run has (a control-plane spec runs as written).
func (b Behavior) notJudgedInProxyless() string {
	c := catalog.MustLookup(b.ID)
	if why := c.NotJudgedInProxyless(); why != "" {
		return why
	}
	if c.Proxyless.Judged() && b.Proxyless == nil {
		return "DATAPLANE_MODE=proxyless: the catalog gives this behaviour a proxyless analogue, and this spec has no proxyless table (suites/behaviors)"
	}
	return ""
}

// Facts is what requirements are judged against.
func (r *Run) Facts() cases.RunFacts {
	f := cases.RunFacts{Mode: r.DataPlane.Mode(), NoDataPlane: r.State.Settings.NoDataPlane,
		NoAgent:           r.State.Settings.NoDataPlane && r.State.Settings.AgentImage == "",
		DisruptiveAllowed: r.State.DisruptiveAllowed}
	if r.Gateway.Service == "" {
		f.NoGateway = "no ingress gateway"
		if r.GatewayErr != nil {
			f.NoGateway = r.GatewayErr.Error()
		}
	}
	return f
}

func run(ctx context.Context, b Behavior) {
	GinkgoHelper()
	ctx = record.Metered(ctx) // the spec's waits count in its timings
	t := &T{ID: b.ID, Run: Current}
	if Current.DataPlane.Mode() == dataplane.ModeProxyless && b.Proxyless != nil {
		// The gRPC analogue; notApplicable left out the data-plane specs without one, and a
		// control-plane spec runs as written.
		b.Namespaces, b.Steps, b.Run = b.Proxyless.Namespaces, b.Proxyless.Steps, nil
	}
	if len(b.Namespaces) > 0 {
		t.Scenario = Setup(ctx, Current, b.ID, b.Namespaces)
		if b.putsWaypoint(Current.DataPlane.Mode()) {
			services, err := b.WaypointServices()
			must(err, "the Services of the server namespace")
			t.PutWaypoint(ctx, services)
		}
	}
	if b.ProtectsRootNamespace() {
		t.ProtectRootNamespace(ctx)
	}
	if b.Run != nil {
		b.Run(ctx, t)
		return
	}
	for _, step := range b.Steps {
		By(step.Name)
		if step.Apply != nil {
			t.Apply(ctx, step.Apply(t.Env))
		}
		if step.Delete != nil {
			t.Delete(ctx, step.Delete(t.Env))
		}
		for _, p := range step.Probes {
			By(fmt.Sprintf("%s: %s expects %s", step.Name, p.Name, p.Expect.Name))
			t.Converge(ctx, p)
		}
	}
}

// T is one running spec of a behaviour: the run, the scenario the runner set up (nil when
// the behaviour declares no namespaces), and the one way its verdicts reach the report,
// under its ID.
type T struct {
	ID  string
	Run *Run
	*Scenario
}

// Converge runs a probe until it converges on its expectation and records it; the spec fails
// with the full evidence when it does not.
func (t *T) Converge(ctx context.Context, p cases.Probe) probe.Outcome {
	GinkgoHelper()
	if t.Run.DataPlane.Mode() == dataplane.ModeAmbient && !catalog.AmbientWithoutWaypoint(p.Expect) &&
		!catalog.MustLookup(t.ID).Ambient.NeedsWaypoint {
		// notJudgedInAmbient leaves out a probe table with such a probe; a Run function is the
		// behaviour's own, and must not be judged against a shape ambient does not give.
		Fail(fmt.Sprintf("%s: probe %q expects %s, which ambient gives only through a waypoint, and this spec puts none in its path", t.ID, p.Name, p.Expect.Name))
	}
	p.Expect = t.Run.DataPlane.Outcome(p.Expect) // the shape this data-plane mode documents
	if p.Expect.Documented.GRPCCode != "" {
		// A gRPC shape: the call is Istio's echo client's.
		return record.ProbeWith(ctx, t.Run.Expect, t.Run.Mode, t.ID, p, t.Env, t.Executor(ctx, p.From), t.GRPCRequest(p))
	}
	return record.Probe(ctx, t.Run.Expect, t.Run.Mode, t.ID, p, t.Env, t.Executor(ctx, p.From), t.Request(p))
}

// Check records the verdict of a check that is not a curl probe: documented (reason ok) when
// err is nil, else a deviation, and the spec fails. fields are what was observed either way.
func (t *T) Check(err error, ok string, fields map[string]string) {
	GinkgoHelper()
	record.Check(t.ID, err, ok, fields)
}

// Classified records a classification the behaviour made itself (an outcome the catalog
// calls equivalent, for example) and fails the spec when the run's mode does not accept it.
func (t *T) Classified(class expect.Classification, reason string, fields map[string]string) {
	GinkgoHelper()
	record.Fields(t.ID, class, reason, fields)
	if !t.Run.Mode.Accepts(class) {
		Fail(fmt.Sprintf("%s: %s (%s)", t.ID, reason, class))
	}
}

// Unjudged fails a spec whose check could not be evaluated, with what was seen.
func (t *T) Unjudged(err error, fields map[string]string) {
	GinkgoHelper()
	record.Unjudged(t.ID, err, fields)
}
