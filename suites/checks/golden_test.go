package checks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// istio131 is Istio's release-1.31 branch as a module version. istioSource is a private
// stand-in for the shared internal/istiosrc helper: Istio's files come from the module cache
// (downloaded on first use), never from this repository.
const istio131 = "istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad"

func istioSource(t testing.TB, module string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir() // outside this module: go.mod and go.sum stay untouched
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	_ = json.Unmarshal(out, &m)
	if m.Dir == "" {
		t.Fatalf("Istio's source %s is not in the module cache (%v %s): run `go mod download %s` with network access",
			module, err, m.Error, module)
	}
	return m.Dir
}

// goldenPod is the pod Istio's injector produced for golden file name (pkg/kube/inject/
// testdata/inject, a Deployment's template).
func goldenPod(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	path := filepath.Join(istioSource(t, istio131), "pkg", "kube", "inject", "testdata", "inject", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(data), "\n---")
	var d appsv1.Deployment
	if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
		t.Fatalf("%s: not a Deployment (%v)", path, err)
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: d.Name,
		Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations}, Spec: d.Spec.Template.Spec}
}

// TestAllRunningSeesTheNativeSidecar: Istio's golden pod with native sidecars (istio-proxy an
// init container with restartPolicy Always). Its app running while the proxy crash-loops is
// not "all running": the proxy's state is in initContainerStatuses.
func TestAllRunningSeesTheNativeSidecar(t *testing.T) {
	p := goldenPod(t, "hello.yaml.cni.injected")
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
