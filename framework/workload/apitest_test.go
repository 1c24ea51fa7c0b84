package workload

// Tier 1: a real kube-apiserver, etcd and kube-controller-manager (namespace controller,
// garbage collector; no scheduler, no kubelet, no deployment controller). Pods and their
// status are written by the tests, through the status subresource, as a kubelet would.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// newRun gives a test its own run id, and removes that run's namespaces when it ends.
func newRun(t *testing.T, kube kubernetes.Interface) string {
	id := ownership.NewRunID()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := Cleanup(ctx, kube, id); err != nil {
			t.Errorf("cleanup of run %s: %v", id, err)
		}
	})
	return id
}

func TestTier1NamespaceLabels(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	run := newRun(t, env.Kube)
	for _, c := range []struct {
		inj        Injection
		want, none string
	}{
		{InjectionOn, "istio-injection=enabled", istionames.RevisionLabel},
		{InjectionOff, "istio-injection=disabled", istionames.RevisionLabel},
		{Revision("canary"), "istio.io/rev=canary", istionames.InjectionLabel},
		{InjectionAmbient, "istio.io/dataplane-mode=ambient", istionames.InjectionLabel},
		{InjectionAmbient, "istio.io/dataplane-mode=ambient", istionames.RevisionLabel},
	} {
		name, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "MTLS_002", RunID: run, Injection: c.inj, Labels: map[string]string{"team": "x"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "mtls-002-"+run+"-") || !ownership.IsDNSLabel(name) {
			t.Errorf("namespace name %q: want mtls-002-%s-<random>", name, run)
		}
		ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		k, v, _ := strings.Cut(c.want, "=")
		if ns.Labels[k] != v || !ownership.Owned(ns.Labels, run) || ns.Labels["team"] != "x" {
			t.Errorf("%s: namespace labels %v, want %s, the ownership labels of %s and team=x", c.inj, ns.Labels, c.want, run)
		}
		if _, ok := ns.Labels[c.none]; ok {
			t.Errorf("%s: namespace has %s=%s; it would fight %s", c.inj, c.none, ns.Labels[c.none], c.want)
		}
	}
	a, err1 := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "same", RunID: run, Injection: InjectionOn})
	b, err2 := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "same", RunID: run, Injection: InjectionOn})
	if err1 != nil || err2 != nil || a == b {
		t.Errorf("two namespaces with one prefix: %q (%v), %q (%v); want two distinct", a, err1, b, err2)
	}
	if _, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "x", RunID: run}); err == nil || !strings.Contains(err.Error(), "workload.InjectionOn") {
		t.Errorf("namespace without Injection: %v, want a refusal naming the options", err)
	}
	if _, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "x", RunID: run, Injection: InjectionOn,
		Labels: map[string]string{ownership.RunIDKey: "other"}}); err == nil {
		t.Error("namespace whose extra labels override the run id was created")
	}
}

