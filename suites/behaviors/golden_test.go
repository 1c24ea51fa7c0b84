package behaviors

import (
	"meshconform/internal/istiosrc"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestAllRunningSeesTheNativeSidecar: Istio's golden pod with native sidecars (istio-proxy an
// init container with restartPolicy Always). Its app running while the proxy crash-loops is
// not "all running": the proxy's state is in initContainerStatuses.
func TestAllRunningSeesTheNativeSidecar(t *testing.T) {
	p := goldenPod(t, istiosrc.Release131, "hello.yaml.cni.injected")
	var native bool
	for _, c := range p.Spec.InitContainers {
		native = native || (c.Name == "istio-proxy" && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways)
	}
	if !native {
		t.Fatalf("Istio's golden pod has no native istio-proxy sidecar; init containers %v", p.Spec.InitContainers)
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	crashing := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "hello", State: running}}
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "istio-validation", State: done},
		{Name: "istio-proxy", State: crashing, RestartCount: 3},
	}
	if allRunning(p) {
		t.Error("all running while the native istio-proxy sidecar is in CrashLoopBackOff")
	}
	p.Status.InitContainerStatuses[1].State = running
	if !allRunning(p) {
		t.Error("not all running with the app and the native sidecar running (istio-validation completed)")
	}
	p.Status.ContainerStatuses = nil
	if allRunning(p) {
		t.Error("all running with no status for the app container")
	}
}
