package dataplane

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/catalog"
	"meshconform/framework/istionames"
	"meshconform/framework/report"
	"meshconform/framework/workload"
)

func TestSidecarMode(t *testing.T) {
	if ModeSidecar != report.ModeSidecar {
		t.Errorf("ModeSidecar %q, the report's default mode %q", ModeSidecar, report.ModeSidecar)
	}
	var dp DataPlane = Sidecar{Running: true}
	if dp.Mode() != ModeSidecar {
		t.Errorf("Mode() = %q", dp.Mode())
	}
	// The catalog's shapes are the sidecar's: every expectation maps to itself.
	for _, e := range catalog.Expectations() {
		if got := dp.Outcome(e); got.String() != e.String() {
			t.Errorf("Outcome(%s) = %s", e.Name, got)
		}
	}
}

// TestSidecarInjection: a plain namespace is labelled off (explicitly, against a cluster-wide
// default), a meshed one on, or with the revision under a revisioned control plane.
func TestSidecarInjection(t *testing.T) {
	for _, tc := range []struct {
		meshed bool
		rev    string
		want   map[string]string
	}{
		{false, "", map[string]string{istionames.InjectionLabel: istionames.InjectionDisabled}},
		{false, "canary", map[string]string{istionames.InjectionLabel: istionames.InjectionDisabled}},
		{true, "", map[string]string{istionames.InjectionLabel: istionames.InjectionEnabled}},
		{true, "canary", map[string]string{istionames.RevisionLabel: "canary"}},
	} {
		got, err := Sidecar{}.Injection(tc.meshed, tc.rev).Labels()
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("meshed=%v rev=%q: %v %v, want %v", tc.meshed, tc.rev, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("meshed=%v rev=%q: %v, want %v", tc.meshed, tc.rev, got, tc.want)
			}
		}
	}
}

// TestSidecarReadiness: a running data plane waits for ready proxies; without one (DATAPLANE=0)
// only for pods admitted with the proxy where the injector puts it.
func TestSidecarReadiness(t *testing.T) {
	if got := (Sidecar{Running: true}).Readiness(); got != workload.ProxyAuto {
		t.Errorf("running: %v, want ProxyAuto", got)
	}
	if got := (Sidecar{}).Readiness(); got != workload.ProxyAdmitted {
		t.Errorf("not running: %v, want ProxyAdmitted", got)
	}
}

// TestSidecarProxyContainer finds the proxy among containers and among native-sidecar init
// containers, and names the pod when it has none.
func TestSidecarProxyContainer(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "p"}
	classic := &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: istionames.ProxyContainerName}}}}
	native := &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}},
		InitContainers: []corev1.Container{{Name: istionames.ProxyContainerName, RestartPolicy: &always}}}}
	plain := &corev1.Pod{ObjectMeta: meta, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	for name, p := range map[string]*corev1.Pod{"classic": classic, "native": native} {
		if c, err := (Sidecar{}).ProxyContainer(p); err != nil || c != istionames.ProxyContainerName {
			t.Errorf("%s: %q, %v", name, c, err)
		}
	}
	if _, err := (Sidecar{}).ProxyContainer(plain); err == nil || !strings.Contains(err.Error(), "ns/p has no istio-proxy") {
		t.Errorf("plain pod: %v", err)
	}
}

// TestProxylessMode: proxyless is a mode of its own in reports, joins namespaces as the sidecar
// mode does (its samples select the grpc-agent template themselves), waits for ready agents, and
// has no proxy to probe from.
func TestProxylessMode(t *testing.T) {
	var dp DataPlane = Proxyless{}
	if dp.Mode() != ModeProxyless || ModeProxyless != report.ModeProxyless {
		t.Errorf("Mode() = %q, report's %q", dp.Mode(), report.ModeProxyless)
	}
	for _, meshed := range []bool{false, true} {
		a, _ := dp.Injection(meshed, "").Labels()
		b, _ := Sidecar{}.Injection(meshed, "").Labels()
		if len(a) != len(b) || a[istionames.InjectionLabel] != b[istionames.InjectionLabel] {
			t.Errorf("meshed=%v: %v, sidecar's %v", meshed, a, b)
		}
	}
	if dp.Readiness() != workload.ProxyAuto {
		t.Errorf("Readiness() = %v", dp.Readiness())
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: istionames.ProxyContainerName}}}}
	if c, err := dp.ProxyContainer(pod); err == nil || !strings.Contains(err.Error(), "no proxy that sends traffic") {
		t.Errorf("ProxyContainer = %q, %v", c, err)
	}
	if got := dp.Outcome(catalog.GRPCNoAllowMatch); got.String() != catalog.GRPCNoAllowMatch.String() {
		t.Errorf("Outcome = %s", got)
	}
}

// TestAmbientMode: ambient enrols meshed namespaces by the dataplane-mode label and no injection
// label, keeps plain ones out, waits for redirection, has no proxy container, and judges the
// catalog's ambient shapes.
func TestAmbientMode(t *testing.T) {
	var dp DataPlane = Ambient{Running: true}
	if dp.Mode() != ModeAmbient || ModeAmbient != report.ModeAmbient {
		t.Errorf("Mode() = %q, report's %q", dp.Mode(), report.ModeAmbient)
	}
	for _, rev := range []string{"", "canary"} {
		got, err := dp.Injection(true, rev).Labels()
		if err != nil || len(got) != 1 || got[istionames.DataplaneModeLabel] != istionames.DataplaneModeAmbient {
			t.Errorf("meshed, rev %q: %v %v, want only %s=%s", rev, got, err, istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient)
		}
		got, err = dp.Injection(false, rev).Labels()
		if err != nil || got[istionames.DataplaneModeLabel] != "" || got[istionames.InjectionLabel] != istionames.InjectionDisabled {
			t.Errorf("plain, rev %q: %v %v, want istio-injection=disabled and no dataplane-mode", rev, got, err)
		}
	}
	if dp.Readiness() != workload.ProxyAmbient || (Ambient{}).Readiness() != workload.ProxyAdmitted {
		t.Errorf("Readiness() = %v running, %v not", dp.Readiness(), Ambient{}.Readiness())
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if c, err := dp.ProxyContainer(pod); err == nil || !strings.Contains(err.Error(), "ns/p: the ambient data plane has no proxy container") {
		t.Errorf("ProxyContainer = %q, %v", c, err)
	}
	for _, e := range catalog.Expectations() {
		if got, want := dp.Outcome(e), catalog.AmbientExpectation(e); got.String() != want.String() {
			t.Errorf("Outcome(%s) = %s, want the catalog's ambient shape %s", e.Name, got, want)
		}
	}
	if got := dp.Outcome(catalog.TCPForbidden); got.Documented.CurlExit != 56 {
		t.Errorf("Outcome(TCPForbidden) documents %s, want ztunnel's reset", got.Documented)
	}
}
