package posture

// Tier 0 on Istio's own injector output: the golden injected specs of pkg/kube/inject
// (testdata/inject/*.injected), read from the module cache at test time.

import (
	"context"
	"meshconform/framework/istionames"
	"meshconform/internal/istiosrc"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// goldenPod is the pod Istio's release-1.31 injector produced for golden file name
// (istiosrc.GoldenPod), in namespace ns.
func goldenPod(t testing.TB, ns, name string) corev1.Pod {
	t.Helper()
	p, err := istiosrc.GoldenPod(context.Background(), istiosrc.Release131, name)
	if err != nil {
		t.Fatal(err)
	}
	p.Namespace = ns
	p.Name = strings.TrimSuffix(name, ".injected")
	return *p
}

// TestCaptureBypassTellsInjectorFromUser: with Istio CNI the injector writes
// excludeInboundPorts "15020" (its status port) on every pod; that is no bypass. A port the
// user excluded is, with or without CNI.
func TestCaptureBypassTellsInjectorFromUser(t *testing.T) {
	cni := goldenPod(t, "apps", "hello.yaml.cni.injected")
	if got := cni.Annotations[istionames.ExcludeInboundPortsAnnotation]; got != "15020" {
		t.Fatalf("Istio's CNI golden pod has %s=%q; this test stands on \"15020\"", istionames.ExcludeInboundPortsAnnotation, got)
	}
	// What the template writes with CNI when the pod said excludeInboundPorts: "9100":
	// excludeInboundPort(15020, "9100") appends the status port (pkg/kube/inject/template.go).
	cniUser := goldenPod(t, "apps", "hello.yaml.cni.injected")
	cniUser.Name = "hello-cni-user"
	cniUser.Annotations[istionames.ExcludeInboundPortsAnnotation] = "9100,15020"
	user := goldenPod(t, "apps", "traffic-annotations.yaml.injected") // no CNI; the user wrote 4,5,6

	s := &snapshot{pods: []corev1.Pod{cni, cniUser, user}}
	o := checkCaptureBypass(s)
	got := map[string]Finding{}
	for _, f := range o.findings {
		got[f.Name+" "+f.Field] = f
	}
	field := func(k string) string { return "metadata.annotations['" + k + "']" }
	want := []string{
		"hello-cni-user " + field(istionames.ExcludeInboundPortsAnnotation),
		"traffic-annotations.yaml " + field(istionames.ExcludeInboundPortsAnnotation),
		"traffic-annotations.yaml " + field(istionames.ExcludeOutboundPortsAnnotation),
		"traffic-annotations.yaml " + field(istionames.ExcludeOutboundIPRangesAnnotation),
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("no finding %q; findings %v", k, o.findings)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d (the CNI pod nobody annotated has none): %v", len(got), len(want), o.findings)
	}
	if m := got["hello-cni-user "+field(istionames.ExcludeInboundPortsAnnotation)].Message; !strings.Contains(m, "port(s) 9100 bypass") || !strings.Contains(m, "15020: the proxy's own") {
		t.Errorf("message %q should name 9100 as the bypass and 15020 as the proxy's", m)
	}
}

func TestStatusPortAsTheInjectorChoseIt(t *testing.T) {
	p := goldenPod(t, "apps", "hello.yaml.cni.injected") // native sidecar: --debug-port=15020
	if got := statusPort(&p); got != "15020" {
		t.Errorf("golden CNI pod: status port %q, want 15020", got)
	}
	for i, c := range p.Spec.InitContainers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
			for j, a := range c.Lifecycle.PreStop.Exec.Command {
				if strings.HasPrefix(a, debugPortFlag) {
					p.Spec.InitContainers[i].Lifecycle.PreStop.Exec.Command[j] = debugPortFlag + "123" // global.proxy.statusPort=123
				}
			}
		}
	}
	if got := statusPort(&p); got != "123" {
		t.Errorf("a mesh-wide status port 123: got %q", got)
	}
	if app, _ := appExcludedInbound(&p, "123"); len(app) != 0 {
		t.Errorf("the mesh's status port 123 counted as the application's: %v", app)
	}
	p.Annotations[istionames.StatusPortAnnotation] = "456"
	if got := statusPort(&p); got != "456" {
		t.Errorf("annotation %s=456: got %q", istionames.StatusPortAnnotation, got)
	}
}