func TestTier1DryRunAndDeployEverySample(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "deploy", RunID: run, Injection: InjectionOn})
	if err != nil {
		t.Fatal(err)
	}
	samples := Samples()

	// Server-side dry-run of every manifest: admitted and validated, nothing stored.
	if err := DryRun(ctx, env.Kube, ns, samples...); err != nil {
		t.Fatalf("server-side dry-run: %v", err)
	}
	if deps, err := env.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); err != nil || len(deps.Items) != 0 {
		t.Fatalf("after a dry-run, %d deployments stored (%v)", len(deps.Items), err)
	}

	handles, err := Deploy(ctx, env.Kube, ns, samples...)
	if err != nil {
		t.Fatal(err)
	}
	if len(handles) != len(samples) {
		t.Fatalf("%d handles for %d samples", len(handles), len(samples))
	}
	for i, h := range handles {
		m, _ := Load(samples[i])
		d, err := env.Kube.AppsV1().Deployments(ns).Get(ctx, h.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s: %v", h.Sample, err)
			continue
		}
		for what, l := range map[string]map[string]string{"deployment": d.Labels, "pod template": d.Spec.Template.Labels} {
			if !ownership.Owned(l, run) || l[SampleKey] != string(h.Sample) {
				t.Errorf("%s: %s labels %v lack the ownership labels of %s or %s=%s", h.Sample, what, l, run, SampleKey, h.Sample)
			}
		}
		if got, want := d.Spec.Template.Spec.Containers[0].Image, m.Deployments[0].Spec.Template.Spec.Containers[0].Image; got != want {
			t.Errorf("%s: stored image %s, manifest %s", h.Sample, got, want)
		}
		if _, err := env.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, h.ServiceAccount, metav1.GetOptions{}); err != nil {
			t.Errorf("%s: service account %s: %v", h.Sample, h.ServiceAccount, err)
		}
		if h.Service != "" {
			svc, err := env.Kube.CoreV1().Services(ns).Get(ctx, h.Service, metav1.GetOptions{})
			if err != nil || !ownership.Owned(svc.Labels, run) || svc.Spec.Ports[0].Port != h.Ports[0] {
				t.Errorf("%s: service %s: %v %+v", h.Sample, h.Service, err, svc)
			}
		}
		if want := h.Sample != PlainClient && h.Sample != EchoPlain; h.Sidecar != want {
			t.Errorf("%s: handle says sidecar %t in an injected namespace, want %t", h.Sample, h.Sidecar, want)
		}
	}

	// Server-side apply again: nothing changes, so nothing is written.
	before, _ := env.Kube.AppsV1().Deployments(ns).Get(ctx, "httpbin", metav1.GetOptions{})
	if _, err := Deploy(ctx, env.Kube, ns, Httpbin); err != nil {
		t.Fatalf("second Deploy: %v", err)
	}
	after, _ := env.Kube.AppsV1().Deployments(ns).Get(ctx, "httpbin", metav1.GetOptions{})
	if before.ResourceVersion != after.ResourceVersion {
		t.Errorf("re-applying httpbin changed it (resourceVersion %s → %s)", before.ResourceVersion, after.ResourceVersion)
	}

	// Namespaces not made by Namespace are refused, with the fix.
	foreign := env.Namespace(t, "foreign", nil)
	unlabelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownership.NamespaceName("unmanaged", run, "x")}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, unlabelled, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), unlabelled.Name, metav1.DeleteOptions{})
	})
	if _, err := Deploy(ctx, env.Kube, unlabelled.Name, Httpbin); err == nil || !strings.Contains(err.Error(), "workload.Namespace") {
		t.Errorf("Deploy into an unlabelled namespace: %v", err)
	}
	if err := DeleteNamespaces(ctx, env.Kube, unlabelled.Name); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("DeleteNamespaces of a namespace meshconform did not make: %v", err)
	}
	if err := StartDeletion(ctx, env.Kube, unlabelled.Name); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("StartDeletion of a namespace meshconform did not make: %v", err)
	}
	if ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, unlabelled.Name, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("the refused namespace %s: %v, deletion timestamp %v; want it untouched", unlabelled.Name, err, ns.GetDeletionTimestamp())
	}
	if _, err := Deploy(ctx, env.Kube, "no-such-namespace", Httpbin); err == nil {
		t.Error("Deploy into a missing namespace succeeded")
	}
	if _, err := Deploy(ctx, env.Kube, foreign, "nope"); err == nil || !strings.Contains(err.Error(), "known samples") {
		t.Errorf("Deploy of an unknown sample: %v", err)
	}
}

