package cases

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestUnmet: each requirement a run does not meet is named, first unmet first; a run that
// meets them all gets "".
func TestUnmet(t *testing.T) {
	all := RunFacts{Mode: "sidecar", DisruptiveAllowed: true}
	for _, tc := range []struct {
		name string
		r    Requires
		f    RunFacts
		want string // substring; "" = applicable
	}{
		{"nothing required", Requires{}, RunFacts{Mode: "sidecar", NoDataPlane: true, NoGateway: "none found"}, ""},
		{"everything met", Requires{DataPlane: true, Disruptive: true, IngressGateway: true, Mode: "sidecar"}, all, ""},
		{"no data plane", Requires{DataPlane: true}, RunFacts{Mode: "sidecar", NoDataPlane: true}, "DATAPLANE=0"},
		{"no agent", Requires{Agent: true}, RunFacts{Mode: "sidecar", NoDataPlane: true, NoAgent: true}, "needs a running pilot-agent (Istio's grpc-agent template, no Envoy); this run has no data plane (DATAPLANE=0) and no ISTIO_AGENT_IMAGE"},
		{"agent image without a data plane", Requires{Agent: true}, RunFacts{Mode: "sidecar", NoDataPlane: true}, ""},
		{"disruptive on a cluster it did not create", Requires{Disruptive: true}, RunFacts{Mode: "sidecar"}, "ALLOW_DISRUPTIVE=1"},
		{"no gateway", Requires{IngressGateway: true}, RunFacts{Mode: "sidecar", NoGateway: "no Service of release istio-ingressgateway"}, "needs an ingress gateway: no Service of release istio-ingressgateway"},
		{"other mode", Requires{Mode: "sidecar", DataPlane: true}, RunFacts{Mode: "ambient", NoDataPlane: true}, "written for the sidecar data plane; this run's is ambient"},
		{"waypoint in sidecar mode", Requires{Waypoint: true}, RunFacts{Mode: "sidecar", NoWaypoint: "no Gateway API"}, ""},
		{"waypoint in ambient mode without one", Requires{Waypoint: true}, RunFacts{Mode: "ambient", NoWaypoint: "no Gateway API"},
			"needs a waypoint (L7 in ambient mode: only a waypoint enforces HTTP attributes): no Gateway API"},
		{"waypoint in ambient mode with one", Requires{Waypoint: true}, RunFacts{Mode: "ambient"}, ""},
	} {
		got := tc.r.Unmet(tc.f)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: Unmet = %q, want %q", tc.name, got, tc.want)
		}
	}
}

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
