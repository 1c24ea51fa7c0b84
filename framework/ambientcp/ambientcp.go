// Package ambientcp judges what istiod does in ambient mode on its own, with no ztunnel, CNI
// agent or Envoy running: the GatewayClasses it creates, what it deploys for a waypoint
// Gateway, the status it writes on the Gateway, on a Service bound to the waypoint and on
// AuthorizationPolicies (ztunnel's and the waypoint's). Every expected value is Istio's, read
// at the pinned release-1.31 commit (istio.io/istio v0.0.0-20260827124520-eed52ebb66ad) and
// cited beside its check.
//
// Setup creates the fixtures through the product's builders (framework/waypoint,
// framework/policy); Judge observes them through framework/wait until every check holds or
// the timeout ends, and returns each check's verdict with what it saw.
package ambientcp

import (
	"context"
	"fmt"
	appsv1 "k8s.io/api/apps/v1"
	"strings"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/policy"
	"meshconform/framework/wait"
	"meshconform/framework/waypoint"
)

// Clients are what Setup and Judge talk to.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	Istio   istioclient.Interface
}

// The fixtures' names in the namespace Setup makes.
const (
	Service = "httpbin"
	// L4Policy is a selector policy with only L4 fields: ztunnel's.
	L4Policy = "l4-principals"
	// L7AtZtunnel is a selector policy with an HTTP field: ztunnel takes it with the HTTP part
	// dropped, and says so.
	L7AtZtunnel = "l7-at-ztunnel"
	// L7AtWaypoint is the same rule attached to the Service by targetRefs: the waypoint's.
	L7AtWaypoint = "l7-at-waypoint"
)

