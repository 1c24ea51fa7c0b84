package workload

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/istionames"
)

// Pods built here have the shapes a kubelet writes; ready_apitest_test.go writes the same
// shapes to a real API server.

func runningReady(name string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: true, Started: ptr(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
}

// meshPod is a Running, Ready pod with an app container and a sidecar, either a regular
// container or (native) an init container with restartPolicy Always.
func meshPod(name string, native bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "httpbin"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "httpbin", Image: "docker.io/mccutchen/go-httpbin:v2.15.0"}}},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{runningReady("httpbin")},
		},
	}
	proxy := corev1.Container{Name: istionames.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.27.1"}
	if native {
		proxy.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		p.Spec.InitContainers = append(p.Spec.InitContainers, proxy)
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, runningReady(istionames.ProxyContainerName))
	} else {
		p.Spec.Containers = append(p.Spec.Containers, proxy)
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, runningReady(istionames.ProxyContainerName))
	}
	return p
}

func availableDeployment() appsv1.Deployment {
	return appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr(int32(1))},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}}},
	}
}

var injected = map[string]string{istionames.InjectionLabel: "enabled"}

func evaluate(ns map[string]string, mode ProxyMode, pods ...*corev1.Pod) []string {
	var ps []corev1.Pod
	for _, p := range pods {
		ps = append(ps, *p)
	}
	return Evaluate(ns, []appsv1.Deployment{availableDeployment()}, ps, mode)
}

func wantReasons(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if len(got) != 0 {
			t.Errorf("%s: want ready, got reasons:\n  %s", what, strings.Join(got, "\n  "))
		}
		return
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: reasons lack %q; got:\n  %s", what, w, strings.Join(got, "\n  "))
		}
	}
}

func TestEvaluateProxyInContainersOrNativeSidecar(t *testing.T) {
	wantReasons(t, "proxy in containers", evaluate(injected, ProxyAuto, meshPod("a", false)))
	wantReasons(t, "native sidecar", evaluate(injected, ProxyAuto, meshPod("a", true)))
	wantReasons(t, "native sidecar, ProxyRequired", evaluate(nil, ProxyRequired, meshPod("a", true)))

	// An istio-proxy init container that is not restartPolicy Always is not a sidecar.
	p := meshPod("a", true)
	p.Spec.InitContainers[0].RestartPolicy = nil
	wantReasons(t, "istio-proxy init container without restartPolicy Always", evaluate(injected, ProxyAuto, p),
		"pod a: no istio-proxy container, but the pod should have a sidecar", "istio-injection=enabled")
}

func TestEvaluateProxyNotReady(t *testing.T) {
	for _, native := range []bool{false, true} {
		p := meshPod("a", native)
		sts := p.Status.ContainerStatuses
		if native {
			sts = p.Status.InitContainerStatuses
		}
		sts[len(sts)-1].Ready = false
		// The kubelet marks the pod not Ready as well; the proxy's own line says why.
		p.Status.Conditions[0] = corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [istio-proxy]"}
		wantReasons(t, "proxy running, not ready", evaluate(injected, ProxyAuto, p),
			"pod a: istio-proxy is running but not ready", "condition Ready is not True (ContainersNotReady: containers with unready status: [istio-proxy])")

		// Even if the pod's Ready condition were stale, the proxy's status alone blocks.
		p.Status.Conditions[0].Status = corev1.ConditionTrue
		wantReasons(t, "proxy not ready under a stale pod condition", evaluate(injected, ProxyAuto, p), "istio-proxy is running but not ready")

		sts[len(sts)-1].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
		wantReasons(t, "proxy waiting", evaluate(injected, ProxyAuto, p), "istio-proxy is not running (waiting: PodInitializing")

		if native {
			p.Status.InitContainerStatuses = nil
		} else {
			p.Status.ContainerStatuses = p.Status.ContainerStatuses[:1]
		}
		wantReasons(t, "proxy without status", evaluate(injected, ProxyAuto, p), "istio-proxy has no status yet")
	}
}

