package behaviors

import (
	"context"
	"strings"
	"testing"
	"time"

	"istio.io/api/annotation"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"meshconform/framework/istionames"
	"meshconform/internal/istiosrc"
)

// Istio's sidecar injector golden files (pkg/kube/inject/testdata/inject in istio.io/istio;
// Istio's inject_test.go regenerates each <case>.injected from <case> with the real injection
// template), read from the pinned branches' source at test time (internal/istiosrc).
const (
	// goldenRewritten: a Deployment whose containers have HTTP probes, injected with Istio's
	// defaults: native sidecar (istio-proxy among the init containers, restartPolicy Always),
	// container hello's probes rewritten to the status port, the originals in
	// ISTIO_KUBE_APP_PROBERS. Container hello's liveness probe names its port ("http").
	goldenRewritten = "hello-probes.yaml"
	// goldenNoRewrite: the same with sidecar.istio.io/rewriteAppHTTPProbers: "false".
	goldenNoRewrite = "hello-probes-with-flag-unset-in-annotation.yaml"
	// goldenClassic: a pod injected with native sidecars off (inject_test.go runs
	// native-sidecar.yaml with features.NativeSidecarModeDisabled): istio-proxy among the
	// containers, and the readiness probe of the pod's own native sidecar other-sidecar
	// rewritten.
	goldenClassic    = "native-sidecar.yaml"
	goldenClassicOut = "native-sidecar-old-version.yaml.injected"
	// goldenContainer is the container of goldenRewritten and goldenNoRewrite the checks read.
	goldenContainer = "hello"
)