func TestTier1CleanupDeletesTheRunsNamespacesAndWaits(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := ownership.NewRunID()
	var made []string
	for _, inj := range []Injection{InjectionOn, InjectionOff} {
		ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "cleanup", RunID: run, Injection: inj})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, ns)
	}
	hs, err := Deploy(ctx, env.Kube, made[0], Httpbin, Sleep)
	if err != nil {
		t.Fatal(err)
	}
	createPod(ctx, t, env.Kube, hs[0], "a", false)
	other := env.Namespace(t, "cleanup-other", nil) // another run's namespace stays

	began := time.Now()
	if err := Cleanup(ctx, env.Kube, run); err != nil {
		t.Fatal(err)
	}
	t.Logf("cleanup of %d namespaces took %s", len(made), time.Since(began).Round(time.Millisecond))
	for _, n := range made {
		if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s after Cleanup returned: %v, want NotFound", n, err)
		}
	}
	if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, other, metav1.GetOptions{}); err != nil {
		t.Errorf("another run's namespace %s: %v", other, err)
	}
	if err := Cleanup(ctx, env.Kube, run); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
	if err := Cleanup(ctx, env.Kube, ""); err == nil {
		t.Error("Cleanup with an empty run id would select every run")
	}
}

// StartDeletion returns while the namespaces are still there; WaitTerminating waits for exactly
// the run's namespaces being deleted, leaving the run's others and other runs' alone.
func TestTier1StartDeletionThenWaitTerminating(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := ownership.NewRunID()
	var made []string
	for range 3 {
		ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "async", RunID: run, Injection: InjectionOff})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, ns)
	}
	t.Cleanup(func() { _ = Cleanup(context.Background(), env.Kube, run) })
	hs, err := Deploy(ctx, env.Kube, made[0], Httpbin)
	if err != nil {
		t.Fatal(err)
	}
	createPod(ctx, t, env.Kube, hs[0], "a", false)
	// A finalizer of the test's holds made[0] Terminating: StartDeletion must return anyway.
	const hold = "meshconform.test/hold"
	held, err := env.Kube.CoreV1().Namespaces().Get(ctx, made[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held.Finalizers = append(held.Finalizers, hold)
	if _, err := env.Kube.CoreV1().Namespaces().Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	other := env.Namespace(t, "async-other", nil)
	if err := StartDeletion(ctx, env.Kube, made[0], made[1]); err != nil {
		t.Fatal(err)
	}
	ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, made[0], metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp == nil {
		t.Fatalf("namespace %s right after StartDeletion: %v, deletion timestamp %v; want it there, terminating", made[0], err, ns.GetDeletionTimestamp())
	}
	if !slices.Contains(ns.Finalizers, hold) {
		t.Fatalf("namespace %s lost the test's finalizer: %v", made[0], ns.Finalizers)
	}
	// Released (a merge patch: the namespace controller may have written the object since).
	if _, err := env.Kube.CoreV1().Namespaces().Patch(ctx, made[0], types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := WaitTerminating(ctx, env.Kube, run)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("WaitTerminating waited for %d namespaces, want 2", n)
	}
	for _, name := range made[:2] {
		if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s after WaitTerminating: %v, want NotFound", name, err)
		}
	}
	for _, name := range []string{made[2], other} {
		if ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
			t.Errorf("namespace %s, which nobody deleted: %v, deletion timestamp %v; want it left alone", name, err, ns.GetDeletionTimestamp())
		}
	}
	if _, err := WaitTerminating(ctx, env.Kube, ""); err == nil {
		t.Error("WaitTerminating with an empty run id would select every run")
	}
}