func TestEvaluatePlainPods(t *testing.T) {
	plain := meshPod("c", false)
	plain.Spec.Containers = plain.Spec.Containers[:1]
	plain.Status.ContainerStatuses = plain.Status.ContainerStatuses[:1]
	plain.Labels[istionames.InjectLabel] = "false"
	plain.Annotations = map[string]string{istionames.InjectLabel: "false"}
	wantReasons(t, "plain pod in an injected namespace", evaluate(injected, ProxyAuto, plain))
	wantReasons(t, "no injection anywhere", evaluate(map[string]string{istionames.InjectionLabel: "disabled"}, ProxyAuto, plain))
	wantReasons(t, "ProxyRequired on a plain pod", evaluate(injected, ProxyRequired, plain), "no istio-proxy container")
	wantReasons(t, "ProxyIgnored", evaluate(injected, ProxyIgnored, plain))

	// A plain client that got a sidecar anyway would make every plaintext spec wrong.
	injectedPlain := meshPod("d", false)
	injectedPlain.Labels[istionames.InjectLabel] = "false"
	wantReasons(t, "plain pod with a proxy", evaluate(injected, ProxyAuto, injectedPlain), "pod d: has an istio-proxy container, but should run without a sidecar")
	wantReasons(t, "ProxyForbidden", evaluate(injected, ProxyForbidden, meshPod("e", false)), "pod e: has an istio-proxy container")

	// A mesh pod in a namespace the injector skipped.
	bare := meshPod("f", false)
	bare.Spec.Containers = bare.Spec.Containers[:1]
	bare.Status.ContainerStatuses = bare.Status.ContainerStatuses[:1]
	wantReasons(t, "injection expected, none happened", evaluate(map[string]string{istionames.RevisionLabel: "canary"}, ProxyAuto, bare),
		"pod f: no istio-proxy container", "istio.io/rev=canary", "injector webhook")
}

