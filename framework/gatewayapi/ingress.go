package gatewayapi

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Gateway-API ingress: a Gateway of Istio's class istio and its routes, as Istio's docs write
// them (research/ambient.md §3), with what kind needs: a NodePort Service whose nodePorts are
// pinned, so that kind's host port mappings reach it.
//
// For a Gateway of class istio, istiod deploys ServiceAccount, Deployment and Service named
// <gateway>-istio (gatewaycommon/gateway_utils.go:36-41 at release-1.31, GetDefaultName), whose
// Service type is the class default LoadBalancer unless the Gateway's annotation
// networking.istio.io/service-type says otherwise (gatewaycommon/deploymentcontroller.go:
// 392-395); a LoadBalancer never gets an address on kind, and the Gateway then stays
// Programmed=False. The template writes no nodePort; the only way to pin one is the ConfigMap
// the Gateway's spec.infrastructure.parametersRef names, whose key "service" is a strategic-
// merge overlay on the rendered Service (deploymentcontroller.go:614-622, 661-700, 758-770).

// ServiceTypeAnnotation overrides the Service type istiod gives a Gateway's Deployment.
const ServiceTypeAnnotation = "networking.istio.io/service-type"

// IngressOptions says how the ingress Gateway is built.
type IngressOptions struct {
	// HTTPNodePort and HTTPSNodePort are pinned on the Service's ports 80 and 443 (0: none).
	HTTPNodePort, HTTPSNodePort int32
	// TLSSecret is the kubernetes.io/tls Secret (in the Gateway's namespace) the https listener
	// terminates with; empty: no https listener.
	TLSSecret string
}

// IngressDeploymentName is the Deployment (and Service, ServiceAccount) istiod makes for
// Gateway name of class istio.
func IngressDeploymentName(name string) string { return name + "-istio" }

// IngressOptionsName is the ConfigMap the Gateway's parametersRef names.
func IngressOptionsName(name string) string { return name + "-options" }

// Pinned says whether o pins a nodePort (and so needs the parametersRef ConfigMap).
func (o IngressOptions) Pinned() bool { return o.HTTPNodePort != 0 || o.HTTPSNodePort != 0 }

// IngressGateway builds Gateway ns/name of class istio: listener http on 80 and, with a TLS
// Secret, https on 443 terminating with it, each admitting routes from every namespace; a
// NodePort Service, and, when o pins a nodePort, parametersRef to IngressOptionsName(name).
// Without pinned nodePorts the API server allocates them: nothing collides with the gateway
// chart's fixed 30080/30443 or with another spec's Gateway.
func IngressGateway(ns, name string, o IngressOptions) *unstructured.Unstructured {
	all := map[string]any{"namespaces": map[string]any{"from": "All"}}
	listeners := []any{map[string]any{"name": "http", "port": int64(80), "protocol": "HTTP", "allowedRoutes": all}}
	if o.TLSSecret != "" {
		listeners = append(listeners, map[string]any{
			"name": "https", "port": int64(443), "protocol": "HTTPS", "allowedRoutes": all,
			"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{map[string]any{"kind": "Secret", "name": o.TLSSecret}}},
		})
	}
	spec := map[string]any{"gatewayClassName": IngressClass, "listeners": listeners}
	if o.Pinned() {
		spec["infrastructure"] = map[string]any{"parametersRef": map[string]any{
			"group": "", "kind": "ConfigMap", "name": IngressOptionsName(name)}}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/v1",
		"kind":       "Gateway",
		"metadata": map[string]any{"name": name, "namespace": ns,
			"annotations": map[string]any{ServiceTypeAnnotation: string(corev1.ServiceTypeNodePort)}},
		"spec": spec,
	}}
}

// IngressClass is the GatewayClass istiod deploys ingress Gateways of (class istio, template
// kube-gateway: gatewaycommon/classinfo.go).
const IngressClass = "istio"