// A pod made by hand (no Deployment) is waited for with BarePods: without it the wait never
// ends ("no Deployment's pod template matches"); with it the pod must still be ready, proxy too.
func TestTier1WaitReadyBarePods(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "bare", RunID: run, Injection: InjectionOn})
	if err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: ns, Labels: map[string]string{"app": "bare"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "docker.io/curlimages/curl:8.11.1"},
			{Name: istionames.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.27.1"}}}}
	if _, err := env.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setPodStatus(ctx, t, env.Kube, ns, "bare", true, false)
	opts := []WaitOption{Timeout(time.Second), Poll(50 * time.Millisecond), Proxy(ProxyRequired)}
	if err := WaitReady(ctx, env.Kube, ns, "app=bare", append(opts, BarePods())...); !IsNotReady(err) || !strings.Contains(err.Error(), "istio-proxy is running but not ready") {
		t.Fatalf("bare pod, proxy not ready: WaitReady said %v", err)
	}
	setPodStatus(ctx, t, env.Kube, ns, "bare", true, true)
	if err := WaitReady(ctx, env.Kube, ns, "app=bare", opts...); !IsNotReady(err) || !strings.Contains(err.Error(), "no Deployment's pod template matches") {
		t.Errorf("bare pod without BarePods: WaitReady said %v; want it waiting for a Deployment", err)
	}
	if err := WaitReady(ctx, env.Kube, ns, "app=bare", append(opts, BarePods())...); err != nil {
		t.Errorf("bare pod ready, BarePods: %v", err)
	}
}

// createPod creates the pod a ReplicaSet would for h, injected (or not) as h.Sidecar says,
// with no node: the API server deletes unscheduled pods at once, so namespaces go quickly.
func createPod(ctx context.Context, t *testing.T, kube kubernetes.Interface, h Handle, suffix string, native bool) *corev1.Pod {
	t.Helper()
	d, err := kube.AppsV1().Deployments(h.Namespace).Get(ctx, h.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: h.Name + "-" + suffix, Namespace: h.Namespace,
			Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	if h.Sidecar {
		proxy := corev1.Container{Name: istionames.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.27.1"}
		if native {
			proxy.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
			p.Spec.InitContainers = append(p.Spec.InitContainers, proxy)
		} else {
			p.Spec.Containers = append(p.Spec.Containers, proxy)
		}
	}
	p, err = kube.CoreV1().Pods(h.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// setPodStatus writes a kubelet-like status: every container running, ready as told; the
// proxy's readiness separately.
func setPodStatus(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name string, appReady, proxyReady bool) {
	t.Helper()
	p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	status := func(c corev1.Container) corev1.ContainerStatus {
		ready := appReady
		if c.Name == istionames.ProxyContainerName {
			ready = proxyReady
		}
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "docker.io/x@sha256:" + strings.Repeat("0", 64),
			ContainerID: "containerd://" + strings.Repeat("1", 64), Ready: ready, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now, PodIP: "10.244.0.10", PodIPs: []corev1.PodIP{{IP: "10.244.0.10"}}}
	for _, c := range p.Spec.InitContainers {
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, status(c))
	}
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, status(c))
	}
	ready := corev1.ConditionFalse
	if appReady && proxyReady {
		ready = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
	}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("writing pod %s status: %v", name, err)
	}
}

// setAvailable writes the status a deployment controller would once its pods are available.
func setAvailable(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now}}}
	if _, err := kube.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("writing deployment %s status: %v", name, err)
	}
}

func TestTier1WaitReadyNeedsConsecutiveReadyObservations(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "ready", RunID: run, Injection: InjectionOn})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Deploy(ctx, env.Kube, ns, Httpbin)
	if err != nil {
		t.Fatal(err)
	}
	h := hs[0]
	pod := createPod(ctx, t, env.Kube, h, "x1", false)
	setAvailable(ctx, t, env.Kube, ns, h.Name)
	setPodStatus(ctx, t, env.Kube, ns, pod.Name, true, true)

	// Observations 1-2 ready; before the 3rd the proxy goes unready (the streak resets);
	// before the 4th it is ready again. With 3 in a row needed, WaitReady returns after
	// the 6th observation, and not before.
	var trace []string
	kube, lists := apitest.CountingPodLists(t, env.Config, ns, func(n int64) {
		switch n {
		case 3:
			setPodStatus(ctx, t, env.Kube, ns, pod.Name, true, false)
			trace = append(trace, "3: proxy unready")
		case 4:
			setPodStatus(ctx, t, env.Kube, ns, pod.Name, true, true)
			trace = append(trace, "4: proxy ready")
		}
	})
	if err := WaitReady(ctx, kube, ns, h.Selector, Consecutive(3), Poll(20*time.Millisecond), Timeout(time.Minute)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if got := lists.Load(); got != 6 {
		t.Errorf("WaitReady returned after %d observations (%v), want 6: two ready, one unready, three ready", got, trace)
	}

	// Ready from the start: exactly N observations.
	kube, lists = apitest.CountingPodLists(t, env.Config, ns, func(int64) {})
	if err := WaitReady(ctx, kube, ns, h.Selector, Consecutive(4), Poll(20*time.Millisecond)); err != nil || lists.Load() != 4 {
		t.Errorf("already ready, Consecutive(4): %v after %d observations, want nil after 4", err, lists.Load())
	}
}

