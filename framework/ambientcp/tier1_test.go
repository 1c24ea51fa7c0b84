package ambientcp_test

// Tier 1: the fixtures are accepted by a real API server (Istio's and Gateway API v1.6.0's
// CRDs), and with no istiod to act on them every check fails (the ten: the waypoint's and Gateway-API ingress's), each saying what it saw: none can
// pass on objects istiod never touched. The passing half is the live tier's (live.sh, ambient).

import (
	"strings"
	"testing"
	"time"

	"meshconform/framework/ambientcp"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func TestNothingPassesWithoutIstiod(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	c := ambientcp.Clients{Kube: env.Kube, Dynamic: env.Dynamic, Istio: env.Istio}
	ns := env.Namespace(t, "ambientcp", nil)
	if err := ambientcp.Setup(ctx, c, ns, env.RunID, false, ambientcp.IngressNodePorts); err != nil {
		t.Fatal(err)
	}
	vs := ambientcp.Judge(ctx, c, ns, ambientcp.Expect{ProxyImage: "example.test/proxyv2:1.31.0-distroless", NodePorts: ambientcp.IngressNodePorts}, 2*time.Second)
	if len(vs) != 10 {
		t.Fatalf("%d verdicts, want 10: %+v", len(vs), vs)
	}
	want := map[string]string{
		"gatewayclasses":              "not found",
		"waypoint-deployed":           "not found",
		"waypoint-gateway-status":     "Programmed=Unknown (Pending: Waiting for controller)",
		"service-waypoint-bound":      "no istio.io/WaypointBound condition",
		"policy-ztunnel-l4":           "no status conditions",
		"policy-ztunnel-http-dropped": "no status conditions",
		"policy-waypoint":             "no status conditions",
		"ingress-deployed":            "not found",
		"ingress-gateway-status":      "Accepted=Unknown",
		"ingress-routes":              "no parent status",
	}
	for _, v := range vs {
		if v.Passed {
			t.Errorf("%s passed with no istiod: saw %s", v.Check, v.Saw)
		}
		if w, ok := want[v.Check]; !ok || !strings.Contains(v.Saw, w) {
			t.Errorf("%s saw %q; want it to say %q", v.Check, v.Saw, w)
		}
		if v.Source == "" || v.Expected == "" {
			t.Errorf("%s has no expectation or citation", v.Check)
		}
	}
}
