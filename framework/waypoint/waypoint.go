// Package waypoint builds ambient mode's waypoints (Gateway API Gateways of class
// istio-waypoint, as `istioctl waypoint apply` writes them), binds Services to them, and waits
// until istiod has programmed them: the Gateway's Programmed=True (what `istioctl waypoint
// apply --wait` waits for, istioctl/pkg/waypoint/waypoint.go:275-295 at release-1.31) and, on
// each Service that uses it, istiod's istio.io/WaypointBound=True (pilot/pkg/model/service.go:
// 1373-1393). Waiting goes through framework/wait.
package waypoint

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/wait"
)

// GatewayResource and GatewayClassResource are the Gateway API's v1 resources.
var (
	GatewayResource      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	GatewayClassResource = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
)

// Gateway builds the waypoint `istioctl waypoint apply -n ns --name name --for forTraffic`
// writes (istioctl/pkg/waypoint/waypoint.go:68-120, release-1.31): class istio-waypoint, one
// listener mesh on 15008 speaking HBONE, label istio.io/waypoint-for when forTraffic is given
// (service, workload, all, none; empty lets istiod default to service).
func Gateway(ns, name, forTraffic string) *unstructured.Unstructured {
	gw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"gatewayClassName": istionames.WaypointGatewayClass,
			"listeners": []any{map[string]any{
				"name": istionames.WaypointListener, "port": int64(istionames.HBONEPort), "protocol": istionames.HBONEProtocol,
			}},
		},
	}}
	if forTraffic != "" {
		gw.SetLabels(map[string]string{istionames.WaypointForLabel: forTraffic})
	}
	return gw
}

// Apply creates or updates gw (server-side apply), stamped with the run's ownership labels.
func Apply(ctx context.Context, dyn dynamic.Interface, gw *unstructured.Unstructured, runID string) error {
	gw = gw.DeepCopy()
	gw.SetLabels(ownership.Stamp(gw.GetLabels(), runID))
	_, err := dyn.Resource(GatewayResource).Namespace(gw.GetNamespace()).Apply(ctx, gw.GetName(), gw, metav1.ApplyOptions{FieldManager: "meshconform", Force: true})
	if err != nil {
		return fmt.Errorf("apply waypoint Gateway %s/%s: %w", gw.GetNamespace(), gw.GetName(), err)
	}
	return nil
}

// UseLabel is what binds a namespace, Service or pod to waypoint name.
func UseLabel(name string) map[string]string {
	return map[string]string{istionames.UseWaypointLabel: name}
}

// Bind labels Service ns/svc to use waypoint name (a merge patch of its labels).
func Bind(ctx context.Context, kube kubernetes.Interface, ns, svc, name string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, istionames.UseWaypointLabel, name)
	if _, err := kube.CoreV1().Services(ns).Patch(ctx, svc, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label Service %s/%s %s=%s: %w", ns, svc, istionames.UseWaypointLabel, name, err)
	}
	return nil
}

// Condition is one status condition as the Gateway API and istiod write it.
type Condition struct {
	Type, Status, Reason, Message string
}

func (c Condition) String() string {
	s := c.Type + "=" + c.Status
	if c.Reason != "" {
		s += " (" + c.Reason
		if c.Message != "" {
			s += ": " + c.Message
		}
		s += ")"
	}
	return s
}

// Conditions reads obj's status.conditions.
func Conditions(obj *unstructured.Unstructured) []Condition {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []Condition
	for _, item := range list {
		m, _ := item.(map[string]any)
		str := func(k string) string { s, _ := m[k].(string); return s }
		out = append(out, Condition{Type: str("type"), Status: str("status"), Reason: str("reason"), Message: str("message")})
	}
	return out
}

// Find returns the condition of type t, and whether there is one.
func Find(conds []Condition, t string) (Condition, bool) {
	for _, c := range conds {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// NotProgrammed is why Gateway ns/name is not programmed yet: "" once its status has
// Programmed=True.
func NotProgrammed(ctx context.Context, dyn dynamic.Interface, ns, name string) string {
	gw, err := dyn.Resource(GatewayResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("Gateway %s/%s: %v", ns, name, err)
	}
	conds := Conditions(gw)
	if c, ok := Find(conds, "Programmed"); ok && c.Status == "True" {
		return ""
	} else if ok {
		return fmt.Sprintf("Gateway %s/%s: %s", ns, name, c)
	}
	return fmt.Sprintf("Gateway %s/%s: no Programmed condition yet (conditions %v)", ns, name, conds)
}

// ServiceConditions reads the conditions istiod writes on a Service.
func ServiceConditions(svc *corev1.Service) []Condition {
	var out []Condition
	for _, c := range svc.Status.Conditions {
		out = append(out, Condition{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message})
	}
	return out
}

// NotBound is why Service ns/svc is not bound to a waypoint yet: "" once istiod wrote
// istio.io/WaypointBound=True on it.
func NotBound(ctx context.Context, kube kubernetes.Interface, ns, svc string) string {
	s, err := kube.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{})
	if err != nil {
		return fmt.Sprintf("Service %s/%s: %v", ns, svc, err)
	}
	conds := ServiceConditions(s)
	if c, ok := Find(conds, istionames.WaypointBoundCondition); ok && c.Status == "True" {
		return ""
	} else if ok {
		return fmt.Sprintf("Service %s/%s: %s", ns, svc, c)
	}
	use := s.Labels[istionames.UseWaypointLabel]
	if use == "" {
		return fmt.Sprintf("Service %s/%s: no %s condition, and the Service has no %s label", ns, svc, istionames.WaypointBoundCondition, istionames.UseWaypointLabel)
	}
	return fmt.Sprintf("Service %s/%s (%s=%s): no %s condition yet", ns, svc, istionames.UseWaypointLabel, use, istionames.WaypointBoundCondition)
}

// Ready waits (framework/wait, cfg's timeout and poll, one met observation: the conditions are
// istiod's, not a probe) until waypoint ns/name is Programmed and every one of services is
// bound to a waypoint. The error names what was still missing.
func Ready(ctx context.Context, cfg wait.Config, kube kubernetes.Interface, dyn dynamic.Interface, ns, name string, services ...string) error {
	cfg.Consecutive = 1
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.ObserveTimeout <= 0 {
		// The deadline never cuts a round of GETs short: the error then names what the
		// cluster showed, not "context deadline exceeded" (seen in tier 1 on a loaded machine).
		cfg.ObserveTimeout = 10 * time.Second
	}
	res, err := wait.Until(ctx, cfg, func(ctx context.Context) ([]string, error) {
		var waiting []string
		if why := NotProgrammed(ctx, dyn, ns, name); why != "" {
			waiting = append(waiting, why)
		}
		for _, svc := range services {
			if why := NotBound(ctx, kube, ns, svc); why != "" {
				waiting = append(waiting, why)
			}
		}
		return waiting, nil
	}, func(waiting []string) bool { return len(waiting) == 0 })
	if err == nil {
		return nil
	}
	last := res.Last()
	return fmt.Errorf("waypoint %s/%s not ready within %s: %s", ns, name, cfg.Timeout, strings.Join(last.Value, "; "))
}

// Delete removes waypoint ns/name (absent is fine).
func Delete(ctx context.Context, dyn dynamic.Interface, ns, name string) error {
	err := dyn.Resource(GatewayResource).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
