package behaviors

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"meshconform/framework/catalog"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/framework/waypoint"
	"meshconform/internal/apitest"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// TestWaypointWritesAllowedAndAccepted: what an ambient run writes for a spec with a waypoint in
// its path (e2e.Scenario.PutWaypoint, then the spec's policies as e2e.WaypointObjects makes
// them) is allowed by the suite's ClusterRole and accepted by Istio's and Gateway API's CRDs:
// the waypoint Gateway applied and read, each server Service labelled to use it, every
// AuthorizationPolicy and RequestAuthentication with targetRefs. The Services stand in for the
// spec's workloads (made by the admin: workloads are dry-run elsewhere); istiod's status is
// not written or judged here (framework/waypoint's tier 1 judges the wait).
func TestWaypointWritesAllowedAndAccepted(t *testing.T) {
	t.Parallel() // its own namespaces and ServiceAccount: the waits for their deletion overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 5*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	as := bindSuiteRole(t, env, ctx, "suite-waypoint", nil)
	e, _ := replayWorld(t, env, ctx, as)
	ns := e.NS(cases.Server)
	var ran []string
	for _, b := range e2e.Registered() {
		c := catalog.MustLookup(b.ID)
		if !c.Ambient.NeedsWaypoint || c.NotJudgedInAmbient() != "" {
			continue
		}
		ran = append(ran, b.ID)
		t.Run(b.Text(), func(t *testing.T) {
			services, err := b.WaypointServices()
			if err != nil {
				t.Fatal(err)
			}
			gw := waypoint.Gateway(ns, istionames.DefaultWaypointName, istionames.WaypointForService)
			if err := waypoint.Apply(ctx, as.Dynamic, gw, env.RunID); err != nil {
				t.Fatalf("as the suite: %v", err)
			}
			if _, err := as.Dynamic.Resource(waypoint.GatewayResource).Namespace(ns).Get(ctx, gw.GetName(), metav1.GetOptions{}); err != nil {
				t.Errorf("as the suite, reading the waypoint: %v", err)
			}
			for svc := range services {
				s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
					Spec: corev1.ServiceSpec{Selector: services[svc], Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
				if _, err := env.Kube.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := waypoint.Bind(ctx, as.Kube, ns, svc, istionames.DefaultWaypointName); err != nil {
					t.Errorf("as the suite: %v", err)
				}
			}
			var applied []policy.Object
			for _, st := range b.Steps {
				if st.Apply != nil {
					applied = append(applied, st.Apply(e)...)
				}
			}
			objs, err := e2e.WaypointObjects(e, services, applied)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if err := as.Applier.Apply(ctx, o); err != nil {
					t.Errorf("as the suite: %v", err)
				}
			}
			// The admin clears the namespace for the next spec.
			for _, o := range objs {
				_ = adminActor(env).Applier.Delete(ctx, o)
			}
			for svc := range services {
				_ = env.Kube.CoreV1().Services(ns).Delete(ctx, svc, metav1.DeleteOptions{})
			}
			_ = waypoint.Delete(ctx, env.Dynamic, ns, gw.GetName())
		})
	}
	if want := []string{"AUTHZ-002", "AUTHZ-003", "AUTHZ-006", "AUTHZ-007", "AUTHZ-011", "JWT-001", "JWT-002"}; !slices.Equal(slices.Compact(ran), want) {
		t.Errorf("replayed %v, want %v", ran, want)
	}
}