// Setup creates, in a new namespace ns enrolled in ambient mode, a Service (no pods: istiod
// needs none to bind it), the waypoint istioctl writes, the Service bound to it (unless
// unbound, the broken case), the three policies, and Gateway-API ingress (a Gateway of class
// istio with pinned nodePorts, its TLS Secret, a 301 redirect and a route to the Service); each
// object carries the run's ownership labels.
func Setup(ctx context.Context, c Clients, ns, runID string, unbound bool, nodePorts [2]int32) error {
	labels := ownership.Stamp(map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient}, runID)
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: Service, Namespace: ns, Labels: ownership.Labels(runID)},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": Service},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8000, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Service %s/%s: %w", ns, Service, err)
	}
	if err := waypoint.Apply(ctx, c.Dynamic, waypoint.Gateway(ns, istionames.DefaultWaypointName, istionames.WaypointForService), runID); err != nil {
		return err
	}
	if !unbound {
		if err := waypoint.Bind(ctx, c.Kube, ns, Service, istionames.DefaultWaypointName); err != nil {
			return err
		}
	}
	if err := setupIngress(ctx, c, ns, runID, nodePorts); err != nil {
		return err
	}
	principal := "cluster.local/ns/" + ns + "/sa/client"
	a := policy.NewApplier(c.Istio, runID)
	for _, p := range []*securityv1.AuthorizationPolicy{
		policy.AuthorizationPolicy(ns, L4Policy, policy.Selector(map[string]string{"app": Service}), policy.Action(policy.Allow),
			policy.Rule(policy.FromPrincipals(principal))),
		policy.AuthorizationPolicy(ns, L7AtZtunnel, policy.Selector(map[string]string{"app": Service}), policy.Action(policy.Allow),
			policy.Rule(policy.FromPrincipals(principal), policy.ToMethods("GET"))),
		policy.AuthorizationPolicy(ns, L7AtWaypoint, policy.TargetRefs(policy.ServiceRef(Service)), policy.Action(policy.Allow),
			policy.Rule(policy.FromPrincipals(principal), policy.ToMethods("GET"))),
	} {
		if err := a.Apply(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// Verdict is one check's result.
type Verdict struct {
	Check    string `json:"check"`
	Passed   bool   `json:"passed"`
	Expected string `json:"expected"`
	Saw      string `json:"saw"`
	Source   string `json:"source"`
}

// check is one judged fact: what must hold, where Istio says so, and how to observe it (""
// when it holds, else what was seen).
type check struct {
	name, expected, source string
	observe                func(ctx context.Context) (ok bool, saw string)
}

// Expect is what Judge expects that depends on the install.
type Expect struct {
	// ProxyImage is the image istiod gives the waypoint's istio-proxy container:
	// <hub>/proxyv2:<tag>-distroless under the ambient profile (global.variant distroless; the
	// injection's ProxyImage, pkg/kube/inject/inject.go, and files/waypoint.yaml:103-106).
	ProxyImage string
	// NodePorts are the ingress Service's pinned nodePorts (80, 443), as given to Setup.
	NodePorts [2]int32
}

func checks(c Clients, ns string, e Expect) []check {
	wp := istionames.DefaultWaypointName
	return []check{
		{
			name: "gatewayclasses",
			expected: fmt.Sprintf("GatewayClass %s (controllerName %s) and %s (controllerName %s), each Accepted=True 'Handled by Istio controller'",
				istionames.DefaultGatewayClass, istionames.GatewayController, istionames.WaypointGatewayClass, istionames.MeshController),
			source: "pilot/pkg/config/kube/gatewaycommon/classinfo.go:65-85 (istio-waypoint only with ambient waypoints, pilot/pkg/features/ambient.go:30-32), gatewayclass.go:110-122",
			observe: func(ctx context.Context) (bool, string) {
				var saw []string
				ok := true
				for class, ctrl := range map[string]string{istionames.DefaultGatewayClass: istionames.GatewayController, istionames.WaypointGatewayClass: istionames.MeshController} {
					gc, err := c.Dynamic.Resource(waypoint.GatewayClassResource).Get(ctx, class, metav1.GetOptions{})
					if err != nil {
						ok = false
						saw = append(saw, fmt.Sprintf("GatewayClass %s: %v", class, err))
						continue
					}
					got, _, _ := unstructured.NestedString(gc.Object, "spec", "controllerName")
					acc, found := waypoint.Find(waypoint.Conditions(gc), "Accepted")
					saw = append(saw, fmt.Sprintf("GatewayClass %s: controllerName %s, %s", class, got, acc))
					if got != ctrl || !found || acc.Status != "True" {
						ok = false
					}
				}
				return ok, strings.Join(sorted(saw), "; ")
			},
		},
		{
			name: "waypoint-deployed",
			expected: fmt.Sprintf("ServiceAccount, Deployment and Service %s/%s labelled %s=%s and %s=%s; container istio-proxy running %s; Service port %d",
				ns, wp, istionames.GatewayNameLabel, wp, istionames.ManagedGatewayLabel, istionames.MeshControllerLabel, e.ProxyImage, istionames.HBONEPort),
			source: "manifests/charts/istio-control/istio-discovery/files/waypoint.yaml:1-106 (labels :35-37, container :92, image :103-106); classinfo.go (waypoint: Templates waypoint, DisableNameSuffix)",
			observe: func(ctx context.Context) (bool, string) {
				var saw []string
				ok := true
				labelsOK := func(kind string, l map[string]string) {
					if l[istionames.GatewayNameLabel] != wp || l[istionames.ManagedGatewayLabel] != istionames.MeshControllerLabel {
						ok = false
						saw = append(saw, fmt.Sprintf("%s labels %v", kind, l))
					}
				}
				if sa, err := c.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, wp, metav1.GetOptions{}); err != nil {
					ok = false
					saw = append(saw, "ServiceAccount: "+err.Error())
				} else {
					saw = append(saw, "ServiceAccount "+sa.Name)
				}
				d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, wp, metav1.GetOptions{})
				if err != nil {
					ok = false
					saw = append(saw, "Deployment: "+err.Error())
				} else {
					labelsOK("Deployment", d.Labels)
					containers, one := proxyContainer(d, e.ProxyImage)
					saw = append(saw, containers)
					ok = ok && one
				}
				s, err := c.Kube.CoreV1().Services(ns).Get(ctx, wp, metav1.GetOptions{})
				if err != nil {
					ok = false
					saw = append(saw, "Service: "+err.Error())
				} else {
					labelsOK("Service", s.Labels)
					var ports []string
					has := false
					for _, p := range s.Spec.Ports {
						ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
						has = has || p.Port == istionames.HBONEPort
					}
					saw = append(saw, "Service ports "+strings.Join(ports, ","))
					ok = ok && has
				}
				return ok, strings.Join(saw, "; ")
			},
		},
		{
			name: "waypoint-gateway-status",
			expected: fmt.Sprintf("Gateway %s/%s Accepted=True 'Resource accepted' and Programmed=True 'Resource programmed, assigned to service(s) %s.%s.svc.cluster.local:%d' (with no proxy running: istiod counts the Service's addresses, not ready pods)",
				ns, wp, wp, ns, istionames.HBONEPort),
			source: "pilot/pkg/config/kube/gateway/conversion.go:1847 (Accepted), pilot/pkg/config/kube/gatewaycommon/conversion.go:121-160 (Programmed from the Service's addresses; :154 notes it does not check the Deployment)",
			observe: func(ctx context.Context) (bool, string) {
				gw, err := c.Dynamic.Resource(waypoint.GatewayResource).Namespace(ns).Get(ctx, wp, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				conds := waypoint.Conditions(gw)
				acc, okA := waypoint.Find(conds, "Accepted")
				prog, okP := waypoint.Find(conds, "Programmed")
				var saw []string
				for _, c := range conds {
					saw = append(saw, c.String())
				}
				want := fmt.Sprintf("Resource programmed, assigned to service(s) %s.%s.svc.cluster.local:%d", wp, ns, istionames.HBONEPort)
				return okA && acc.Status == "True" && acc.Message == "Resource accepted" && okP && prog.Status == "True" && prog.Message == want,
					strings.Join(saw, "; ")
			},
		},
		{
			name: "service-waypoint-bound",
			expected: fmt.Sprintf("Service %s/%s: %s=True, reason %s, 'Successfully attached to waypoint %s/%s'",
				ns, Service, istionames.WaypointBoundCondition, istionames.WaypointAcceptedCondition, ns, wp),
			source: "pilot/pkg/model/service.go:1319-1321 (condition types), 1354-1393 (ServiceInfo.GetConditions: WaypointBound)",
			observe: func(ctx context.Context) (bool, string) {
				s, err := c.Kube.CoreV1().Services(ns).Get(ctx, Service, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				cond, found := waypoint.Find(waypoint.ServiceConditions(s), istionames.WaypointBoundCondition)
				if !found {
					return false, fmt.Sprintf("no %s condition (labels %v)", istionames.WaypointBoundCondition, s.Labels)
				}
				return cond.Status == "True" && cond.Reason == istionames.WaypointAcceptedCondition &&
					strings.HasPrefix(cond.Message, "Successfully attached to waypoint "+ns+"/"+wp), cond.String()
			},
		},
		policyCheck(c, ns, "policy-ztunnel-l4", L4Policy, istionames.ZtunnelAcceptedCondition, "True", "Accepted", "attached to ztunnel",
			"pilot/pkg/serviceregistry/ambient/policies.go:169-186 (Bound: converted for ztunnel), pilot/pkg/model/service.go:1712-1731 (WorkloadAuthorization.GetConditions)"),
		policyCheck(c, ns, "policy-ztunnel-http-dropped", L7AtZtunnel, istionames.ZtunnelAcceptedCondition, "True", "UnsupportedValue",
			"ztunnel does not support HTTP attributes (found: methods)",
			"pilot/pkg/serviceregistry/ambient/authorization.go:466-476, 482 (httpRuleFmt)"),
		policyCheck(c, ns, "policy-waypoint", L7AtWaypoint, istionames.WaypointAcceptedCondition, "True", "Accepted", "bound to "+ns+"/"+wp,
			"pilot/pkg/serviceregistry/ambient/policies.go:106-121 (a Service target: bound to its waypoint; else AncestorNotBound), pilot/pkg/model/service.go:1611-1616 (WaypointPolicyStatus.GetConditions)"),
	}
}

// policyCheck: AuthorizationPolicy ns/name carries condition typ with status, reason and a
// message starting with msg.
func policyCheck(c Clients, ns, check, name, typ, status, reason, msg, source string) check {
	return struct {
		name, expected, source string
		observe                func(ctx context.Context) (ok bool, saw string)
	}{
		name:     check,
		expected: fmt.Sprintf("AuthorizationPolicy %s/%s: %s=%s, reason %s, %q", ns, name, typ, status, reason, msg),
		source:   source,
		observe: func(ctx context.Context) (bool, string) {
			ap, err := c.Istio.SecurityV1().AuthorizationPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			var saw []string
			ok := false
			for _, cd := range ap.Status.GetConditions() {
				cond := waypoint.Condition{Type: cd.GetType(), Status: cd.GetStatus(), Reason: cd.GetReason(), Message: cd.GetMessage()}
				saw = append(saw, cond.String())
				if cond.Type == typ && cond.Status == status && cond.Reason == reason && strings.HasPrefix(cond.Message, msg) {
					ok = true
				}
			}
			if len(saw) == 0 {
				return false, "no status conditions"
			}
			return ok, strings.Join(saw, "; ")
		},
	}
}

// Judge observes every check in ns (framework/wait: one round of all checks per poll) until all
// hold or timeout ends, and returns each check's verdict from the last round.
func Judge(ctx context.Context, c Clients, ns string, e Expect, timeout time.Duration) []Verdict {
	cs := append(checks(c, ns, e), ingressChecks(c, ns, e)...)
	res, _ := wait.Until(ctx, wait.Config{Timeout: timeout, Poll: 500 * time.Millisecond, Consecutive: 1, ObserveTimeout: 10 * time.Second},
		func(ctx context.Context) ([]Verdict, error) {
			out := make([]Verdict, 0, len(cs))
			for _, ch := range cs {
				ok, saw := ch.observe(ctx)
				out = append(out, Verdict{Check: ch.name, Passed: ok, Expected: ch.expected, Saw: saw, Source: ch.source})
			}
			return out, nil
		}, func(vs []Verdict) bool {
			for _, v := range vs {
				if !v.Passed {
					return false
				}
			}
			return true
		})
	return res.Last().Value
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// proxyContainer says what containers d runs ("Deployment containers name=image,…") and whether
// it runs exactly one, istio-proxy with image (what istiod renders for a waypoint or gateway).
func proxyContainer(d *appsv1.Deployment, image string) (string, bool) {
	var img []string
	for _, ct := range d.Spec.Template.Spec.Containers {
		img = append(img, ct.Name+"="+ct.Image)
	}
	return "Deployment containers " + strings.Join(img, ","), len(img) == 1 && img[0] == "istio-proxy="+image
}
