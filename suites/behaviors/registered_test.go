package behaviors

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// testEnv gives every role a distinct namespace name.
func testEnv() cases.Env {
	e := cases.Env{Namespaces: map[cases.Role]string{}, TrustDomain: "cluster.local", RootNamespace: "istio-system",
		Gateway: cases.GatewayRef{Namespace: "istio-ingress", Service: "istio-ingressgateway", Port: 80,
			Selector: map[string]string{"istio": "ingressgateway"}}}
	for _, r := range []cases.Role{cases.Server, cases.Client, cases.Other} {
		e.Namespaces[r] = "mc-" + string(r) + "-abc123"
	}
	return e
}

// TestRegisteredBehaviors checks the registered values as data: e2e.Validate (catalog IDs,
// one of Steps and Run, groups, unique texts), every catalog ID registered, namespaces
// declared once, objects with a namespace and a name, probes from and to samples the
// behaviour deploys, with an expectation the catalog defines.
func TestRegisteredBehaviors(t *testing.T) {
	bs := e2e.Registered()
	for _, err := range e2e.Validate(bs) {
		t.Error(err)
	}
	ids := map[string]bool{}
	for _, b := range bs {
		ids[b.ID] = true
	}
	for _, id := range catalog.IDs() {
		if !ids[id] {
			t.Errorf("%s is in docs/behaviors.md but no file registers it", id)
		}
	}
	e := testEnv()
	for _, b := range bs {
		t.Run(b.Text(), func(t *testing.T) {
			if b.Name == "" {
				t.Error("no name")
			}
			where := map[cases.Role]map[workload.Sample]bool{}
			for _, n := range b.Namespaces {
				if where[n.Role] != nil {
					t.Errorf("role %q declared twice", n.Role)
				}
				where[n.Role] = map[workload.Sample]bool{}
				for _, s := range n.Samples {
					where[n.Role][s] = true
				}
			}
			mustNotPanic(t, "objects", func() {
				for _, o := range b.AllObjects(e) {
					if o.GetNamespace() == "" || o.GetName() == "" {
						t.Errorf("applies an object without namespace or name: %v", o.GetObjectKind().GroupVersionKind())
					}
				}
			})
			if b.Writes != nil {
				mustNotPanic(t, "writes", func() { checkWrites(t, b.Writes(e)) })
			}
			if b.Group != "" {
				if g, ok := e2e.RegisteredGroup(b.Group); ok && g.Writes != nil {
					mustNotPanic(t, "group writes", func() { checkWrites(t, g.Writes(e)) })
				}
			}
			for _, s := range b.Steps {
				if s.Apply == nil && s.Delete == nil && len(s.Probes) == 0 {
					t.Errorf("step %q does nothing", s.Name)
				}
				if s.Delete != nil {
					mustNotPanic(t, s.Name, func() { s.Delete(e) })
				}
				for _, p := range s.Probes {
					if !where[p.From.Role][p.From.Sample] {
						t.Errorf("probe %q runs from %s in role %q, which the behaviour does not deploy there", p.Name, p.From.Sample, p.From.Role)
					}
					if !where[p.To.Role][p.To.Sample] {
						t.Errorf("probe %q calls %s in role %q, which the behaviour does not deploy there", p.Name, p.To.Sample, p.To.Role)
					}
					if _, ok := catalog.LookupExpectation(p.Expect.Name); !ok {
						t.Errorf("probe %q expects %q, which the catalog does not define", p.Name, p.Expect.Name)
					}
					checkServedPort(t, p)
				}
			}
		})
	}
}

