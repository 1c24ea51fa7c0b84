package cluster

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/ownership"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// Attach reads the harness's kubeconfig and reaches the real API server.
func TestTier1AttachToARealAPIServer(t *testing.T) {
	env := apitest.Env(t)
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Attach(context.Background(), env.Kubeconfig, raw.CurrentContext, 5*time.Second)
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	// The harness's kube-apiserver may be built from source without version stamps
	// ("v0.0.0-master+…"): any gitVersion proves /version answered.
	if !strings.HasPrefix(a.ServerVersion, "v") || a.Server != env.Config.Host || a.Context != raw.CurrentContext {
		t.Fatalf("attached to %s at %s, version %q (harness at %s)", a.Context, a.Server, a.ServerVersion, env.Config.Host)
	}
	t.Logf("attached to %s at %s, %s", a.Context, a.Server, a.ServerVersion)
}

// The same credentials pointed at a closed port fail fast, naming context, server and fix.
func TestTier1AttachToAClosedPort(t *testing.T) {
	env := apitest.Env(t)
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + l.Addr().String()
	l.Close()
	for _, c := range raw.Clusters {
		c.Server = server
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*raw, path); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Attach(context.Background(), path, raw.CurrentContext, 5*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
	for _, want := range []string{`context "` + raw.CurrentContext + `" (server ` + server + `) is not reachable`, "connection refused",
		"start that cluster or fix KUBE_CONTEXT/KUBECONFIG, or unset KUBE_CONTEXT to let the suite create a kind cluster"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// WaitReady polls the real API server until every node is Ready and a CoreDNS pod is ready,
// and otherwise says what it saw; the test writes those statuses (no kubelet in tier 1).
func TestTier1WaitReady(t *testing.T) {
	env := apitest.Env(t)
	ctx := context.Background()
	kube := env.Kube
	short := 1500 * time.Millisecond
	expectNotReady := func(want string) {
		t.Helper()
		err := WaitReady(ctx, kube, short)
		if err == nil || !strings.Contains(err.Error(), "cluster not ready after 1.5s: "+want) {
			t.Fatalf("want not ready (%s), got %v", want, err)
		}
	}
	expectNotReady("no nodes registered")

	node, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tier1-" + env.RunID, Labels: ownership.Labels(env.RunID)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kube.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}) })
	expectNotReady("node " + node.Name + " is not Ready")

	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := kube.CoreV1().Pods("kube-system").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns-" + env.RunID, Labels: map[string]string{"k8s-app": "kube-dns", ownership.RunIDKey: env.RunID}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: "registry.k8s.io/coredns/coredns:v1.12.0"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kube.CoreV1().Pods("kube-system").Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	})
	expectNotReady("no ready CoreDNS pod (k8s-app=kube-dns) among 1")

	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if _, err := kube.CoreV1().Pods("kube-system").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx, kube, 30*time.Second); err != nil {
		t.Fatalf("WaitReady after the node and CoreDNS are ready: %v", err)
	}
}
