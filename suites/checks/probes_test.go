package checks

import (
	"os"
	"strings"
	"testing"

	"istio.io/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"meshconform/framework/probe"
	"meshconform/framework/workload"
)

func loadPod(t *testing.T, file string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &p
}

// sampleContainer is a sample's container as its manifest writes it, before injection.
func sampleContainer(t *testing.T, s workload.Sample, name string) corev1.Container {
	t.Helper()
	m, err := workload.Load(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("sample %s has no container %s", s, name)
	return corev1.Container{}
}

// classic moves a native sidecar into containers, as Istio < 1.27 injects it.
func classic(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	var inits []corev1.Container
	for _, c := range p.Spec.InitContainers {
		if c.Name == probe.ProxyContainerName {
			c.RestartPolicy = nil
			p.Spec.Containers = append(p.Spec.Containers, c)
			continue
		}
		inits = append(inits, c)
	}
	p.Spec.InitContainers = inits
	return p
}

func proxyOf(p *corev1.Pod) *corev1.Container { return findContainer(p, probe.ProxyContainerName) }

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
	if RewriteAnnotation != annotation.SidecarRewriteAppHTTPProbers.Name {
		t.Errorf("RewriteAnnotation %q, Istio's %q", RewriteAnnotation, annotation.SidecarRewriteAppHTTPProbers.Name)
	}
	if StatusPortAnnotation != annotation.SidecarStatusPort.Name {
		t.Errorf("StatusPortAnnotation %q, Istio's %q", StatusPortAnnotation, annotation.SidecarStatusPort.Name)
	}
	r, l := ProberPaths("app")
	if r != "/app-health/app/readyz" || l != "/app-health/app/livez" {
		t.Errorf("ProberPaths(app) = %s, %s", r, l)
	}
}

