//go:build !e2e

package upgrade

// Tier 1: a real kube-apiserver, etcd and kube-controller-manager (no scheduler, kubelet or
// deployment controller): the relabel and restart patches and the records are checked as the
// API server stores them; what a deployment controller and a kubelet would write (pods and
// their status, the Deployment's status) the tests write themselves.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/gate"
	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/workload"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func newRun(t *testing.T, kube kubernetes.Interface) string {
	id := ownership.NewRunID()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := workload.Cleanup(ctx, kube, id); err != nil {
			t.Errorf("cleanup of run %s: %v", id, err)
		}
	})
	return id
}

func TestTier1NamespacesByRole(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run, other := newRun(t, env.Kube), newRun(t, env.Kube)
	server, err := CreateNamespace(ctx, env.Kube, run, Server, workload.InjectionOn)
	if err != nil {
		t.Fatal(err)
	}
	client, err := CreateNamespace(ctx, env.Kube, run, Client, workload.Revision("stable"))
	if err != nil {
		t.Fatal(err)
	}
	// Another run's skew namespace, and a namespace of this run that is not a skew one.
	if _, err := CreateNamespace(ctx, env.Kube, other, Server, workload.InjectionOn); err != nil {
		t.Fatal(err)
	}
	if _, err := workload.Namespace(ctx, env.Kube, workload.NamespaceSpec{Prefix: "mtls-002", RunID: run, Injection: workload.InjectionOn}); err != nil {
		t.Fatal(err)
	}
	found, err := FindNamespaces(ctx, env.Kube, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[Server] != server || found[Client] != client {
		t.Fatalf("found %v, want server %s and client %s", found, server, client)
	}
	if err := found.Require(run, Server, Client); err != nil {
		t.Error(err)
	}
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, client, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels[RoleKey] != "client" || ns.Labels[istionames.RevisionLabel] != "stable" || !ownership.Owned(ns.Labels, run) {
		t.Errorf("client namespace labels %v", ns.Labels)
	}

	if _, err := CreateNamespace(ctx, env.Kube, run, Server, workload.InjectionOn); err != nil {
		t.Fatal(err)
	}
	if _, err := FindNamespaces(ctx, env.Kube, run); err == nil || !strings.Contains(err.Error(), "two namespaces of role server in run "+run) {
		t.Errorf("duplicate role: %v", err)
	}

	if err := Cleanup(ctx, env.Kube, other); err != nil {
		t.Fatal(err)
	}
	if left, err := FindNamespaces(ctx, env.Kube, other); err != nil || len(left) != 0 {
		t.Errorf("after cleanup of %s: %v %v", other, left, err)
	}
	if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, server, metav1.GetOptions{}); err != nil {
		t.Errorf("cleanup of another run touched %s: %v", server, err)
	}
}

func TestTier1MoveToRevision(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	run := newRun(t, env.Kube)
	ns, err := CreateNamespace(ctx, env.Kube, run, Client, workload.InjectionOn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := MoveToRevision(ctx, env.Kube, ns, "canary")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []map[string]string{out.Labels, stored.Labels} {
		if _, ok := l[istionames.InjectionLabel]; ok || l[istionames.RevisionLabel] != "canary" {
			t.Errorf("labels after the move: %v", l)
		}
		if l[RoleKey] != "client" || !ownership.Owned(l, run) {
			t.Errorf("the move dropped other labels: %v", l)
		}
	}
	// What the injector's webhook selector then decides, and what WaitReady expects.
	if !workload.SidecarExpected(stored.Labels, nil, nil) {
		t.Error("after the move, pods of the namespace would not be injected")
	}
	// Again, to another revision: idempotent and still exclusive.
	if _, err := MoveToRevision(ctx, env.Kube, ns, "canary-2"); err != nil {
		t.Fatal(err)
	}
	if stored, _ = env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); stored.Labels[istionames.RevisionLabel] != "canary-2" {
		t.Errorf("second move: %v", stored.Labels)
	}

	foreign := env.Namespace(t, "foreign", nil)
	if err := patchLabels(ctx, env.Kube, foreign, map[string]any{ownership.ManagedByKey: nil, istionames.InjectionLabel: "enabled"}); err != nil {
		t.Fatal(err)
	}
	if _, err := MoveToRevision(ctx, env.Kube, foreign, "canary"); err == nil || !strings.Contains(err.Error(), "refusing to relabel a namespace meshconform did not create") {
		t.Errorf("foreign namespace: %v", err)
	}
	if got, _ := env.Kube.CoreV1().Namespaces().Get(ctx, foreign, metav1.GetOptions{}); got.Labels[istionames.InjectionLabel] != "enabled" {
		t.Errorf("the foreign namespace was changed: %v", got.Labels)
	}
	for _, bad := range []string{"default", "Bad_Rev", ""} {
		if _, err := MoveToRevision(ctx, env.Kube, ns, bad); err == nil {
			t.Errorf("revision %q accepted", bad)
		}
	}
	if _, err := MoveToRevision(ctx, env.Kube, "no-such-namespace", "canary"); !apierrors.IsNotFound(err) {
		t.Errorf("missing namespace: %v", err)
	}
}