// IngressOptionsConfigMap is the ConfigMap whose "service" overlay pins the nodePorts.
func IngressOptionsConfigMap(ns, name string, o IngressOptions) *corev1.ConfigMap {
	overlay := "spec:\n  type: NodePort\n  ports:\n"
	if o.HTTPNodePort != 0 {
		overlay += fmt.Sprintf("  - port: 80\n    nodePort: %d\n", o.HTTPNodePort)
	}
	if o.HTTPSNodePort != 0 && o.TLSSecret != "" {
		overlay += fmt.Sprintf("  - port: 443\n    nodePort: %d\n", o.HTTPSNodePort)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: IngressOptionsName(name), Namespace: ns},
		Data:       map[string]string{"service": overlay},
	}
}

// RedirectRoute builds HTTPRoute ns/name that answers every request on the Gateway's http
// listener with a redirect to https, status 301 (the Gateway API's default is 302).
func RedirectRoute(ns, name, gwNS, gw string) *unstructured.Unstructured {
	return route(ns, name, gwNS, gw, "http", map[string]any{"filters": []any{map[string]any{
		"type": "RequestRedirect", "requestRedirect": map[string]any{"scheme": "https", "statusCode": int64(301)}}}})
}

// BackendRoute builds HTTPRoute ns/name sending the Gateway's listener section to Service
// svc:port in ns.
func BackendRoute(ns, name, gwNS, gw, section, svc string, port int32) *unstructured.Unstructured {
	return route(ns, name, gwNS, gw, section, map[string]any{"backendRefs": []any{map[string]any{"name": svc, "port": int64(port)}}})
}

func route(ns, name, gwNS, gw, section string, rule map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": gw, "namespace": gwNS, "sectionName": section}},
			"rules":      []any{rule},
		},
	}}
}

// SpecIngress is one ingress behaviour's Gateway-API ingress, all in one namespace (the
// spec's server namespace): Gateway Name of class istio, which istiod deploys as its own
// Deployment and NodePort Service IngressDeploymentName(Name), and the routes for Host.
type SpecIngress struct {
	Namespace, Name string
	// Host is the hostname the routes match (the request's Host header, the TLS SNI).
	Host string
	// Service and Port are the backend, in Namespace.
	Service string
	Port    int32
	// TLSSecret, when set, is the kubernetes.io/tls Secret in Namespace: the Gateway gets an
	// https listener terminating with it, the backend route attaches there, and the http
	// listener answers with a 301 redirect to https (RedirectRoute).
	TLSSecret string
}

// Route names of a SpecIngress.
const (
	SpecBackendRoute  = "backend"
	SpecRedirectRoute = "redirect"
)

// Objects are the Gateway and its HTTPRoutes, in the order they are applied.
func (s SpecIngress) Objects() []*unstructured.Unstructured {
	gw := IngressGateway(s.Namespace, s.Name, IngressOptions{TLSSecret: s.TLSSecret})
	section := "http"
	var out []*unstructured.Unstructured
	if s.TLSSecret != "" {
		section = "https"
		out = append(out, withHostnames(RedirectRoute(s.Namespace, SpecRedirectRoute, s.Namespace, s.Name), s.Host))
	}
	out = append(out, withHostnames(BackendRoute(s.Namespace, SpecBackendRoute, s.Namespace, s.Name, section, s.Service, s.Port), s.Host))
	return append([]*unstructured.Unstructured{gw}, out...)
}

// Routes are the names of the HTTPRoutes Objects makes.
func (s SpecIngress) Routes() []string {
	if s.TLSSecret != "" {
		return []string{SpecRedirectRoute, SpecBackendRoute}
	}
	return []string{SpecBackendRoute}
}

func withHostnames(r *unstructured.Unstructured, host string) *unstructured.Unstructured {
	if host != "" {
		_ = unstructured.SetNestedSlice(r.Object, []any{host}, "spec", "hostnames")
	}
	return r
}
