package gatewayapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"meshconform/framework/istionames"
	"meshconform/framework/wait"
	"meshconform/framework/waypoint"
)

// HTTPRouteResource is the Gateway API's v1 HTTPRoute resource (Gateways: waypoint.GatewayResource).
var HTTPRouteResource = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "httproutes"}

// IngressState is one look at a Gateway-API ingress: whether istiod has programmed it, and the
// conditions seen, for the error of a wait that ends without it.
type IngressState struct {
	Ready bool
	Saw   []string
}

func (s IngressState) String() string { return strings.Join(s.Saw, "; ") }

// ObserveIngress reads Gateway ns/gw and routes (HTTPRoutes in ns). Ready: the Gateway has
// Programmed=True (istiod assigned it its Service: gatewaycommon/conversion.go), each of its
// listeners ResolvedRefs=True (an https listener's certificateRefs found), and each route a
// parent status of istiod's controller (istio.io/gateway-controller) for gw with Accepted=True
// and ResolvedRefs=True (gateway/conditions.go).
func ObserveIngress(ctx context.Context, dyn dynamic.Interface, ns, gw string, routes []string) (IngressState, error) {
	var st IngressState
	ready := true
	g, err := dyn.Resource(waypoint.GatewayResource).Namespace(ns).Get(ctx, gw, metav1.GetOptions{})
	if err != nil {
		return IngressState{Saw: []string{fmt.Sprintf("Gateway %s/%s: %v", ns, gw, err)}}, err
	}
	conds := waypoint.Conditions(g)
	var cs []string
	for _, c := range conds {
		cs = append(cs, c.String())
	}
	if p, ok := waypoint.Find(conds, "Programmed"); !ok || p.Status != "True" {
		ready = false
	}
	if len(cs) == 0 {
		cs = []string{"no conditions"}
	}
	st.Saw = append(st.Saw, fmt.Sprintf("Gateway %s/%s: %s", ns, gw, strings.Join(cs, ", ")))
	listeners, _, _ := unstructured.NestedSlice(g.Object, "spec", "listeners")
	statuses, _, _ := unstructured.NestedSlice(g.Object, "status", "listeners")
	for _, l := range listeners {
		name, _ := l.(map[string]any)["name"].(string)
		var rr waypoint.Condition
		found := false
		for _, s := range statuses {
			m, _ := s.(map[string]any)
			if n, _ := m["name"].(string); n == name {
				rr, found = waypoint.Find(conditionsOf(m), "ResolvedRefs")
			}
		}
		switch {
		case !found:
			st.Saw = append(st.Saw, "listener "+name+": no ResolvedRefs condition")
			ready = false
		case rr.Status != "True":
			st.Saw = append(st.Saw, "listener "+name+": "+rr.String())
			ready = false
		}
	}
	for _, name := range routes {
		r, err := dyn.Resource(HTTPRouteResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			st.Saw = append(st.Saw, fmt.Sprintf("HTTPRoute %s/%s: %v", ns, name, err))
			return st, err
		}
		parents, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
		good := false
		var seen []string
		for _, p := range parents {
			m, _ := p.(map[string]any)
			ctrl, _ := m["controllerName"].(string)
			ref, _ := m["parentRef"].(map[string]any)
			if n, _ := ref["name"].(string); n != gw || ctrl != istionames.GatewayController {
				seen = append(seen, fmt.Sprintf("parent %v of %s", ref["name"], ctrl))
				continue
			}
			c := conditionsOf(m)
			a, fa := waypoint.Find(c, "Accepted")
			rr, fr := waypoint.Find(c, "ResolvedRefs")
			seen = append(seen, fmt.Sprintf("parent %s: %s, %s", gw, a, rr))
			good = good || (fa && a.Status == "True" && fr && rr.Status == "True")
		}
		if len(parents) == 0 {
			seen = append(seen, "no parent status")
		}
		ready = ready && good
		st.Saw = append(st.Saw, fmt.Sprintf("HTTPRoute %s/%s: %s", ns, name, strings.Join(seen, ", ")))
	}
	st.Ready = ready
	return st, nil
}

func conditionsOf(m map[string]any) []waypoint.Condition {
	return waypoint.Conditions(&unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": m["conditions"]}}})
}

// AwaitIngress waits (framework/wait: cfg's timeout and poll, one met observation, for the
// conditions are istiod's word, not a probe) until ObserveIngress says Ready. On timeout the
// error carries the conditions of the last look.
func AwaitIngress(ctx context.Context, cfg wait.Config, dyn dynamic.Interface, ns, gw string, routes []string) error {
	cfg.Consecutive = 1
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.ObserveTimeout <= 0 {
		cfg.ObserveTimeout = 10 * time.Second
	}
	if cfg.History < 2 {
		cfg.History = 2
	}
	res, err := wait.Until(ctx, cfg, func(ctx context.Context) (IngressState, error) {
		return ObserveIngress(ctx, dyn, ns, gw, routes)
	}, func(s IngressState) bool { return s.Ready })
	if err == nil {
		return nil
	}
	last := res.Last()
	saw := last.Value.String()
	if last.Err != nil && saw == "" {
		saw = last.Err.Error()
	}
	return fmt.Errorf("Gateway-API ingress %s/%s not programmed within %s (want Gateway Programmed=True, listeners ResolvedRefs=True, HTTPRoutes %v Accepted=True and ResolvedRefs=True by %s); last seen: %s",
		ns, gw, cfg.Timeout, routes, istionames.GatewayController, saw)
}
