package posture

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"meshconform/framework/istionames"
)

// TestTier1HardenedPolicyAdmitsEveryProxy applies the hardened NetworkPolicy to a real API
// server beside Istio's own injected pods (golden files: a sidecar in an injection-labelled
// namespace, a gateway in a namespace with no injection label, as the suite's istio-ingress),
// reads everything back and evaluates the policy for each pod against istiod: every proxy
// reaches 15012; a pod Istio did not inject does not; the webhook port 15017 is open.
// The API server stores NetworkPolicies but enforces none, so admits below is the evaluation.
func TestTier1HardenedPolicyAdmitsEveryProxy(t *testing.T) {
	f := newFixture(t)
	ctx := ctxFor(t)
	apps := f.ns(t, "apps", map[string]string{istionames.InjectionLabel: "enabled"})
	ingress := f.ns(t, "ingress", map[string]string{"app.kubernetes.io/managed-by": "meshconform"}) // as mesh creates istio-ingress
	plain := f.ns(t, "plain", nil)

	create := func(p corev1.Pod) {
		t.Helper()
		// The ServiceAccount admission plugin sets it before the injector's webhook runs; the
		// golden files are the injector's output on the bare template.
		if p.Spec.ServiceAccountName == "" {
			p.Spec.ServiceAccountName = "default"
		}
		if _, err := f.env.Kube.CoreV1().Pods(p.Namespace).Create(ctx, &p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	sidecar := goldenPod(t, apps, "hello.yaml.injected")
	sidecar.Name = "hello"
	gateway := goldenPod(t, ingress, "gateway.yaml.injected")
	gateway.Name = "istio-ingressgateway"
	create(sidecar)
	create(gateway)
	f.pod(t, f.sys, "istiod", label(istionames.AppLabel, istionames.IstiodApp), label("istio", "pilot"))
	f.pod(t, f.sys, "istio-cni-node")
	f.pod(t, plain, "curl")
	f.harden(t)

	np, err := f.env.Kube.NetworkingV1().NetworkPolicies(f.sys).Get(ctx, HardenedNetworkPolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	istiod, err := f.env.Kube.CoreV1().Pods(f.sys).Get(ctx, "istiod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(labels.Set(istiod.Labels)) {
		t.Fatalf("the policy's podSelector %v does not select istiod %v (%v)", np.Spec.PodSelector, istiod.Labels, err)
	}
	want := map[string]bool{ // namespace/pod: reaches 15012
		apps + "/hello": true, ingress + "/istio-ingressgateway": true, f.sys + "/istio-cni-node": true,
		plain + "/curl": false,
	}
	for key, reach := range want {
		ns, name, _ := strings.Cut(key, "/")
		pod, err := f.env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nsObj, err := f.env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := admits(np, pod, nsObj, 15012); got != reach {
			t.Errorf("pod %s (labels %v) in namespace labelled %v reaches istiod:15012 = %v, want %v",
				key, pod.Labels, nsObj.Labels, got, reach)
		}
		if !admits(np, pod, nsObj, 15017) {
			t.Errorf("pod %s: 15017 (webhooks, the istiod Service's 443) is closed", key)
		}
		for _, port := range []int32{15010, 15014, 8080} {
			if admits(np, pod, nsObj, port) {
				t.Errorf("pod %s reaches istiod:%d", key, port)
			}
		}
	}
}

// admits evaluates NetworkPolicy np, as the NetworkPolicy API defines it, for a TCP
// connection from pod src (in namespace srcNS) to a pod np selects, on port.
func admits(np *networkingv1.NetworkPolicy, src *corev1.Pod, srcNS *corev1.Namespace, port int32) bool {
	for _, r := range np.Spec.Ingress {
		if !portMatches(r.Ports, port) {
			continue
		}
		if len(r.From) == 0 {
			return true
		}
		for _, peer := range r.From {
			if peerMatches(np.Namespace, peer, src, srcNS) {
				return true
			}
		}
	}
	return false
}

func portMatches(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		n := p.Port.IntVal // named ports are not used by the hardened policy
		if n == port || (p.EndPort != nil && n <= port && port <= *p.EndPort) {
			return true
		}
	}
	return false
}

func peerMatches(policyNS string, peer networkingv1.NetworkPolicyPeer, src *corev1.Pod, srcNS *corev1.Namespace) bool {
	if peer.IPBlock != nil {
		return false // pods are not named by address here
	}
	selects := func(s *metav1.LabelSelector, l map[string]string) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		return err == nil && sel.Matches(labels.Set(l))
	}
	if peer.NamespaceSelector == nil {
		if src.Namespace != policyNS {
			return false
		}
	} else if !selects(peer.NamespaceSelector, srcNS.Labels) {
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, src.Labels)
}