func TestCheckProbeRewritten(t *testing.T) {
	native := loadPod(t, "probe-server.injected.yaml")
	original := sampleContainer(t, workload.ProbeServer, "app")
	want := WantOriginal(original)

	mutate := func(f func(p *corev1.Pod)) *corev1.Pod {
		p := native.DeepCopy()
		f(p)
		return p
	}
	named := original.DeepCopy()
	named.ReadinessProbe.HTTPGet.Port = intstr.FromString("http")

	cases := []struct {
		name string
		pod  *corev1.Pod
		opts []RewriteOption
		errs []string
	}{
		{name: "native sidecar", pod: native},
		{name: "native sidecar, originals compared with the manifest", pod: native, opts: []RewriteOption{want}},
		{name: "classic sidecar", pod: classic(native), opts: []RewriteOption{want}},
		{name: "the manifest names its port", pod: native, opts: []RewriteOption{WantOriginal(*named)}},
		{name: "status port moved by annotation", opts: []RewriteOption{want},
			pod: mutate(func(p *corev1.Pod) {
				p.Annotations[StatusPortAnnotation] = "15030"
				p.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(15030)
				p.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(15030)
			})},
		{name: "status port annotation not followed",
			pod:  mutate(func(p *corev1.Pod) { p.Annotations[StatusPortAnnotation] = "15030" }),
			errs: []string{"readiness probe is httpGet /app-health/app/readyz on port 15020, want httpGet /app-health/app/readyz on port 15030"}},
		{name: "not rewritten (rewrite off)", pod: loadPod(t, "probe-norewrite.injected.yaml"),
			errs: []string{"PROBE-001", "readiness probe is httpGet /status/200 on port 8080, want httpGet /app-health/app/readyz on port 15020",
				"liveness probe is httpGet /status/200 on port 8080", `no "/app-health/app/readyz" entry`, `rewriteAppHTTPProbers="false"`}},
		{name: "liveness left alone",
			pod:  mutate(func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/status/200" }),
			errs: []string{"liveness probe is httpGet /status/200 on port 15020, want httpGet /app-health/app/livez on port 15020"}},
		{name: "liveness dropped while the manifest has one", opts: []RewriteOption{want},
			pod:  mutate(func(p *corev1.Pod) { p.Spec.Containers[0].LivenessProbe = nil }),
			errs: []string{"container app has no liveness probe"}},
		{name: "readiness dropped",
			pod:  mutate(func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe = nil }),
			errs: []string{"container app has no readiness probe"}},
		{name: "originals not recorded",
			pod:  setProbers(native, ""),
			errs: []string{`ISTIO_KUBE_APP_PROBERS has no "/app-health/app/readyz" entry for the original readiness probe (keys: none)`}},
		{name: "another original than the manifest's", opts: []RewriteOption{want},
			pod:  setProbers(native, `{"/app-health/app/livez":{"httpGet":{"path":"/status/200","port":8080}},"/app-health/app/readyz":{"httpGet":{"path":"/status/500","port":8080}}}`),
			errs: []string{`ISTIO_KUBE_APP_PROBERS["/app-health/app/readyz"] is httpGet /status/500 on port 8080, want the original httpGet /status/200 on port 8080`}},
		{name: "original points at the status port",
			pod:  setProbers(native, `{"/app-health/app/livez":{"httpGet":{"path":"/status/200","port":8080}},"/app-health/app/readyz":{"httpGet":{"path":"/app-health/app/readyz","port":15020}}}`),
			errs: []string{"the status port itself"}},
		{name: "an empty original",
			pod:  setProbers(native, `{"/app-health/app/livez":{"httpGet":{"path":"/status/200","port":8080}},"/app-health/app/readyz":{}}`),
			errs: []string{`ISTIO_KUBE_APP_PROBERS["/app-health/app/readyz"] has no probe action`}},
		{name: "unreadable originals", pod: setProbers(native, `{"/app-health/app/readyz":`),
			errs: []string{"ISTIO_KUBE_APP_PROBERS of istio-proxy is not the injector's JSON"}},
		{name: "not injected",
			pod:  mutate(func(p *corev1.Pod) { p.Spec.InitContainers = p.Spec.InitContainers[:1] }),
			errs: []string{"has no istio-proxy container (nor native sidecar): it was not injected"}},
		{name: "an istio-proxy init container that is not a sidecar",
			pod:  mutate(func(p *corev1.Pod) { p.Spec.InitContainers[1].RestartPolicy = nil }),
			errs: []string{"it was not injected"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckProbeRewritten(c.pod, "app", c.opts...)
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
	if err := CheckProbeRewritten(native, "web"); err == nil || !strings.Contains(err.Error(), "has no container web (containers: istio-init (init), istio-proxy (init), app)") {
		t.Errorf("unknown container: %v", err)
	}
}

func TestCheckNotRewritten(t *testing.T) {
	norewrite := loadPod(t, "probe-norewrite.injected.yaml")
	if err := CheckNotRewritten(norewrite, "app"); err != nil {
		t.Fatalf("the rewrite-off pod: %v", err)
	}
	err := CheckNotRewritten(loadPod(t, "probe-server.injected.yaml"), "app")
	if err == nil {
		t.Fatal("a rewritten pod passed CheckNotRewritten")
	}
	for _, w := range []string{"PROBE-002", "readiness probe is httpGet /app-health/app/readyz on port 15020: rewritten to the proxy",
		"liveness probe is httpGet /app-health/app/livez", `ISTIO_KUBE_APP_PROBERS has an entry "/app-health/app/readyz"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	// Probes untouched but the originals recorded anyway: half a rewrite is still one.
	half := norewrite.DeepCopy()
	proxyOf(half).Env = append(proxyOf(half).Env, corev1.EnvVar{Name: KubeAppProbersEnv,
		Value: `{"/app-health/app/readyz":{"httpGet":{"path":"/status/200","port":8080}}}`})
	if err := CheckNotRewritten(half, "app"); err == nil || !strings.Contains(err.Error(), `has an entry "/app-health/app/readyz"`) {
		t.Errorf("recorded originals: %v", err)
	}
	// An uninjected pod's probes are untouched too, and prove nothing.
	plain := norewrite.DeepCopy()
	plain.Spec.Containers = plain.Spec.Containers[:1]
	if err := CheckNotRewritten(plain, "app"); err == nil || !strings.Contains(err.Error(), "not injected") {
		t.Errorf("uninjected pod: %v", err)
	}
	noProbe := norewrite.DeepCopy()
	noProbe.Spec.Containers[0].ReadinessProbe = nil
	if err := CheckNotRewritten(noProbe, "app"); err == nil || !strings.Contains(err.Error(), "no readiness probe") {
		t.Errorf("no readiness probe: %v", err)
	}
}

// The fixtures are the samples: same container, ports and original probes.
func TestFixturesMatchTheSamples(t *testing.T) {
	for file, s := range map[string]workload.Sample{"probe-server.injected.yaml": workload.ProbeServer, "probe-norewrite.injected.yaml": workload.ProbeNoRewrite} {
		p := loadPod(t, file)
		c := sampleContainer(t, s, "app")
		got := findContainer(p, "app")
		if got == nil || got.Image != c.Image || got.Ports[0].ContainerPort != c.Ports[0].ContainerPort {
			t.Errorf("%s: app container differs from sample %s's", file, s)
		}
		if p.Labels["app"] != string(s) {
			t.Errorf("%s: label app=%q, want %s", file, p.Labels["app"], s)
		}
	}
}