// goldenPod is Istio's injector golden file name on branch b as a Pod (istiosrc.GoldenPod).
func goldenPod(t testing.TB, b istiosrc.Branch, name string) *corev1.Pod {
	t.Helper()
	p, err := istiosrc.GoldenPod(context.Background(), b, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenContainerOf is container name as golden file file (an input, before injection) writes
// it.
func goldenContainerOf(t *testing.T, b istiosrc.Branch, file, name string) corev1.Container {
	t.Helper()
	if c := findContainer(goldenPod(t, b, file), name); c != nil {
		return *c
	}
	t.Fatalf("golden %s has no container %s", file, name)
	return corev1.Container{}
}

// eachBranch runs f for every pinned Istio branch.
func eachBranch(t *testing.T, f func(t *testing.T, b istiosrc.Branch)) {
	for _, b := range istiosrc.Branches {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

func proxyOf(p *corev1.Pod) *corev1.Container { return findContainer(p, istionames.ProxyContainerName) }

func setProbers(p *corev1.Pod, v string) *corev1.Pod {
	p = p.DeepCopy()
	c := proxyOf(p)
	for i := range c.Env {
		if c.Env[i].Name == KubeAppProbersEnv {
			c.Env[i].Value = v
		}
	}
	return p
}

func TestConstantsAreIstios(t *testing.T) {
	if istionames.RewriteAppHTTPProbersAnnotation != annotation.SidecarRewriteAppHTTPProbers.Name {
		t.Errorf("istionames.RewriteAppHTTPProbersAnnotation %q, Istio's %q", istionames.RewriteAppHTTPProbersAnnotation, annotation.SidecarRewriteAppHTTPProbers.Name)
	}
	if istionames.StatusPortAnnotation != annotation.SidecarStatusPort.Name {
		t.Errorf("istionames.StatusPortAnnotation %q, Istio's %q", istionames.StatusPortAnnotation, annotation.SidecarStatusPort.Name)
	}
	r, l := ProberPaths("app")
	if r != "/app-health/app/readyz" || l != "/app-health/app/livez" {
		t.Errorf("ProberPaths(app) = %s, %s", r, l)
	}
}

// withoutProxy drops istio-proxy (a native sidecar among the init containers, or a container).
func withoutProxy(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	drop := func(cs []corev1.Container) []corev1.Container {
		var out []corev1.Container
		for _, c := range cs {
			if c.Name != istionames.ProxyContainerName {
				out = append(out, c)
			}
		}
		return out
	}
	p.Spec.InitContainers, p.Spec.Containers = drop(p.Spec.InitContainers), drop(p.Spec.Containers)
	return p
}

// nativeProxy is istio-proxy among p's init containers.
func nativeProxy(p *corev1.Pod) *corev1.Container {
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == istionames.ProxyContainerName {
			return &p.Spec.InitContainers[i]
		}
	}
	return nil
}

func TestCheckProbeRewritten(t *testing.T) { eachBranch(t, testCheckProbeRewritten) }

func testCheckProbeRewritten(t *testing.T, b istiosrc.Branch) {
	native := goldenPod(t, b, goldenRewritten+".injected")
	original := goldenContainerOf(t, b, goldenRewritten, goldenContainer)
	want := WantOriginal(original)

	mutate := func(f func(p *corev1.Pod)) *corev1.Pod {
		p := native.DeepCopy()
		f(p)
		return p
	}
	hello := func(p *corev1.Pod) *corev1.Container { return findContainer(p, goldenContainer) }

	cases := []struct {
		name      string
		pod       *corev1.Pod
		container string
		opts      []RewriteOption
		errs      []string
	}{
		{name: "native sidecar", pod: native},
		// The manifest's liveness probe names its port ("http"): resolved to 80 as the
		// injector recorded it.
		{name: "native sidecar, originals compared with the manifest", pod: native, opts: []RewriteOption{want}},
		{name: "classic sidecar", pod: goldenPod(t, b, goldenClassicOut), container: "other-sidecar",
			opts: []RewriteOption{WantOriginal(goldenContainerOf(t, b, goldenClassic, "other-sidecar"))}},
		{name: "status port moved by annotation", opts: []RewriteOption{want},
			pod: mutate(func(p *corev1.Pod) {
				p.Annotations[istionames.StatusPortAnnotation] = "15030"
				hello(p).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(15030)
				hello(p).LivenessProbe.HTTPGet.Port = intstr.FromInt32(15030)
			})},
		{name: "status port annotation not followed",
			pod:  mutate(func(p *corev1.Pod) { p.Annotations[istionames.StatusPortAnnotation] = "15030" }),
			errs: []string{"readiness probe is httpGet /app-health/hello/readyz on port 15020, want httpGet /app-health/hello/readyz on port 15030"}},
		{name: "not rewritten (rewrite off)", pod: goldenPod(t, b, goldenNoRewrite+".injected"),
			errs: []string{"the injector did not rewrite", "readiness probe is httpGet  on port 3333, want httpGet /app-health/hello/readyz on port 15020",
				"liveness probe is httpGet  on port http", `no "/app-health/hello/readyz" entry`, `rewriteAppHTTPProbers="false"`}},
		{name: "liveness left alone",
			pod:  mutate(func(p *corev1.Pod) { hello(p).LivenessProbe.HTTPGet.Path = "/status/200" }),
			errs: []string{"liveness probe is httpGet /status/200 on port 15020, want httpGet /app-health/hello/livez on port 15020"}},
		{name: "liveness dropped while the manifest has one", opts: []RewriteOption{want},
			pod:  mutate(func(p *corev1.Pod) { hello(p).LivenessProbe = nil }),
			errs: []string{"container hello has no liveness probe"}},
		{name: "readiness dropped",
			pod:  mutate(func(p *corev1.Pod) { hello(p).ReadinessProbe = nil }),
			errs: []string{"container hello has no readiness probe"}},
		{name: "originals not recorded",
			pod:  setProbers(native, ""),
			errs: []string{`ISTIO_KUBE_APP_PROBERS has no "/app-health/hello/readyz" entry for the original readiness probe (keys: none)`}},
		{name: "another original than the manifest's", opts: []RewriteOption{want},
			pod:  setProbers(native, `{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"path":"/status/500","port":3333}}}`),
			errs: []string{`ISTIO_KUBE_APP_PROBERS["/app-health/hello/readyz"] is httpGet /status/500 on port 3333, want the original httpGet  on port 3333`}},
		{name: "original points at the status port",
			pod:  setProbers(native, `{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"path":"/app-health/hello/readyz","port":15020}}}`),
			errs: []string{"the status port itself"}},
		{name: "an empty original",
			pod:  setProbers(native, `{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{}}`),
			errs: []string{`ISTIO_KUBE_APP_PROBERS["/app-health/hello/readyz"] has no probe action`}},
		{name: "unreadable originals", pod: setProbers(native, `{"/app-health/hello/readyz":`),
			errs: []string{"ISTIO_KUBE_APP_PROBERS of istio-proxy is not the injector's JSON"}},
		{name: "not injected", pod: withoutProxy(native),
			errs: []string{"has no istio-proxy container (nor native sidecar): it was not injected"}},
		{name: "an istio-proxy init container that is not a sidecar",
			pod:  mutate(func(p *corev1.Pod) { nativeProxy(p).RestartPolicy = nil }),
			errs: []string{"it was not injected"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			container := c.container
			if container == "" {
				container = goldenContainer
			}
			err := CheckProbeRewritten(c.pod, container, c.opts...)
			if len(c.errs) == 0 {
				if err != nil {
					t.Fatalf("want pass: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got pass", c.errs)
			}
			for _, w := range c.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	if err := CheckProbeRewritten(native, "web"); err == nil || !strings.Contains(err.Error(), "has no container web (containers: istio-init (init), istio-proxy (init), hello, world)") {
		t.Errorf("unknown container: %v", err)
	}
}

func TestCheckNotRewritten(t *testing.T) { eachBranch(t, testCheckNotRewritten) }

func testCheckNotRewritten(t *testing.T, b istiosrc.Branch) {
	norewrite := goldenPod(t, b, goldenNoRewrite+".injected")
	if err := CheckNotRewritten(norewrite, goldenContainer); err != nil {
		t.Fatalf("the rewrite-off pod: %v", err)
	}
	err := CheckNotRewritten(goldenPod(t, b, goldenRewritten+".injected"), goldenContainer)
	if err == nil {
		t.Fatal("a rewritten pod passed CheckNotRewritten")
	}
	for _, w := range []string{"PROBE-002", "readiness probe is httpGet /app-health/hello/readyz on port 15020: rewritten to the proxy",
		"liveness probe is httpGet /app-health/hello/livez", `ISTIO_KUBE_APP_PROBERS has an entry "/app-health/hello/readyz"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	// Probes untouched but the originals recorded anyway: half a rewrite is still one.
	half := norewrite.DeepCopy()
	proxyOf(half).Env = append(proxyOf(half).Env, corev1.EnvVar{Name: KubeAppProbersEnv,
		Value: `{"/app-health/hello/readyz":{"httpGet":{"port":3333}}}`})
	if err := CheckNotRewritten(half, goldenContainer); err == nil || !strings.Contains(err.Error(), `has an entry "/app-health/hello/readyz"`) {
		t.Errorf("recorded originals: %v", err)
	}
	// An uninjected pod's probes are untouched too, and prove nothing.
	if err := CheckNotRewritten(withoutProxy(norewrite), goldenContainer); err == nil || !strings.Contains(err.Error(), "not injected") {
		t.Errorf("uninjected pod: %v", err)
	}
	noProbe := norewrite.DeepCopy()
	findContainer(noProbe, goldenContainer).ReadinessProbe = nil
	if err := CheckNotRewritten(noProbe, goldenContainer); err == nil || !strings.Contains(err.Error(), "no readiness probe") {
		t.Errorf("no readiness probe: %v", err)
	}
}

// TestGoldensAreWhatTheCasesNeed: the golden files chosen above still have the shapes the
// cases rely on, on every pinned branch (Istio regenerates them; a change of its defaults,
// such as native sidecars, shows here rather than as a puzzling case failure).
func TestGoldensAreWhatTheCasesNeed(t *testing.T) {
	eachBranch(t, func(t *testing.T, b istiosrc.Branch) {
		for _, file := range []string{goldenRewritten, goldenNoRewrite} {
			in, out := goldenContainerOf(t, b, file, goldenContainer), goldenPod(t, b, file+".injected")
			got := findContainer(out, goldenContainer)
			if got == nil || got.Image != in.Image || in.ReadinessProbe == nil || in.ReadinessProbe.HTTPGet == nil || in.LivenessProbe == nil || in.LivenessProbe.HTTPGet == nil {
				t.Errorf("%s: container %s is not an app with HTTP readiness and liveness probes kept by the injector", file, goldenContainer)
			}
			if p := nativeProxy(out); p == nil || p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("%s.injected: istio-proxy is not a native sidecar", file)
			}
		}
		if out := goldenPod(t, b, goldenNoRewrite+".injected"); out.Annotations[istionames.RewriteAppHTTPProbersAnnotation] != "false" {
			t.Errorf("%s.injected: %s=%q, want \"false\"", goldenNoRewrite, istionames.RewriteAppHTTPProbersAnnotation, out.Annotations[istionames.RewriteAppHTTPProbersAnnotation])
		}
		classicOut := goldenPod(t, b, goldenClassicOut)
		if nativeProxy(classicOut) != nil || findContainer(classicOut, istionames.ProxyContainerName) == nil {
			t.Errorf("%s: istio-proxy is not a classic sidecar container", goldenClassicOut)
		}
	})
}

// TestSoakInterruptedWhileListing: a soak whose context ends during a list call (as a short
// deadline on a loaded machine does) reads as the interruption it is, with the observations
// that were all Ready, not as a failed list.
func TestSoakInterruptedWhileListing(t *testing.T) {
	ready := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe-server-1", Namespace: "ns", Labels: map[string]string{"app": "probe-server"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	kube := fake.NewClientset(ready)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lists := 0
	kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists++
		if lists == 2 { // the deadline passes while the API server answers
			cancel()
			return true, nil, context.Canceled
		}
		return false, nil, nil
	})
	err := SoakReady(ctx, kube, "ns", "app=probe-server", time.Minute, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "interrupted after") || !strings.Contains(err.Error(), "(1 observations, all Ready)") {
		t.Errorf("soak cut short during its second list: %v; want the interruption after 1 observation", err)
	}
}

// TestCheckTCPProbeRewritten: Istio's own golden pod for TCP probes (tcp-probes.yaml, injected)
// passes, its originals compared with the input (a named liveness port resolved to 80); an agent
// told another port, a probe left as tcpSocket, or a readiness prober recorded as httpGet fail.
func TestCheckTCPProbeRewritten(t *testing.T) { eachBranch(t, testCheckTCPProbeRewritten) }

func testCheckTCPProbeRewritten(t *testing.T, b istiosrc.Branch) {
	pod := goldenPod(t, b, "tcp-probes.yaml.injected")
	want := WantOriginal(goldenContainerOf(t, b, "tcp-probes.yaml", "hello"))
	if err := CheckProbeRewritten(pod, "hello", want); err != nil {
		t.Fatalf("Istio's golden TCP rewrite rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		mutate func(p *corev1.Pod) *corev1.Pod
		want   string
	}{
		"agent dials another port": {func(p *corev1.Pod) *corev1.Pod {
			return setProbers(p, `{"/app-health/hello/livez":{"tcpSocket":{"port":81}},"/app-health/hello/readyz":{"tcpSocket":{"port":3333}}}`)
		}, `want the original tcpSocket on port 80`},
		"original recorded as httpGet": {func(p *corev1.Pod) *corev1.Pod {
			return setProbers(p, `{"/app-health/hello/livez":{"tcpSocket":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"port":3333}}}`)
		}, `"/app-health/hello/readyz"] is httpGet`},
		"liveness not rewritten": {func(p *corev1.Pod) *corev1.Pod {
			findContainer(p, "hello").LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}}
			return p
		}, "liveness probe is tcpSocket on port http, want httpGet /app-health/hello/livez on port 15020"},
	} {
		p := tc.mutate(pod.DeepCopy())
		err := CheckProbeRewritten(p, "hello", want)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