// TestValidateRefusesMalformedValues: the checks above can fail.
func TestValidateRefusesMalformedValues(t *testing.T) {
	steps := []cases.Step{{Name: "s"}}
	for _, tc := range []struct {
		b    e2e.Behavior
		want string
	}{
		{e2e.Behavior{ID: "NOPE-001", Name: "x", Steps: steps}, "not in docs/behaviors.md"},
		{e2e.Behavior{ID: "MTLS-003", Name: "x"}, "exactly one of Steps and Run"},
		{e2e.Behavior{ID: "MTLS-003", Name: "x", Steps: steps, Group: "nobody"}, `group "nobody" is not registered`},
		// The proxyless tables (DATAPLANE_MODE=proxyless): present where the catalog judges the
		// behaviour there, absent elsewhere, with gRPC shapes the catalog's row names.
		{e2e.Behavior{ID: "MTLS-001", Name: "x", Steps: steps}, "the catalog's proxyless row is analogue, and the spec has no proxyless table"},
		{e2e.Behavior{ID: "MTLS-003", Name: "x", Steps: steps, Proxyless: &e2e.Table{Steps: steps}}, `a proxyless table, and the catalog's proxyless row is "left out"`},
		{e2e.Behavior{ID: "MTLS-002", Name: "x", Steps: steps, Proxyless: &e2e.Table{Steps: []cases.Step{{Name: "s", Probes: []cases.Probe{
			{Name: "curl shape", Expect: catalog.PlaintextRejected}}}}}}, "not a gRPC shape"},
		{e2e.Behavior{ID: "MTLS-002", Name: "x", Steps: steps, Proxyless: &e2e.Table{Steps: []cases.Step{{Name: "s", Probes: []cases.Probe{
			{Name: "unnamed shape", Expect: catalog.GRPCNoAllowMatch}}}}}}, "which the catalog's proxyless row does not name"},
		{e2e.Behavior{ID: "INGRESS-001", Name: "x", Steps: []cases.Step{{Name: "s", Probes: []cases.Probe{
			{Name: "via gw", To: cases.Target{ViaGateway: true}}}}}}, "without Requires.IngressGateway"},
	} {
		errs := e2e.Validate([]e2e.Behavior{tc.b})
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want %q", tc.b.Text(), errs, tc.want)
		}
	}
	dup := e2e.Behavior{ID: "MTLS-003", Name: "x", Steps: steps}
	if errs := e2e.Validate([]e2e.Behavior{dup, dup}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "two specs") {
		t.Errorf("duplicate text: %v", errs)
	}
}

// checkWrites: each write names an object and verbs the tier-1 proof knows.
func checkWrites(t *testing.T, ws []cases.Write) {
	t.Helper()
	for _, w := range ws {
		if w.Object == nil || w.Object.GetName() == "" {
			t.Errorf("a write without an object or a name: %+v", w)
			continue
		}
		if len(w.Verbs) == 0 {
			t.Errorf("write of %s names no verb", w.Object.GetName())
		}
		for _, v := range w.Verbs {
			if !slices.Contains([]cases.Verb{cases.Create, cases.Get, cases.Update, cases.Delete}, v) {
				t.Errorf("write of %s: verb %q is none of create, get, update, delete", w.Object.GetName(), v)
			}
		}
	}
}

func checkServedPort(t *testing.T, p cases.Probe) {
	t.Helper()
	m, err := workload.Load(p.To.Sample)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Services) == 0 {
		t.Errorf("%s: target %s has no Service", p.Name, p.To.Sample)
		return
	}
	if p.To.Port == 0 {
		return
	}
	for _, sp := range m.Services[0].Spec.Ports {
		if sp.Port == p.To.Port {
			return
		}
	}
	t.Errorf("%s: %s's Service has no port %d", p.Name, p.To.Sample, p.To.Port)
}

func mustNotPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// An ambient run, with or without a waypoint it can put in a path: exactly these specs run, and
// the ones the catalog judges but a spec's own probe keeps out say which probe.
func TestAmbientRunsTheseSpecs(t *testing.T) {
	facts := cases.RunFacts{Mode: "ambient", DisruptiveAllowed: true, NoWaypoint: "no waypoint in this run"}
	withWaypoint := facts
	withWaypoint.NoWaypoint = ""
	var viaWaypoint []string
	for _, b := range e2e.Registered() {
		if b.LeftOutIn(facts) != "" && b.LeftOutIn(withWaypoint) == "" {
			viaWaypoint = append(viaWaypoint, b.ID)
		}
	}
	if want := []string{"AUTHZ-002", "AUTHZ-003", "AUTHZ-006", "AUTHZ-007", "AUTHZ-011", "JWT-001", "JWT-002"}; !slices.Equal(viaWaypoint, want) {
		t.Errorf("ambient runs through a waypoint %v, want %v", viaWaypoint, want)
	}
	var runs []string
	why := map[string]string{}
	for _, b := range e2e.Registered() {
		if w := b.LeftOutIn(facts); w != "" {
			why[b.Text()] = w
			continue
		}
		runs = append(runs, b.Text())
	}
	want := []string{"MTLS-001", "MTLS-002", "MTLS-004", "MTLS-005", "MTLS-006", "MTLS-007", "MTLS-008", "MTLS-009",
		"MTLS-011", "MTLS-013", "MTLS-014", "MTLS-015", "CERT-003", "CERT-005", "AUTHZ-009", "CP-001", "CP-002", "CP-003",
		"VALID-001", "INGRESS-001", "INGRESS-002"}
	var ids []string
	for _, r := range runs {
		id, _, _ := strings.Cut(r, ":")
		id, _, _ = strings.Cut(id, " ")
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("ambient runs %v\nwant %v", ids, want)
	}
	for text, w := range why {
		switch {
		case strings.HasPrefix(text, "AUTHZ-005"):
			if !strings.Contains(w, "expects RBACDenied, which ambient gives only through a waypoint") {
				t.Errorf("%s: %q, want the probe that expects AUTHZ-001's 403", text, w)
			}
		case strings.HasPrefix(text, "AUTHZ-002"), strings.HasPrefix(text, "JWT-001"):
			if !strings.Contains(w, "needs a waypoint") {
				t.Errorf("%s: %q, want the missing waypoint", text, w)
			}
		case strings.HasPrefix(text, "PROBE-003"):
			if !strings.Contains(w, "written for the sidecar data plane") {
				t.Errorf("%s: %q", text, w)
			}
		}
	}
}

// In an ambient run the waypoint specs' policies attach to the waypoint: every
// AuthorizationPolicy and RequestAuthentication of the server namespace targets a Service the
// spec deploys there, or the waypoint, and selects nothing (the CRD refuses both).
func TestWaypointSpecsAttachTheirPolicies(t *testing.T) {
	e := testEnv()
	n := 0
	for _, b := range e2e.Registered() {
		if !catalog.MustLookup(b.ID).Ambient.NeedsWaypoint {
			continue
		}
		n++
		services, err := b.WaypointServices()
		if err != nil || len(services) == 0 {
			t.Errorf("%s: Services of the server namespace %v, %v", b.Text(), services, err)
			continue
		}
		var applied []policy.Object // the sidecar table's, which an ambient run applies (not the proxyless one)
		for _, st := range b.Steps {
			if st.Apply != nil {
				applied = append(applied, st.Apply(e)...)
			}
		}
		if b.Objects != nil {
			applied = append(applied, b.Objects(e)...)
		}
		objs, err := e2e.WaypointObjects(e, services, applied)
		if err != nil {
			t.Errorf("%s: %v", b.Text(), err)
			continue
		}
		for _, o := range objs {
			if o.GetNamespace() != e.NS(cases.Server) {
				continue
			}
			switch k := o.GetObjectKind().GroupVersionKind().Kind; k {
			case "AuthorizationPolicy", "RequestAuthentication":
				var u struct{ Spec map[string]any }
				if b, err := json.Marshal(o); err != nil || json.Unmarshal(b, &u) != nil {
					t.Fatalf("%s: %v", o.GetName(), err)
				}
				spec := u.Spec
				if _, has := spec["selector"]; has || spec["targetRefs"] == nil {
					t.Errorf("%s: %s %s attaches by %v", b.Text(), k, o.GetName(), spec)
				}
			}
		}
	}
	if n < 8 {
		t.Errorf("%d specs need a waypoint in ambient, want at least one for each of the 8 behaviours the catalog marks", n)
	}
}