func TestTier1WaitReadyNativeSidecarAndPlainClient(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "native", RunID: run, Injection: Revision("canary")})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Deploy(ctx, env.Kube, ns, Sleep, PlainClient)
	if err != nil {
		t.Fatal(err)
	}
	sleep, plain := hs[0], hs[1]
	if !sleep.Sidecar || plain.Sidecar {
		t.Fatalf("handles: sleep sidecar %t, plain-client sidecar %t; want true, false", sleep.Sidecar, plain.Sidecar)
	}
	sp := createPod(ctx, t, env.Kube, sleep, "n1", true) // the API server accepts the native-sidecar shape
	pp := createPod(ctx, t, env.Kube, plain, "p1", false)
	if _, native, ok := ProxyContainer(sp); !ok || !native {
		t.Fatalf("sleep pod as stored: proxy found %t, native %t", ok, native)
	}
	for _, h := range hs {
		setAvailable(ctx, t, env.Kube, ns, h.Name)
	}
	setPodStatus(ctx, t, env.Kube, ns, sp.Name, true, false)
	setPodStatus(ctx, t, env.Kube, ns, pp.Name, true, true)

	err = WaitReady(ctx, env.Kube, ns, sleep.Selector, Timeout(time.Second), Poll(50*time.Millisecond))
	if !IsNotReady(err) || !strings.Contains(err.Error(), "istio-proxy is running but not ready") {
		t.Fatalf("native sidecar not ready: WaitReady said %v", err)
	}
	setPodStatus(ctx, t, env.Kube, ns, sp.Name, true, true)
	if err := WaitReady(ctx, env.Kube, ns, sleep.Selector, Poll(50*time.Millisecond)); err != nil {
		t.Errorf("native sidecar ready: %v", err)
	}
	if err := WaitReady(ctx, env.Kube, ns, plain.Selector, Poll(50*time.Millisecond)); err != nil {
		t.Errorf("plain client: %v", err)
	}

	got, err := PodFor(ctx, env.Kube, ns, sleep.App)
	if err != nil || got.Name != sp.Name {
		t.Errorf("PodFor(sleep) = %v, %v; want %s", podName(got), err, sp.Name)
	}
	setPodStatus(ctx, t, env.Kube, ns, sp.Name, false, true)
	if _, err := PodFor(ctx, env.Kube, ns, sleep.App); err == nil || !strings.Contains(err.Error(), sp.Name+" (Running, not Ready)") {
		t.Errorf("PodFor with no ready pod: %v", err)
	}
	// Without a data plane the pod as admitted is what a spec reads, ready or not.
	if got, err := AdmittedPodFor(ctx, env.Kube, ns, sleep.App); err != nil || got.Name != sp.Name {
		t.Errorf("AdmittedPodFor with no ready pod = %v, %v; want %s", podName(got), err, sp.Name)
	}
	if _, err := AdmittedPodFor(ctx, env.Kube, ns, "nothing"); err == nil || !strings.Contains(err.Error(), "no pod with app=nothing") {
		t.Errorf("AdmittedPodFor of an absent app: %v", err)
	}
	if _, err := PodFor(ctx, env.Kube, ns, "nothing"); err == nil || !strings.Contains(err.Error(), "no pod with app=nothing") {
		t.Errorf("PodFor of an absent app: %v", err)
	}
}

