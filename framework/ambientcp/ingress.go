package ambientcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/waypoint"
)

// Gateway-API ingress fixtures: Gateway `ingress` of class istio with pinned nodePorts, a TLS
// Secret for its https listener, an HTTP → HTTPS 301 redirect route and a route to the Service.
const (
	Ingress       = "ingress"
	ingressSecret = "ingress-tls"
	redirectRoute = "redirect"
	backendRoute  = "httpbin"
)

// IngressNodePorts are the nodePorts the ingress Service is pinned to by default: the ports the
// gateway chart uses and kind's configs map to 127.0.0.1 (so the two ingresses never run
// together). NodePorts are cluster-wide: two fixtures at once need two pairs.
var IngressNodePorts = [2]int32{30080, 30443}

func ingressOptions(ports [2]int32) gatewayapi.IngressOptions {
	return gatewayapi.IngressOptions{HTTPNodePort: ports[0], HTTPSNodePort: ports[1], TLSSecret: ingressSecret}
}

var httpRouteResource = schema.GroupVersionResource{Group: gatewayapi.Group, Version: "v1", Resource: "httproutes"}

// setupIngress creates the ingress fixtures in ns.
func setupIngress(ctx context.Context, c Clients, ns, runID string, ports [2]int32) error {
	certPEM, keyPEM, err := selfSigned(Ingress + "." + ns + ".example")
	if err != nil {
		return err
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ingressSecret, Namespace: ns, Labels: ownership.Labels(runID)},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	if _, err := c.Kube.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Secret %s/%s: %w", ns, ingressSecret, err)
	}
	cm := gatewayapi.IngressOptionsConfigMap(ns, Ingress, ingressOptions(ports))
	cm.Labels = ownership.Labels(runID)
	if _, err := c.Kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ConfigMap %s/%s: %w", ns, cm.Name, err)
	}
	for _, obj := range []*unstructured.Unstructured{
		gatewayapi.IngressGateway(ns, Ingress, ingressOptions(ports)),
		gatewayapi.RedirectRoute(ns, redirectRoute, ns, Ingress),
		gatewayapi.BackendRoute(ns, backendRoute, ns, Ingress, "https", Service, 8000),
	} {
		obj.SetLabels(ownership.Stamp(obj.GetLabels(), runID))
		res := waypoint.GatewayResource
		if obj.GetKind() == "HTTPRoute" {
			res = httpRouteResource
		}
		if _, err := c.Dynamic.Resource(res).Namespace(ns).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "meshconform", Force: true}); err != nil {
			return fmt.Errorf("apply %s %s/%s: %w", obj.GetKind(), ns, obj.GetName(), err)
		}
	}
	return nil
}

