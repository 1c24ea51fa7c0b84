package behaviors

import (
	"strings"
	"testing"

	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// EGRESS-001 expects 502, which only the BlackHole route of an HTTP listener answers: some
// Service in the client's own namespace (which its Sidecar's "./*" keeps in view) must declare
// the called port as HTTP, the way Istio reads a port (appProtocol, else the name's prefix:
// pkg/config/kube/conversion.go ConvertProtocol). Without one the call meets the TCP
// catch-all and the probe sees the equivalent, not the documented shape.
func TestEgressBlackHoleHasAnHTTPListener(t *testing.T) {
	var b e2e.Behavior
	for _, r := range e2e.Registered() {
		if r.ID == "EGRESS-001" {
			b = r
		}
	}
	var client []workload.Sample
	for _, n := range b.Namespaces {
		if n.Role == cases.Client {
			client = n.Samples
		}
	}
	probes := 0
	for _, s := range b.Steps {
		for _, p := range s.Probes {
			if p.Expect.Name != catalog.BlackHole.Name {
				continue
			}
			probes++
			port := servicePort(t, p.To)
			if l := httpListener(t, client, port); l == "" {
				t.Errorf("%s: no Service in the client namespace (%v) declares port %d as HTTP: the client's sidecar has no HTTP listener there, so the call reaches the TCP catch-all, not the 502 route", p.Name, client, port)
			} else {
				t.Logf("%s: port %d is HTTP in the client's view through %s", p.Name, port, l)
			}
		}
	}
	if probes == 0 {
		t.Fatal("EGRESS-001 has no BlackHole probe")
	}
}

// servicePort is the Service port a probe to target calls.
func servicePort(t *testing.T, target cases.Target) int32 {
	t.Helper()
	m, err := workload.Load(target.Sample)
	if err != nil {
		t.Fatal(err)
	}
	if target.Port != 0 {
		return target.Port
	}
	return m.Services[0].Spec.Ports[0].Port
}

// httpListener names the sample's Service port that makes Istio build an HTTP listener on
// port, "" when none does.
func httpListener(t *testing.T, samples []workload.Sample, port int32) string {
	t.Helper()
	for _, s := range samples {
		m, err := workload.Load(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range m.Services {
			for _, sp := range svc.Spec.Ports {
				name := sp.Name
				if sp.AppProtocol != nil {
					name = *sp.AppProtocol
				}
				proto, _, _ := strings.Cut(name, "-")
				if sp.Port == port && strings.EqualFold(proto, "http") {
					return svc.Name + " port " + sp.Name
				}
			}
		}
	}
	return ""
}
