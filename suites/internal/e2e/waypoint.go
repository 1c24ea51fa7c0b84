package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	"k8s.io/client-go/dynamic"

	"meshconform/framework/catalog"
	"meshconform/framework/dataplane"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/framework/wait"
	"meshconform/framework/waypoint"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
)

// waypointName is the server namespace's waypoint, named as istioctl names a namespace's.
const waypointName = istionames.DefaultWaypointName

// putsWaypoint: the spec runs with a waypoint in its path, in the server's namespace: an
// ambient run, and a behaviour whose ambient outcome needs one (the catalog's `needs waypoint`).
func (b Behavior) putsWaypoint(mode string) bool {
	return mode == dataplane.ModeAmbient && catalog.MustLookup(b.ID).Ambient.NeedsWaypoint
}

// WaypointServices is every Service the spec deploys in its server namespace, with the labels
// of the pods it selects: the Services bound to the waypoint, and what its policies' selectors
// are matched against when they move to targetRefs (policy.ForWaypoint).
func (b Behavior) WaypointServices() (map[string]map[string]string, error) {
	var samples []workload.Sample
	for _, n := range b.Namespaces {
		if n.Role == cases.Server {
			samples = append(samples, n.Samples...)
		}
	}
	return workload.ServicePods(samples...)
}

// WaypointObjects is objs as a spec with a waypoint in its path applies them: its
// AuthorizationPolicies and RequestAuthentications of the server namespace target the
// waypoint's Services, or the waypoint itself, instead of selecting workloads.
func WaypointObjects(e cases.Env, services map[string]map[string]string, objs []policy.Object) ([]policy.Object, error) {
	out := make([]policy.Object, 0, len(objs))
	for _, o := range objs {
		w, err := policy.ForWaypoint(o, e.NS(cases.Server), waypointName, services)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// PutWaypoint puts a waypoint in the path of the server's Services: the Gateway
// `istioctl waypoint apply` writes, each Service labelled to use it, then the wait until istiod
// says the Gateway is Programmed and every Service bound, and until the waypoint's pods are
// ready. From then on the scenario applies policies as WaypointObjects makes them.
func (s *Scenario) PutWaypoint(ctx context.Context, services map[string]map[string]string) {
	GinkgoHelper()
	ns := s.Env.NS(cases.Server)
	names := slices.Sorted(maps.Keys(services))
	if len(names) == 0 {
		Fail(fmt.Sprintf("the spec needs a waypoint, and deploys no Service in its server namespace %s", ns))
	}
	By(fmt.Sprintf("putting waypoint %s/%s in the path of %v", ns, waypointName, names))
	dyn, err := dynamic.NewForConfig(s.Run.Config)
	must(err, "a dynamic client")
	must(waypoint.Apply(ctx, dyn, waypoint.Gateway(ns, waypointName, istionames.WaypointForService), s.Run.State.RunID), "applying waypoint %s/%s", ns, waypointName)
	for _, svc := range names {
		must(waypoint.Bind(ctx, s.Run.Kube, ns, svc, waypointName), "binding Service %s/%s to the waypoint", ns, svc)
	}
	must(waypoint.Ready(ctx, wait.Config{Timeout: readyTimeout}, s.Run.Kube, dyn, ns, waypointName, names...), "waypoint %s/%s", ns, waypointName)
	must(workload.WaitReady(ctx, s.Run.Kube, ns, istionames.GatewayNameLabel+"="+waypointName, workload.Consecutive(s.Run.Expect.Consecutive),
		workload.Timeout(readyTimeout), workload.Proxy(workload.ProxyIgnored)), "the pods of waypoint %s/%s", ns, waypointName)
	s.waypointServices = services
}
