package cases

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/framework/waypoint"
)

// SpecGateway is the name of the Gateway API Gateway an ingress case applies in its server
// namespace (INGRESS_API=gateway-api); istiod names its Deployment and Service
// gatewayapi.IngressDeploymentName(SpecGateway).
const SpecGateway = "ingress"

// FindGatewayAPI checks that the cluster can run Gateway-API ingress: the API server serves
// the Gateway API's Gateways and HTTPRoutes (gateway.networking.k8s.io/v1: the CRDs, installed
// with DATAPLANE_MODE=ambient or already there) and istiod has made GatewayClass istio. The
// gateway chart is not needed: each spec's Gateway gets its own Deployment and Service from
// istiod. The GatewayRef's Namespace is set per spec (its server namespace).
func FindGatewayAPI(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) (GatewayRef, error) {
	gv := gatewayapi.Group + "/v1"
	list, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return GatewayRef{}, fmt.Errorf("INGRESS_API=gateway-api: reading the API server's %s resources: %w", gv, err)
	}
	served := map[string]bool{}
	if list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
		}
	}
	if !served["gateways"] || !served["httproutes"] {
		return GatewayRef{}, fmt.Errorf("INGRESS_API=gateway-api needs the Gateway API CRDs (%s gateways and httproutes), which this cluster does not serve: they are installed with DATAPLANE_MODE=ambient (Gateway API %s), or install them on the cluster (standard channel), or use INGRESS_API=istio", gv, gatewayapi.Version)
	}
	if _, err := dyn.Resource(waypoint.GatewayClassResource).Get(ctx, gatewayapi.IngressClass, metav1.GetOptions{}); err != nil {
		return GatewayRef{}, fmt.Errorf("INGRESS_API=gateway-api: GatewayClass %s: %w (istiod creates it when it serves the Gateway API: is istiod running, with PILOT_ENABLE_GATEWAY_API on?)", gatewayapi.IngressClass, err)
	}
	return GatewayRef{API: IngressGatewayAPI, Name: SpecGateway, Service: gatewayapi.IngressDeploymentName(SpecGateway),
		Port: gatewayHTTPPort, HTTPSPort: gatewayHTTPSPort}, nil
}

// releaseLabel is the label Istio's gateway chart writes on its Service with the Helm release
// name (manifests/charts/gateway/templates/service.yaml includes "istio.labels", defined in
// templates/zzz_profile.yaml: app.kubernetes.io/instance: {{ .Release.Name }}).
const releaseLabel = "app.kubernetes.io/instance"

// gatewayHTTPPort and gatewayHTTPSPort are the gateway Service's plain HTTP and TLS ports (the
// chart's values.yaml: http2, 80; https, 443, targetPort 443).
const (
	gatewayHTTPPort  = 80
	gatewayHTTPSPort = 443
)

// FindGateway finds the ingress gateway of the control plane of revision ("" = default): the
// Service of the gateway chart's Helm release that mesh installs for it
// (mesh.Options.ReleaseName), preferring mesh.DefaultGatewayNamespace.
//
// The release, not the istio label: the gateway chart labels release NAME's Service
// istio=<NAME minus "istio-">, so a canary's is istio=ingressgateway-canary, and it writes
// istio.io/rev only on the pod template (manifests/charts/gateway/templates/_helpers.tpl,
// gateway.selectorLabels and gateway.sidecarInjectionLabels). A lookup by
// istio=ingressgateway plus istio.io/rev on the Service found the default gateway in a canary
// run, and nothing with ISTIO_REVISION.
//
// On a cluster whose gateway was installed otherwise, the Service labelled
// istio=ingressgateway and istio.io/rev=<revision, or "default"> is taken: istioctl's gateways
// chart labels its Service so (manifests/charts/gateways/istio-ingress/templates/service.yaml).
// The default revision also takes an istio=ingressgateway Service with no istio.io/rev.
func FindGateway(ctx context.Context, kube kubernetes.Interface, revision string) (GatewayRef, error) {
	release := mesh.Options{Revision: revision}.ReleaseName(mesh.ChartGateway)
	rev := revision
	if rev == "" {
		rev = istionames.DefaultRevision
	}
	gateway := istionames.IstioLabel + "=" + istionames.IstioIngressGateway
	selectors := []string{releaseLabel + "=" + release, gateway + "," + istionames.RevisionLabel + "=" + rev}
	if revision == "" {
		selectors = append(selectors, gateway+",!"+istionames.RevisionLabel)
	}
	var errs []string
	for _, sel := range selectors {
		ref, err := gatewayBySelector(ctx, kube, sel)
		if err == nil {
			return ref, nil
		}
		errs = append(errs, err.Error())
	}
	return GatewayRef{}, fmt.Errorf("no ingress gateway of revision %q: %s; install Istio's gateway chart as release %s (in %s), as the suite does",
		rev, strings.Join(errs, "; "), release, mesh.DefaultGatewayNamespace)
}

// gatewayBySelector returns the one Service matching selector with port 80, preferring
// mesh.DefaultGatewayNamespace; several elsewhere are an error naming them.
func gatewayBySelector(ctx context.Context, kube kubernetes.Interface, selector string) (GatewayRef, error) {
	svcs, err := kube.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return GatewayRef{}, fmt.Errorf("listing Services labelled %s: %w", selector, err)
	}
	var found []corev1.Service
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			if p.Port == gatewayHTTPPort {
				found = append(found, s)
				break
			}
		}
	}
	ref := func(s corev1.Service) GatewayRef {
		return GatewayRef{Namespace: s.Namespace, Service: s.Name, Port: gatewayHTTPPort, HTTPSPort: gatewayHTTPSPort, Selector: s.Spec.Selector}
	}
	for _, s := range found {
		if s.Namespace == mesh.DefaultGatewayNamespace {
			return ref(s), nil
		}
	}
	switch len(found) {
	case 0:
		return GatewayRef{}, fmt.Errorf("no Service labelled %s with port %d", selector, gatewayHTTPPort)
	case 1:
		return ref(found[0]), nil
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = s.Namespace + "/" + s.Name
	}
	return GatewayRef{}, fmt.Errorf("%d Services labelled %s with port %d, none in %s: %s",
		len(found), selector, gatewayHTTPPort, mesh.DefaultGatewayNamespace, strings.Join(names, ", "))
}
