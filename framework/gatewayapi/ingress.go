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

// IngressGateway builds Gateway ns/name of class istio: listener http on 80 and, with a TLS
// Secret, https on 443 terminating with it, each admitting routes from every namespace; a
// NodePort Service, and parametersRef to IngressOptionsName(name).
func IngressGateway(ns, name string, o IngressOptions) *unstructured.Unstructured {
	all := map[string]any{"namespaces": map[string]any{"from": "All"}}
	listeners := []any{map[string]any{"name": "http", "port": int64(80), "protocol": "HTTP", "allowedRoutes": all}}
	if o.TLSSecret != "" {
		listeners = append(listeners, map[string]any{
			"name": "https", "port": int64(443), "protocol": "HTTPS", "allowedRoutes": all,
			"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{map[string]any{"kind": "Secret", "name": o.TLSSecret}}},
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/v1",
		"kind":       "Gateway",
		"metadata": map[string]any{"name": name, "namespace": ns,
			"annotations": map[string]any{ServiceTypeAnnotation: string(corev1.ServiceTypeNodePort)}},
		"spec": map[string]any{
			"gatewayClassName": "istio",
			"infrastructure": map[string]any{"parametersRef": map[string]any{
				"group": "", "kind": "ConfigMap", "name": IngressOptionsName(name)}},
			"listeners": listeners,
		},
	}}
}

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
