package apitest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	securityapi "istio.io/api/security/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/ownership"
)

func TestEnvironmentServesIstioCRDs(t *testing.T) {
	env := Env(t)
	ctx := context.Background()
	// All 15 of Istio's CRDs, served: list each through the dynamic client.
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"},
		{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"},
		{Group: "security.istio.io", Version: "v1", Resource: "requestauthentications"},
		{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
		{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
		{Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
		{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"},
		{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"},
		{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"},
		{Group: "networking.istio.io", Version: "v1", Resource: "workloadgroups"},
		{Group: "networking.istio.io", Version: "v1alpha3", Resource: "envoyfilters"},
		{Group: "networking.istio.io", Version: "v1beta1", Resource: "proxyconfigs"},
		{Group: "telemetry.istio.io", Version: "v1", Resource: "telemetries"},
		{Group: "extensions.istio.io", Version: "v1alpha1", Resource: "wasmplugins"},
		{Group: "extensions.istio.io", Version: "v1alpha1", Resource: "trafficextensions"},
	} {
		if _, err := env.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			t.Errorf("listing %s: %v", gvr, err)
		}
	}
}

func TestKubeconfigFileWorks(t *testing.T) {
	env := Env(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", env.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("with the kubeconfig file, getting namespace default: %v", err)
	}
}

func TestNamespaceIsLabelledAndGetsDefaultServiceAccount(t *testing.T) {
	env := Env(t)
	ctx := context.Background()
	name := env.Namespace(t, "apitest-labels", map[string]string{"istio-injection": "enabled"})
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["istio-injection"] != "enabled" || !ownership.Owned(ns.Labels, env.RunID) {
		t.Errorf("namespace %s labels = %v, want istio-injection=enabled and the ownership labels of run %s", name, ns.Labels, env.RunID)
	}
	if !strings.HasPrefix(name, "apitest-labels-"+env.RunID) {
		t.Errorf("namespace name %q does not start with prefix and run id", name)
	}
	// The serviceaccount controller of kube-controller-manager acts on new namespaces.
	if err := poll(ctx, 30*time.Second, func() error {
		_, err := env.Kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Errorf("no default ServiceAccount in %s: %v\n%s", name, err, env.ControllerManagerLogTail())
	}
	// And the root-ca-certificate-publisher.
	if err := poll(ctx, 30*time.Second, func() error {
		_, err := env.Kube.CoreV1().ConfigMaps(name).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Errorf("no kube-root-ca.crt ConfigMap in %s: %v", name, err)
	}
}

// The namespace controller waits a fixed 5s (namespaceDeletionGracePeriod) after a
// namespace changes before it empties it, so a deletion takes a little over 5s.
func TestNamespaceDeletionCompletes(t *testing.T) {
	env := Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := env.Namespace(t, "apitest-delete", map[string]string{"istio-injection": "enabled"})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "content"}, Data: map[string]string{"k": "v"}}
	if _, err := env.Kube.CoreV1().ConfigMaps(name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := env.DeleteNamespace(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s with a ConfigMap deleted in %s", name, time.Since(began).Round(time.Millisecond))
}

// A namespace holding Istio custom resources is finalized too: the namespace controller
// discovers the CRD-backed kinds and deletes their objects.
func TestNamespaceWithPeerAuthenticationDeletionCompletes(t *testing.T) {
	env := Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := env.Namespace(t, "apitest-delete-pa", map[string]string{"istio-injection": "enabled"})
	pa := &securityv1.PeerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: ownership.Labels(env.RunID)},
		Spec:       securityapi.PeerAuthentication{Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}},
	}
	if _, err := env.Istio.SecurityV1().PeerAuthentications(name).Create(ctx, pa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := env.DeleteNamespace(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("namespace %s with a PeerAuthentication deleted in %s", name, time.Since(began).Round(time.Millisecond))
	// Recreating the namespace must not bring the old PeerAuthentication back from etcd.
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ownership.Labels(env.RunID)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	if _, err := env.Istio.SecurityV1().PeerAuthentications(name).Get(ctx, "default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the namespace was deleted and recreated, get PeerAuthentication default = %v, want NotFound", err)
	}
}

// poll calls f every 100ms until it returns nil or timeout passes; it returns f's last error.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// TestGatewayAPIStandardChannel: InstallGatewayAPI installs every CRD of Gateway API v1.6.0's
// standard channel (each established, annotated with its bundle version and channel) and its
// safe-upgrades admission policy, which the API server then enforces: installing an
// experimental-channel CRD over a standard one is refused with the policy's message. A second
// call is free.
func TestGatewayAPIStandardChannel(t *testing.T) {
	env := Env(t)
	ctx := Context(t, 2*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Gateway API %s installed in %s", GatewayAPIVersion, env.Timings.GatewayAPI.Round(time.Millisecond))
	began := time.Now()
	if err := env.InstallGatewayAPI(ctx); err != nil || time.Since(began) > time.Second {
		t.Errorf("second InstallGatewayAPI: %v after %s; want nil at once", err, time.Since(began))
	}
	ext, err := apiextensions.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, plural := range []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants",
		"backendtlspolicies", "listenersets", "tcproutes", "tlsroutes", "udproutes"} {
		name := plural + ".gateway.networking.k8s.io"
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		a := crd.Annotations
		if a["gateway.networking.k8s.io/bundle-version"] != GatewayAPIVersion || a["gateway.networking.k8s.io/channel"] != "standard" {
			t.Errorf("CRD %s: bundle-version %q, channel %q; want %s, standard", name, a["gateway.networking.k8s.io/bundle-version"], a["gateway.networking.k8s.io/channel"], GatewayAPIVersion)
		}
		established := false
		for _, c := range crd.Status.Conditions {
			established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
		}
		if !established {
			t.Errorf("CRD %s not established: %v", name, crd.Status.Conditions)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"},
	} {
		if _, err := env.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			t.Errorf("listing %s: %v", gvr, err)
		}
	}
	// The policy is enforced once the API server's admission has loaded it (an informer):
	// poll until the experimental-channel update is refused.
	const policy = "safe-upgrades.gateway.networking.k8s.io"
	if _, err := env.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, policy, metav1.GetOptions{}); err != nil {
		t.Fatalf("binding %s: %v", policy, err)
	}
	err = poll(ctx, 30*time.Second, func() error {
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "gateways.gateway.networking.k8s.io", metav1.GetOptions{})
		if err != nil {
			return err
		}
		crd.Annotations["gateway.networking.k8s.io/channel"] = "experimental"
		_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return fmt.Errorf("an experimental-channel update of the standard Gateway CRD was accepted")
		}
		if !strings.Contains(err.Error(), "prohibited by default") {
			return fmt.Errorf("refused, but not by %s: %v", policy, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