func podName(p *corev1.Pod) string {
	if p == nil {
		return "<nil>"
	}
	return p.Name
}

func TestTier1WaitReadyTimesOutNamingImagePullBackOff(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "pull", RunID: run, Injection: InjectionOn})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Deploy(ctx, env.Kube, ns, Httpbin)
	if err != nil {
		t.Fatal(err)
	}
	h := hs[0]
	pod := createPod(ctx, t, env.Kube, h, "b1", false)
	// What a kubelet writes when the image cannot be pulled.
	const pullMsg = `Back-off pulling image "docker.io/mccutchen/go-httpbin:v2.15.0": ErrImagePull: not found`
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [httpbin istio-proxy]"},
		},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "httpbin", Image: "docker.io/mccutchen/go-httpbin:v2.15.0", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: pullMsg}}},
			{Name: istionames.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.27.1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}},
		}}
	if _, err := env.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: pod.Name + ".pull", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name, Namespace: ns, UID: pod.UID},
		Type:           corev1.EventTypeWarning, Reason: "Failed", Message: "Error: ImagePullBackOff", Count: 4,
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Source: corev1.EventSource{Component: "kubelet"}}
	if _, err := env.Kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	err = WaitReady(ctx, env.Kube, ns, h.Selector, Timeout(1500*time.Millisecond), Poll(100*time.Millisecond))
	took := time.Since(began)
	if err == nil {
		t.Fatal("WaitReady returned nil for a pod in ImagePullBackOff")
	}
	if took < 1500*time.Millisecond || took > 15*time.Second {
		t.Errorf("WaitReady gave up after %s, want the 1.5s timeout", took)
	}
	msg := err.Error()
	for _, want := range []string{
		" of at most 1.5s (context deadline exceeded)",
		"pod " + pod.Name + ": phase Pending, not Running (httpbin: ImagePullBackOff, istio-proxy: PodInitializing)",
		"deployment httpbin: condition Available is not True",
		"container httpbin (docker.io/mccutchen/go-httpbin:v2.15.0): ready=false restarts=0 waiting: ImagePullBackOff " + pullMsg,
		"condition Ready=False ContainersNotReady",
		"warning events:",
		"Pod/" + pod.Name + " Failed (x4): Error: ImagePullBackOff",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("timeout message lacks %q; it reads:\n%s", want, msg)
		}
	}
	t.Logf("timeout message:\n%s", msg)
}

func TestTier1ImagesAreWhatTheDeploymentsRun(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "images", RunID: run, Injection: InjectionOff})
	if err != nil {
		t.Fatal(err)
	}
	// The echo samples run ISTIO_ECHO_IMAGE in place of their placeholder, which Images leaves out.
	const echo = "meshconform.local/istio/app:1.31.0-dev.20260827124520"
	if _, err := DeployWith(ctx, env.Kube, ns, DeployOptions{EchoImage: echo}, Samples()...); err != nil {
		t.Fatal(err)
	}
	deps, err := env.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: ownership.Selector(run)})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, d := range deps.Items {
		for _, c := range allContainers(&d.Spec.Template.Spec) {
			if !slices.Contains(stored, c.Image) {
				stored = append(stored, c.Image)
			}
		}
	}
	slices.Sort(stored)
	want := append(Images(), echo)
	slices.Sort(want)
	if !slices.Equal(stored, want) {
		t.Errorf("stored deployments run %v; Images() preloads %v, and ISTIO_ECHO_IMAGE is %s", stored, Images(), echo)
	}
}

