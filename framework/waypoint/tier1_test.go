package waypoint_test

// Tier 1: the waypoint istioctl writes, applied to a real API server with Gateway API v1.6.0's
// CRDs, and the readiness wait against the status istiod writes. No istiod runs here, so the
// test writes that status itself, as istiod does (the Gateway's Programmed condition, the
// Service's istio.io/WaypointBound), and the wait must refuse until both are there.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/wait"
	"meshconform/framework/waypoint"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func TestWaypointReady(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "waypoint", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient})
	if err := waypoint.Apply(ctx, env.Dynamic, waypoint.Gateway(ns, istionames.DefaultWaypointName, istionames.WaypointForService), env.RunID); err != nil {
		t.Fatal(err)
	}
	gws := env.Dynamic.Resource(waypoint.GatewayResource).Namespace(ns)
	gw, err := gws.Get(ctx, "waypoint", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	class, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName")
	ls, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	if class != "istio-waypoint" || len(ls) != 1 || fmt.Sprintf("%v %v %v", ls[0].(map[string]any)["name"], ls[0].(map[string]any)["port"], ls[0].(map[string]any)["protocol"]) != "mesh 15008 HBONE" ||
		gw.GetLabels()["istio.io/waypoint-for"] != "service" || !ownership.Owned(gw.GetLabels(), env.RunID) {
		t.Fatalf("stored waypoint: class %q, listeners %v, labels %v", class, ls, gw.GetLabels())
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "httpbin"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8000, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := env.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := wait.Config{Timeout: 1500 * time.Millisecond, Poll: 100 * time.Millisecond}
	ready := func() error {
		return waypoint.Ready(ctx, cfg, env.Kube, env.Dynamic, ns, "waypoint", "httpbin")
	}
	// Nothing written by istiod yet (the CRD defaults Programmed to Unknown), and the Service not bound.
	err = ready()
	for _, want := range []string{"Programmed=Unknown (Pending: Waiting for controller)", "Service " + ns + "/httpbin: no istio.io/WaypointBound condition, and the Service has no istio.io/use-waypoint label"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Ready before istiod: %v; want it to name %q", err, want)
		}
	}
	if err := waypoint.Bind(ctx, env.Kube, ns, "httpbin", "waypoint"); err != nil {
		t.Fatal(err)
	}
	// istiod's Gateway status (gatewaycommon/conversion.go's Programmed condition).
	now := metav1.Now().UTC().Format(time.RFC3339)
	setGateway := func(status string) {
		gw, err := gws.Get(ctx, "waypoint", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cond := func(typ, reason string) map[string]any {
			return map[string]any{"type": typ, "status": status, "reason": reason, "message": "set by the test", "lastTransitionTime": now, "observedGeneration": gw.GetGeneration()}
		}
		_ = unstructured.SetNestedSlice(gw.Object, []any{cond("Accepted", "Accepted"), cond("Programmed", "Programmed")}, "status", "conditions")
		if _, err := gws.UpdateStatus(ctx, gw, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setGateway("False")
	err = ready()
	for _, want := range []string{"Programmed=False (Programmed: set by the test)", "(istio.io/use-waypoint=waypoint): no istio.io/WaypointBound condition yet"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Ready with Programmed=False: %v; want it to name %q", err, want)
		}
	}
	setGateway("True")
	setService := func(status, reason, msg string) {
		s, err := env.Kube.CoreV1().Services(ns).Get(ctx, "httpbin", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Status.Conditions = []metav1.Condition{{Type: istionames.WaypointBoundCondition, Status: metav1.ConditionStatus(status), Reason: reason, Message: msg, LastTransitionTime: metav1.Now()}}
		if _, err := env.Kube.CoreV1().Services(ns).UpdateStatus(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setService("False", "WaypointNotFound", "waypoint not found")
	if err := ready(); err == nil || strings.Contains(err.Error(), "Gateway") || !strings.Contains(err.Error(), "istio.io/WaypointBound=False (WaypointNotFound: waypoint not found)") {
		t.Errorf("Ready with the Service refused: %v; want only the Service named, with istiod's reason", err)
	}
	// istiod's words when it bound the Service (pilot/pkg/model/service.go:1373-1393).
	setService("True", istionames.WaypointAcceptedCondition, "Successfully attached to waypoint "+ns+"/waypoint")
	if err := ready(); err != nil {
		t.Errorf("Ready once Programmed and bound: %v", err)
	}
}