func ingressChecks(c Clients, ns string, e Expect) []check {
	dep := gatewayapi.IngressDeploymentName(Ingress)
	return []check{
		{
			name: "ingress-deployed",
			expected: fmt.Sprintf("Deployment and Service %s/%s labelled %s=%s and %s=istio.io-gateway-controller, container istio-proxy running %s; the Service a NodePort with port 80 on %d and 443 on %d (the parametersRef ConfigMap's overlay)",
				ns, dep, istionames.GatewayNameLabel, Ingress, istionames.ManagedGatewayLabel, e.ProxyImage, e.NodePorts[0], e.NodePorts[1]),
			source: "pilot/pkg/config/kube/gatewaycommon/gateway_utils.go:36-41 (<gateway>-<class>), deploymentcontroller.go:392-395 (service-type annotation), 614-622 and 661-700 (parametersRef overlays), files/kube-gateway.yaml:35-37, 87-91",
			observe: func(ctx context.Context) (bool, string) {
				var saw []string
				ok := true
				d, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, dep, metav1.GetOptions{})
				if err != nil {
					return false, "Deployment: " + err.Error()
				}
				if d.Labels[istionames.GatewayNameLabel] != Ingress || d.Labels[istionames.ManagedGatewayLabel] != "istio.io-gateway-controller" {
					ok = false
					saw = append(saw, fmt.Sprintf("Deployment labels %v", d.Labels))
				}
				containers, one := proxyContainer(d, e.ProxyImage)
				saw = append(saw, containers)
				ok = ok && one
				s, err := c.Kube.CoreV1().Services(ns).Get(ctx, dep, metav1.GetOptions{})
				if err != nil {
					return false, strings.Join(append(saw, "Service: "+err.Error()), "; ")
				}
				var ports []string
				pinned := map[int32]int32{}
				for _, p := range s.Spec.Ports {
					ports = append(ports, fmt.Sprintf("%s:%d→%d", p.Name, p.Port, p.NodePort))
					pinned[p.Port] = p.NodePort
				}
				saw = append(saw, fmt.Sprintf("Service %s ports %s", s.Spec.Type, strings.Join(ports, ",")))
				if s.Spec.Type != corev1.ServiceTypeNodePort || pinned[80] != e.NodePorts[0] || pinned[443] != e.NodePorts[1] {
					ok = false
				}
				return ok, strings.Join(saw, "; ")
			},
		},
		{
			name:     "ingress-gateway-status",
			expected: fmt.Sprintf("Gateway %s/%s Accepted=True; listeners http and https Accepted=True and ResolvedRefs=True (the https certificate Secret found)", ns, Ingress),
			source:   "pilot/pkg/config/kube/gateway/conversion.go:1847-1855 (Resource accepted, All references resolved), 2101-2115 (listener ResolvedRefs)",
			observe: func(ctx context.Context) (bool, string) {
				gw, err := c.Dynamic.Resource(waypoint.GatewayResource).Namespace(ns).Get(ctx, Ingress, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				var saw []string
				acc, ok := waypoint.Find(waypoint.Conditions(gw), "Accepted")
				ok = ok && acc.Status == "True"
				for _, c := range waypoint.Conditions(gw) {
					saw = append(saw, c.String())
				}
				ls, _, _ := unstructured.NestedSlice(gw.Object, "status", "listeners")
				seen := map[string]bool{}
				for _, l := range ls {
					m, _ := l.(map[string]any)
					name, _ := m["name"].(string)
					conds := waypoint.Conditions(&unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": m["conditions"]}}})
					a, fa := waypoint.Find(conds, "Accepted")
					r, fr := waypoint.Find(conds, "ResolvedRefs")
					saw = append(saw, fmt.Sprintf("listener %s: %s, %s", name, a, r))
					seen[name] = fa && a.Status == "True" && fr && r.Status == "True"
				}
				return ok && seen["http"] && seen["https"], strings.Join(saw, "; ")
			},
		},
		{
			name:     "ingress-routes",
			expected: fmt.Sprintf("HTTPRoutes %s/%s (301 redirect) and %s/%s: parent %s Accepted=True and ResolvedRefs=True, controllerName %s", ns, redirectRoute, ns, backendRoute, Ingress, istionames.GatewayController),
			source:   "pilot/pkg/config/kube/gateway/conditions.go:140-160 (route parents' Accepted and ResolvedRefs)",
			observe: func(ctx context.Context) (bool, string) {
				var saw []string
				ok := true
				for _, name := range []string{redirectRoute, backendRoute} {
					r, err := c.Dynamic.Resource(httpRouteResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						ok = false
						saw = append(saw, name+": "+err.Error())
						continue
					}
					ps, _, _ := unstructured.NestedSlice(r.Object, "status", "parents")
					good := false
					for _, p := range ps {
						m, _ := p.(map[string]any)
						ctrl, _ := m["controllerName"].(string)
						conds := waypoint.Conditions(&unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": m["conditions"]}}})
						a, fa := waypoint.Find(conds, "Accepted")
						rr, fr := waypoint.Find(conds, "ResolvedRefs")
						saw = append(saw, fmt.Sprintf("HTTPRoute %s parent (%s): %s, %s", name, ctrl, a, rr))
						good = good || (ctrl == istionames.GatewayController && fa && a.Status == "True" && fr && rr.Status == "True")
					}
					if len(ps) == 0 {
						saw = append(saw, "HTTPRoute "+name+": no parent status")
					}
					ok = ok && good
				}
				return ok, strings.Join(saw, "; ")
			},
		},
	}
}

// selfSigned is a throwaway certificate for the https listener (istiod only checks it parses).
func selfSigned(host string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
