package posture

import (
	"context"
	"errors"
	"fmt"
	"maps"

	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"meshconform/framework/istionames"
)

// Hardening is the configuration that makes the mesh-wide checks pass: POSTURE-001
// (PeerAuthentication), POSTURE-003 (AuthorizationPolicy) and POSTURE-007 (NetworkPolicy).
// The per-workload checks (002, 004-006) depend on workloads and on the install (Istio CNI
// for 006), not on objects one can add. The suite applies it, asserts the checks pass, and
// deletes it; the audit itself never writes.
type Hardening struct {
	// PeerAuthentication: no selector, mtls STRICT, in the root namespace.
	PeerAuthentication *securityv1.PeerAuthentication
	// AuthorizationPolicy: spec {} (ALLOW with no rules: deny all), in the root namespace.
	// Every request in the mesh is denied until an ALLOW policy matches it.
	AuthorizationPolicy *securityv1.AuthorizationPolicy
	// NetworkPolicy in the Istio system namespace selecting istiod: xDS/CA (15012) only from
	// proxies, webhooks (15017) from anywhere because the API server's address is not a pod a
	// selector can name. Proxies are every pod Istio injected, in whatever namespace, plus
	// pods of meshed namespaces and of the system namespace. Gateways run in namespaces of
	// their own (the suite's in istio-ingress, which carries no injection label: the gateway
	// chart asks for injection per pod), so a namespace selector alone would cut them off
	// from istiod. Plaintext xDS (15010), monitoring (15014) and debug (8080) are closed to
	// pods; kubelet probes come from the node, which the usual NetworkPolicy implementations
	// admit.
	NetworkPolicy *networkingv1.NetworkPolicy
}

// HardenOption adjusts Hardened.
type HardenOption func(*hardenOptions)

type hardenOptions struct {
	systemNS string
	labels   map[string]string
}

// WithSystemNamespace puts the NetworkPolicy in ns (default: the root namespace, which is
// istiod's namespace in a default install).
func WithSystemNamespace(ns string) HardenOption {
	return func(o *hardenOptions) { o.systemNS = ns }
}

// WithLabels labels all three objects, e.g. ownership.Labels(runID).
func WithLabels(l map[string]string) HardenOption {
	return func(o *hardenOptions) { o.labels = maps.Clone(l) }
}

// Names of the hardening objects.
const (
	HardenedPeerAuthenticationName  = "meshconform-mesh-strict"
	HardenedAuthorizationPolicyName = "meshconform-deny-by-default"
	HardenedNetworkPolicyName       = "meshconform-istiod-isolation"
)

// Hardened returns the hardening objects for root namespace rootNS.
func Hardened(rootNS string, opts ...HardenOption) Hardening {
	o := hardenOptions{systemNS: rootNS}
	for _, opt := range opts {
		opt(&o)
	}
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: maps.Clone(o.labels)}
	}
	tcp := corev1.ProtocolTCP
	p15012, p15017 := intstr.FromInt32(15012), intstr.FromInt32(15017)
	return Hardening{
		PeerAuthentication: &securityv1.PeerAuthentication{
			TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication"},
			ObjectMeta: meta(rootNS, HardenedPeerAuthenticationName),
			Spec: securityapi.PeerAuthentication{Mtls: &securityapi.PeerAuthentication_MutualTLS{
				Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}},
		},
		AuthorizationPolicy: &securityv1.AuthorizationPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
			ObjectMeta: meta(rootNS, HardenedAuthorizationPolicyName),
		},
		NetworkPolicy: &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: meta(o.systemNS, HardenedNetworkPolicyName),
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{istionames.AppLabel: istionames.IstiodApp}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{
						From: []networkingv1.NetworkPolicyPeer{
							{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{istionames.InjectionLabel: istionames.InjectionEnabled}}},
							{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
								{Key: istionames.RevisionLabel, Operator: metav1.LabelSelectorOpExists}}}},
							{PodSelector: &metav1.LabelSelector{}}, // the system namespace
							// Injected pods anywhere: gateways, and sidecars of pods injected
							// by their own label in an unlabelled namespace. The injector writes
							// service.istio.io/canonical-name on every pod it injects, sidecars
							// and gateways alike (istio-discovery/files/injection-template.yaml
							// and gateway-injection-template.yaml; kube-gateway.yaml and
							// waypoint.yaml for the deployments istiod creates): the one label by
							// which a NetworkPolicy can name "a proxy" in any namespace.
							{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{
								MatchExpressions: []metav1.LabelSelectorRequirement{
									{Key: istionames.CanonicalNameLabel, Operator: metav1.LabelSelectorOpExists}}}},
						},
						Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p15012}},
					},
					{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p15017}}},
				},
			},
		},
	}
}

// Apply creates the three objects. It never overwrites: an object of the same name is an
// error naming it, so a cluster's own configuration is not silently replaced.
func (h Hardening) Apply(ctx context.Context, c Clients) error {
	pa := h.PeerAuthentication.DeepCopy()
	pa.ResourceVersion = ""
	if _, err := c.Istio.SecurityV1().PeerAuthentications(pa.Namespace).Create(ctx, pa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating PeerAuthentication %s/%s: %w", pa.Namespace, pa.Name, err)
	}
	ap := h.AuthorizationPolicy.DeepCopy()
	ap.ResourceVersion = ""
	if _, err := c.Istio.SecurityV1().AuthorizationPolicies(ap.Namespace).Create(ctx, ap, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating AuthorizationPolicy %s/%s: %w", ap.Namespace, ap.Name, err)
	}
	np := h.NetworkPolicy.DeepCopy()
	np.ResourceVersion = ""
	if _, err := c.Kube.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	return nil
}

// Delete removes the three objects; absent ones are not an error.
func (h Hardening) Delete(ctx context.Context, c Clients) error {
	var errs []error
	ignore := func(kind, ns, name string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s %s/%s: %w", kind, ns, name, err))
		}
	}
	pa, ap, np := h.PeerAuthentication, h.AuthorizationPolicy, h.NetworkPolicy
	ignore("PeerAuthentication", pa.Namespace, pa.Name, c.Istio.SecurityV1().PeerAuthentications(pa.Namespace).Delete(ctx, pa.Name, metav1.DeleteOptions{}))
	ignore("AuthorizationPolicy", ap.Namespace, ap.Name, c.Istio.SecurityV1().AuthorizationPolicies(ap.Namespace).Delete(ctx, ap.Name, metav1.DeleteOptions{}))
	ignore("NetworkPolicy", np.Namespace, np.Name, c.Kube.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}))
	return errors.Join(errs...)
}