func TestEvaluatePodsAndDeployments(t *testing.T) {
	wantReasons(t, "no pods", Evaluate(injected, []appsv1.Deployment{availableDeployment()}, nil, ProxyAuto), "no pod")
	wantReasons(t, "no deployment", Evaluate(injected, nil, []corev1.Pod{*meshPod("a", false)}, ProxyAuto), "no Deployment")

	d := availableDeployment()
	d.Generation = 2
	d.Status.AvailableReplicas = 0
	d.Status.Conditions[0].Status = corev1.ConditionFalse
	wantReasons(t, "deployment not available", Evaluate(injected, []appsv1.Deployment{d}, []corev1.Pod{*meshPod("a", false)}, ProxyAuto),
		"generation 2 not yet observed", "0 of 1 replicas available", "condition Available is not True")

	pending := meshPod("b", false)
	pending.Status.Phase = corev1.PodPending
	pending.Status.Conditions = nil
	pending.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: "httpbin", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "docker.io/mccutchen/go-httpbin:v2.15.0"`}}}
	wantReasons(t, "pending pod", evaluate(injected, ProxyAuto, meshPod("a", false), pending),
		"pod b: phase Pending, not Running (httpbin: ImagePullBackOff)", "pod b: condition Ready is not True")

	// A pod being deleted is ignored: its successor and the Deployment's counts decide.
	leaving := pending.DeepCopy()
	leaving.DeletionTimestamp = ptr(metav1.Now())
	wantReasons(t, "terminating pod ignored", evaluate(injected, ProxyAuto, meshPod("a", false), leaving))
	wantReasons(t, "only a terminating pod", evaluate(injected, ProxyAuto, leaving), "no pod")
}

func TestNotReadyErrorNamesWhatWasSeen(t *testing.T) {
	crash := meshPod("httpbin-7d9-x2x", false)
	crash.Spec.NodeName = "kind-worker"
	crash.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [httpbin]"},
	}
	crash.Status.ContainerStatuses[0] = corev1.ContainerStatus{
		Name: "httpbin", RestartCount: 5,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 2m40s restarting failed container=httpbin"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}},
	}
	d := availableDeployment()
	d.Status.AvailableReplicas, d.Status.ReadyReplicas = 0, 0
	d.Status.Conditions[0].Status = corev1.ConditionFalse
	obs := Observation{Deployments: []appsv1.Deployment{d}, Pods: []corev1.Pod{*crash}}
	obs.Reasons = Evaluate(injected, obs.Deployments, obs.Pods, ProxyAuto)
	err := error(&NotReadyError{Namespace: "mtls-abc", Selector: "app=httpbin", Waited: 3*time.Minute + 120*time.Millisecond, Bound: 3 * time.Minute, Cause: errors.New("context deadline exceeded"),
		Streak: 0, Consecutive: 3, Observations: 360, Last: obs,
		Events: []string{"Pod/httpbin-7d9-x2x BackOff (x12): Back-off restarting failed container httpbin"}})
	msg := err.Error()
	for _, want := range []string{
		"app=httpbin in namespace mtls-abc not ready after 3m0.12s of at most 3m0s (context deadline exceeded)",
		"360 observation(s), the last 0 ready in a row of 3 needed",
		"pod httpbin-7d9-x2x: condition Ready is not True (ContainersNotReady: containers with unready status: [httpbin]) (httpbin: CrashLoopBackOff)",
		"pod httpbin-7d9-x2x: phase Running on kind-worker",
		"condition Ready=False ContainersNotReady: containers with unready status: [httpbin]",
		"container httpbin (docker.io/mccutchen/go-httpbin:v2.15.0): ready=false restarts=5 waiting: CrashLoopBackOff back-off 2m40s",
		"last terminated: Error exit 2",
		"container istio-proxy (docker.io/istio/proxyv2:1.27.1): ready=true restarts=0 running since",
		"deployment httpbin: want 1, updated 1, ready 0, available 0",
		"condition Available=False MinimumReplicasAvailable",
		"warning events:\n  Pod/httpbin-7d9-x2x BackOff (x12)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q; it reads:\n%s", want, msg)
		}
	}
	if !IsNotReady(err) || !errors.Is(err, err.(*NotReadyError).Cause) {
		t.Errorf("IsNotReady/Unwrap do not see through %T", err)
	}
	t.Logf("the message a user sees:\n%s", msg)
}

// ProxyAdmitted (DATAPLANE=0): an injected pod whose proxy image does not exist never starts,
// and its Deployment is never available; what counts is that the injector wrote the proxy
// where it belongs and nowhere else.
func TestEvaluateAdmitted(t *testing.T) {
	for _, native := range []bool{false, true} {
		p := meshPod("a", native)
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "istio-init", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull"}}}}}
		never := availableDeployment()
		never.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UnavailableReplicas: 1}
		wantReasons(t, "injected, never started, admitted", Evaluate(injected, []appsv1.Deployment{never}, []corev1.Pod{*p}, ProxyAdmitted))
		wantReasons(t, "injected, never started, auto", Evaluate(injected, []appsv1.Deployment{never}, []corev1.Pod{*p}, ProxyAuto),
			"pod a: phase Pending, not Running", "deployment httpbin: 0 of 1 replicas available")
	}
	plain := meshPod("c", false)
	plain.Spec.Containers = plain.Spec.Containers[:1]
	wantReasons(t, "plain pod in an injected namespace", evaluate(injected, ProxyAdmitted, plain),
		"pod c: no istio-proxy container, but the pod should have a sidecar")
	wantReasons(t, "sidecar where none belongs", evaluate(nil, ProxyAdmitted, meshPod("d", false)), "pod d: has an istio-proxy container, but should run without a sidecar")
	if got := Evaluate(injected, nil, nil, ProxyAdmitted); len(got) != 2 {
		t.Errorf("no Deployment and no pod yet: %v, want both said", got)
	}
}

// ProxyAmbient: an ambient pod keeps its spec (no proxy container) and is ready once the CNI
// node agent has annotated it enrolled; a pod opted out must carry no redirection at all.
func TestEvaluateAmbient(t *testing.T) {
	ambientNS := map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient}
	pod := func(name string, labels, annotations map[string]string) *corev1.Pod {
		p := meshPod(name, false)
		p.Spec.Containers = p.Spec.Containers[:1]
		p.Status.ContainerStatuses = p.Status.ContainerStatuses[:1]
		for k, v := range labels {
			p.Labels[k] = v
		}
		p.Annotations = annotations
		return p
	}
	enabled := map[string]string{istionames.AmbientRedirectionAnnotation: istionames.AmbientRedirectionEnabled}
	pending := map[string]string{istionames.AmbientRedirectionAnnotation: istionames.AmbientRedirectionPending}
	optOut := map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeNone}

	wantReasons(t, "enrolled pod", evaluate(ambientNS, ProxyAmbient, pod("a", nil, enabled)))
	wantReasons(t, "not annotated yet", evaluate(ambientNS, ProxyAmbient, pod("b", nil, nil)),
		`pod b: ambient.istio.io/redirection is "", not "enabled"`)
	wantReasons(t, "pending", evaluate(ambientNS, ProxyAmbient, pod("c", nil, pending)),
		`pod c: ambient.istio.io/redirection is "pending", not "enabled"`)
	wantReasons(t, "plain client opted out", evaluate(ambientNS, ProxyAmbient, pod("d", optOut, nil)))
	wantReasons(t, "plain client enrolled anyway", evaluate(ambientNS, ProxyAmbient, pod("e", optOut, enabled)),
		`pod e: ambient.istio.io/redirection="enabled", but the pod should stay out of the mesh (pod label istio.io/dataplane-mode="none")`)
	wantReasons(t, "unenrolled namespace", evaluate(map[string]string{istionames.InjectionLabel: "disabled"}, ProxyAmbient, pod("f", nil, nil)))
	wantReasons(t, "pod enrolled by its own label", evaluate(nil, ProxyAmbient,
		pod("g", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient}, nil)), "pod g: ambient.istio.io/redirection")
	wantReasons(t, "a sidecar in an ambient pod", evaluate(ambientNS, ProxyAmbient, func() *corev1.Pod {
		p := meshPod("h", true)
		p.Annotations = enabled
		return p
	}()), "pod h: has an istio-proxy container, and an ambient pod has none")
	notReady := pod("i", nil, enabled)
	notReady.Status.Phase = corev1.PodPending
	wantReasons(t, "annotated, not running", evaluate(ambientNS, ProxyAmbient, notReady), "pod i: phase Pending, not Running")
}