func patchLabels(ctx context.Context, kube kubernetes.Interface, ns string, labels map[string]any) error {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	_, err := kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", b, metav1.PatchOptions{})
	return err
}

// The restart as `kubectl rollout restart` does it: only the pod template's annotation changes,
// the generation moves on, and WaitRestarted waits for pods of the new template, not for the
// old pod a plain readiness wait would accept.
func TestTier1RolloutRestart(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := CreateNamespace(ctx, env.Kube, run, Client, workload.InjectionOn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := workload.Deploy(ctx, env.Kube, ns, workload.Sleep); err != nil {
		t.Fatal(err)
	}
	deps := env.Kube.AppsV1().Deployments(ns)
	before, err := deps.Get(ctx, "sleep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	stamp, err := RolloutRestart(ctx, env.Kube, ns, "sleep", at)
	if err != nil {
		t.Fatal(err)
	}
	if stamp != "2026-01-02T02:04:05.000000006Z" {
		t.Errorf("stamp %s", stamp)
	}
	after, err := deps.Get(ctx, "sleep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Template.Annotations[RestartedAtAnnotation] != stamp || after.Generation != before.Generation+1 {
		t.Errorf("after the restart: annotations %v, generation %d (was %d)", after.Spec.Template.Annotations, after.Generation, before.Generation)
	}
	if after.Spec.Template.Spec.Containers[0].Image != before.Spec.Template.Spec.Containers[0].Image ||
		after.Spec.Template.Labels["app"] != "sleep" || after.Spec.Template.Labels[workload.SampleKey] != "sleep" {
		t.Errorf("the restart changed more than the annotation: %+v", after.Spec.Template)
	}
	// A second restart differs from the first even within the same second.
	stamp2, err := RolloutRestart(ctx, env.Kube, ns, "sleep", at.Add(time.Millisecond))
	if err != nil || stamp2 == stamp {
		t.Fatalf("second restart: %s %v", stamp2, err)
	}
	if _, err := RolloutRestart(ctx, env.Kube, ns, "nope", at); err == nil || !strings.Contains(err.Error(), "rollout restart of deployment "+ns+"/nope") {
		t.Errorf("missing deployment: %v", err)
	}

	// Play the deployment controller and the kubelet: an old pod, still running and ready,
	// beside a new one of the restarted template.
	cur, err := deps.Get(ctx, "sleep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldPod := runningPod(t, ctx, env.Kube, ns, "sleep-old", "")
	newPod := runningPod(t, ctx, env.Kube, ns, "sleep-new", stamp2)
	setStatus(t, ctx, env.Kube, cur, 2, 1, 2)
	_, err = WaitRestarted(ctx, env.Kube, ns, "sleep", stamp2, false, 2*time.Second, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 old replica(s) still running") || !strings.Contains(err.Error(), "pod sleep-old: from the old template") {
		t.Fatalf("with the old pod still there: %v", err)
	}
	// Without a data plane (DATAPLANE=0) no injected pod runs and the old pod never gives way:
	// there the restart is done once a pod of the new template is admitted.
	if got, err := WaitRestarted(ctx, env.Kube, ns, "sleep", stamp2, true, 2*time.Second, 100*time.Millisecond); err != nil || got.UID != newPod.UID {
		t.Errorf("admitted restart with the old pod still there: %v, %v; want %s", podName(got), err, newPod.Name)
	}
	// The old pod goes (never bound to a node, it is removed at once); the rollout completes.
	if err := env.Kube.CoreV1().Pods(ns).Delete(ctx, oldPod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	setStatus(t, ctx, env.Kube, cur, 1, 1, 1)
	got, err := WaitRestarted(ctx, env.Kube, ns, "sleep", stamp2, false, 30*time.Second, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != newPod.UID {
		t.Errorf("returned pod %s, want %s", got.Name, newPod.Name)
	}
}

// runningPod writes a pod of the sleep Deployment as the deployment controller and a kubelet
// would leave it: the template's labels and (if stamp) restartedAt annotation, Running, Ready.
func runningPod(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name, stamp string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "sleep"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "curl", Image: "docker.io/curlimages/curl:8.11.1"}}}}
	if stamp != "" {
		p.Annotations = map[string]string{RestartedAtAnnotation: stamp}
	}
	p, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if p, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func setStatus(t *testing.T, ctx context.Context, kube kubernetes.Interface, d *appsv1.Deployment, replicas, updated, available int32) {
	t.Helper()
	cur, err := kube.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status = appsv1.DeploymentStatus{ObservedGeneration: cur.Generation, Replicas: replicas, UpdatedReplicas: updated,
		ReadyReplicas: available, AvailableReplicas: available}
	if _, err := kube.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Proxy versions read from pods as the API server stores them (an injector's output: a native
// sidecar and a classic one), and kept on the namespace for later phases.
func TestTier1ProxyVersionsAndRecords(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	run := newRun(t, env.Kube)
	ns, err := CreateNamespace(ctx, env.Kube, run, Client, workload.InjectionOn)
	if err != nil {
		t.Fatal(err)
	}
	native := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleep-1", Namespace: ns,
			Labels: map[string]string{"app": "sleep", "security.istio.io/tlsMode": "istio"},
			Annotations: map[string]string{"istio.io/rev": "canary",
				istionames.StatusAnnotation: `{"initContainers":["istio-init","istio-proxy"],"containers":null,"revision":"canary"}`}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{
				{Name: "istio-init", Image: "docker.io/istio/proxyv2:1.31.1"},
				{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.31.1", RestartPolicy: &always},
			},
			Containers: []corev1.Container{{Name: "curl", Image: "docker.io/curlimages/curl:8.11.1"}},
		},
	}
	classic := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin-1", Namespace: ns, Labels: map[string]string{"app": "httpbin", "istio.io/rev": "default"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "httpbin", Image: "docker.io/mccutchen/go-httpbin:v2.15.0"},
			{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.30.5"},
		}},
	}
	// Read back as stored: what the specs see.
	for _, p := range []**corev1.Pod{&native, &classic} {
		if *p, err = env.Kube.CoreV1().Pods(ns).Create(ctx, *p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if *p, err = env.Kube.CoreV1().Pods(ns).Get(ctx, (*p).Name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	p, err := ProxyOf(native)
	if err != nil || !p.Native || !p.Is("1.31.1") || p.Is("1.30.5") {
		t.Errorf("native sidecar: %+v %v", p, err)
	}
	if rev, from := InjectedRevision(native); rev != "canary" || from != "annotation istio.io/rev" {
		t.Errorf("native sidecar injected by %q (%s)", rev, from)
	}
	p, err = ProxyOf(classic)
	if err != nil || p.Native || !p.Is("1.30.5") {
		t.Errorf("classic sidecar: %+v %v", p, err)
	}

	rec, err := RecordPod(ctx, env.Kube, native, gate.Before)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RecordPod(ctx, env.Kube, classic, gate.Before); err != nil {
		t.Fatal(err)
	}
	got, err := Recorded(ctx, env.Kube, ns, "sleep")
	if err != nil {
		t.Fatal(err)
	}
	want := Record{Pod: "sleep-1", UID: string(native.UID), Image: "docker.io/istio/proxyv2:1.31.1", Version: "1.31.1", Phase: gate.Before}
	if got != want || rec != want || native.UID == "" {
		t.Errorf("record %+v, want %+v", got, want)
	}
	if got, _ := Recorded(ctx, env.Kube, ns, "httpbin"); got.Version != "1.30.5" || got.UID != string(classic.UID) {
		t.Errorf("the second record replaced or lost the first: %+v", got)
	}
	if _, err := Recorded(ctx, env.Kube, ns, "nginx"); err == nil || !strings.Contains(err.Error(), "has no annotation upgrade.meshconform.io/nginx: phase before records it") {
		t.Errorf("missing record: %v", err)
	}
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns, Labels: map[string]string{"app": "plain-client"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "curl", Image: "docker.io/curlimages/curl:8.11.1"}}}}
	if _, err := RecordPod(ctx, env.Kube, plain, gate.Before); err == nil || !strings.Contains(err.Error(), "has no istio-proxy container") {
		t.Errorf("plain pod recorded: %v", err)
	}
}

func podName(p *corev1.Pod) string {
	if p == nil {
		return "no pod"
	}
	return p.Name
}