// DeployWith's AgentImage reaches the stored pod template of the grpc-agent samples only, and a
// second apply with another image replaces it (server-side apply owns the annotation).
func TestTier1DeployWithAgentImage(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "agent", RunID: newRun(t, env.Kube), Injection: InjectionOn})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"hub.test/istio/pilot-agent:1.30.0", "hub.test/istio/pilot-agent:1.31.0"} {
		hs, err := DeployWith(ctx, env.Kube, ns, DeployOptions{AgentImage: img}, GRPCAgent, Curl)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			d, err := env.Kube.AppsV1().Deployments(ns).Get(ctx, h.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, want := d.Spec.Template.Annotations["sidecar.istio.io/proxyImage"], ""
			if h.Sample == GRPCAgent {
				want = img
			}
			if got != want {
				t.Errorf("%s after applying with %s: proxyImage %q, want %q", h.Sample, img, got, want)
			}
		}
	}
}

// Ambient readiness: an enrolled pod is ready only once annotated enrolled. The test writes
// the annotation itself, standing in for Istio's CNI node agent (cni/pkg/util/podutil.go's
// annotationEnabledPatch); it asserts only what the waiter makes of it.
func TestTier1WaitReadyAmbient(t *testing.T) {
	t.Parallel() // its own run id and namespaces: the namespace controller's waits overlap
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	run := newRun(t, env.Kube)
	ns, err := Namespace(ctx, env.Kube, NamespaceSpec{Prefix: "ambient", RunID: run, Injection: InjectionAmbient})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Deploy(ctx, env.Kube, ns, Sleep, PlainClient)
	if err != nil {
		t.Fatal(err)
	}
	sleep, plain := hs[0], hs[1]
	if sleep.Sidecar || plain.Sidecar {
		t.Fatalf("handles in an ambient namespace: sleep sidecar %t, plain-client sidecar %t; want neither", sleep.Sidecar, plain.Sidecar)
	}
	sp := createPod(ctx, t, env.Kube, sleep, "a1", false)
	pp := createPod(ctx, t, env.Kube, plain, "a2", false)
	for _, h := range hs {
		setAvailable(ctx, t, env.Kube, ns, h.Name)
	}
	setPodStatus(ctx, t, env.Kube, ns, sp.Name, true, true)
	setPodStatus(ctx, t, env.Kube, ns, pp.Name, true, true)

	err = WaitReady(ctx, env.Kube, ns, sleep.Selector, Proxy(ProxyAmbient), Timeout(time.Second), Poll(50*time.Millisecond))
	if !IsNotReady(err) || !strings.Contains(err.Error(), `ambient.istio.io/redirection is "", not "enabled"`) {
		t.Fatalf("running and ready, not yet enrolled: WaitReady said %v", err)
	}
	annotate := func(name, value string) {
		t.Helper()
		patch := `{"metadata":{"annotations":{"` + istionames.AmbientRedirectionAnnotation + `":"` + value + `"}}}`
		if _, err := env.Kube.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	annotate(sp.Name, istionames.AmbientRedirectionEnabled)
	if err := WaitReady(ctx, env.Kube, ns, sleep.Selector, Proxy(ProxyAmbient), Poll(50*time.Millisecond)); err != nil {
		t.Errorf("enrolled: %v", err)
	}
	// The plain client opts out by its pod label: ready without the annotation, and not plain
	// with it.
	if err := WaitReady(ctx, env.Kube, ns, plain.Selector, Proxy(ProxyAmbient), Poll(50*time.Millisecond)); err != nil {
		t.Errorf("plain client: %v", err)
	}
	annotate(pp.Name, istionames.AmbientRedirectionEnabled)
	err = WaitReady(ctx, env.Kube, ns, plain.Selector, Proxy(ProxyAmbient), Timeout(time.Second), Poll(50*time.Millisecond))
	if !IsNotReady(err) || !strings.Contains(err.Error(), "should stay out of the mesh") {
		t.Errorf("plain client enrolled: WaitReady said %v", err)
	}
}
