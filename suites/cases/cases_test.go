package cases

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"meshconform/framework/catalog"
	"meshconform/framework/workload"
)

// testEnv gives every role a distinct namespace name.
func testEnv(c Case) Env {
	e := Env{Namespaces: map[Role]string{}, TrustDomain: "cluster.local", RootNamespace: "istio-system",
		Gateway: GatewayRef{Namespace: "istio-ingress", Service: "istio-ingressgateway", Port: 80,
			Selector: map[string]string{"istio": "ingressgateway"}}}
	for _, r := range c.Roles() {
		e.Namespaces[r] = "mc-" + string(r) + "-abc123"
	}
	return e
}

func TestCasesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range All() {
		c := c
		t.Run(c.ID, func(t *testing.T) {
			b, ok := catalog.Lookup(c.ID)
			if !ok {
				t.Fatalf("case %q names no behaviour of the catalog", c.ID)
			}
			if c.Disruptive != hasLabel(b.Labels, catalog.LabelDisruptive) {
				t.Errorf("Disruptive=%v but the catalog's labels are %v", c.Disruptive, b.Labels)
			}
			if c.Name == "" || len(c.Steps) == 0 {
				t.Fatalf("case needs a name and at least one step")
			}
			e := testEnv(c)
			where := map[Role]map[workload.Sample]bool{}
			for _, n := range c.Namespaces {
				if where[n.Role] != nil {
					t.Errorf("role %q declared twice", n.Role)
				}
				where[n.Role] = map[workload.Sample]bool{}
				for _, s := range n.Samples {
					where[n.Role][s] = true
				}
			}
			for _, s := range c.Steps {
				mustNotPanic(t, s.Name, func() {
					if s.Apply != nil {
						for _, o := range s.Apply(e) {
							if o.GetNamespace() == "" || o.GetName() == "" {
								t.Errorf("step %q applies an object without namespace or name", s.Name)
							}
						}
					}
					if s.Delete != nil {
						s.Delete(e)
					}
				})
				if s.Apply == nil && s.Delete == nil && len(s.Probes) == 0 {
					t.Errorf("step %q does nothing", s.Name)
				}
				for _, p := range s.Probes {
					if !where[p.From.Role][p.From.Sample] {
						t.Errorf("probe %q runs from %s in role %q, which the case does not deploy there", p.Name, p.From.Sample, p.From.Role)
					}
					if !where[p.To.Role][p.To.Sample] {
						t.Errorf("probe %q calls %s in role %q, which the case does not deploy there", p.Name, p.To.Sample, p.To.Role)
					}
					if p.Expect.Name == "" {
						t.Errorf("probe %q has no expectation", p.Name)
					}
					if _, ok := catalog.LookupExpectation(p.Expect.Name); !ok {
						t.Errorf("probe %q expects %q, which the catalog does not define", p.Name, p.Expect.Name)
					}
				}
			}
			seen[c.ID] = true
		})
	}
	if len(seen) < 15 {
		t.Errorf("only %d data cases; the tables lost some", len(seen))
	}
}

func TestProbeTargetsAreServedPorts(t *testing.T) {
	for _, c := range All() {
		for _, s := range c.Steps {
			for _, p := range s.Probes {
				m, err := workload.Load(p.To.Sample)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Services) == 0 {
					t.Errorf("%s/%s: target %s has no Service", c.ID, p.Name, p.To.Sample)
					continue
				}
				if p.To.Port == 0 {
					continue
				}
				found := false
				for _, sp := range m.Services[0].Spec.Ports {
					found = found || sp.Port == p.To.Port
				}
				if !found {
					t.Errorf("%s/%s: %s's Service has no port %d", c.ID, p.Name, p.To.Sample, p.To.Port)
				}
			}
		}
	}
}

func TestCheckXFCC(t *testing.T) {
	by := "spiffe://cluster.local/ns/srv/sa/httpbin"
	uri := "spiffe://cluster.local/ns/cli/sa/sleep"
	hash := strings.Repeat("ab", 32)
	body := func(v string) string {
		return fmt.Sprintf(`{"headers":{"Accept":["*/*"],"X-Forwarded-Client-Cert":[%q]}}`, v)
	}
	good := fmt.Sprintf(`By=%s;Hash=%s;Subject="";URI=%s`, by, hash, uri)
	if err := CheckXFCC(body(good), by, uri); err != nil {
		t.Fatalf("documented XFCC rejected: %v", err)
	}
	for name, v := range map[string]string{
		"wrong client":   fmt.Sprintf(`By=%s;Hash=%s;Subject="";URI=spiffe://cluster.local/ns/cli/sa/other`, by, hash),
		"wrong server":   fmt.Sprintf(`By=spiffe://cluster.local/ns/srv/sa/x;Hash=%s;Subject="";URI=%s`, hash, uri),
		"short hash":     fmt.Sprintf(`By=%s;Hash=abc;Subject="";URI=%s`, by, uri),
		"no subject key": fmt.Sprintf(`By=%s;Hash=%s;URI=%s`, by, hash, uri),
	} {
		if err := CheckXFCC(body(v), by, uri); err == nil {
			t.Errorf("%s: CheckXFCC accepted %q", name, v)
		}
	}
	if err := CheckXFCC(`{"headers":{}}`, by, uri); err == nil || !strings.Contains(err.Error(), "X-Forwarded-Client-Cert") {
		t.Errorf("missing header: got %v", err)
	}
}

func hasLabel(ls []string, l string) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
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

// TestFindGatewayOfOtherInstalls: a gateway the suite did not install. istioctl's gateways
// chart labels its Service istio=ingressgateway and istio.io/rev=<revision or "default">
// (manifests/charts/gateways/istio-ingress/templates/service.yaml); a canary run must not
// take the default's, and a run of a revision with no gateway finds none.
func TestFindGatewayOfOtherInstalls(t *testing.T) {
	svc := func(ns, name string, labels map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"istio": "ingressgateway", "app": name},
				Ports: []corev1.ServicePort{{Name: "http2", Port: 80}}}}
	}
	kube := fake.NewClientset(
		svc("istio-system", "istio-ingressgateway", map[string]string{"istio": "ingressgateway", "istio.io/rev": "default"}),
		svc("istio-system", "istio-ingressgateway-canary", map[string]string{"istio": "ingressgateway", "istio.io/rev": "canary"}),
	)
	ctx := context.Background()
	for rev, want := range map[string]string{"": "istio-ingressgateway", "canary": "istio-ingressgateway-canary"} {
		ref, err := FindGateway(ctx, kube, rev)
		if err != nil || ref.Service != want || ref.Namespace != "istio-system" {
			t.Errorf("revision %q: %+v %v, want istio-system/%s", rev, ref, err, want)
		}
	}
	if ref, err := FindGateway(ctx, kube, "blue"); err == nil || !strings.Contains(err.Error(), "release istio-ingressgateway-blue") {
		t.Errorf("revision blue has no gateway: found %+v, err %v", ref, err)
	}
	// Two default gateways, neither in istio-ingress: which one is not a guess to make.
	kube = fake.NewClientset(svc("a", "gw", map[string]string{"istio": "ingressgateway"}), svc("b", "gw", map[string]string{"istio": "ingressgateway"}))
	if _, err := FindGateway(ctx, kube, ""); err == nil || !strings.Contains(err.Error(), "a/gw, b/gw") {
		t.Errorf("two candidates: err %v, want one naming a/gw and b/gw", err)
	}
}
