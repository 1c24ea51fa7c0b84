package posture

// Tier 1: the audit against a real kube-apiserver with Istio's CRDs (internal/apitest).
// Pods are created without a kubelet (they stay Pending), shaped the way Istio's injector
// shapes them; no Istio control plane runs, so what is tested is the audit's reading of
// cluster state, not Istio's behaviour.
//
// The API server is shared by the package's tests, so every audit is scoped to the
// namespaces its test created (Config.Namespaces / --namespaces) and to its own Istio system
// and root namespaces (--istio-namespace, with a mesh config naming a root namespace that is
// deliberately not the system namespace).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
	"meshconform/internal/apitest"
	"meshconform/internal/istiosrc"
)

type fixture struct {
	env       *apitest.Environment
	c         Clients
	sys, root string
	scope     []string
}

// newFixture makes an Istio system namespace holding a mesh config whose rootNamespace is a
// second, distinct namespace.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := apitest.Env(t)
	c, err := NewClients(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: env, c: c}
	f.sys = f.ns(t, "sys", nil)
	f.root = f.ns(t, "root", nil)
	f.meshConfig(t, "istio", "rootNamespace: "+f.root+"\ntrustDomain: cluster.local\n")
	return f
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ns creates a namespace in the audit's scope and waits for its default ServiceAccount
// (the ServiceAccount admission plugin refuses pods until the controller manager made it).
func (f *fixture) ns(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	name := f.env.Namespace(t, prefix, labels)
	f.scope = append(f.scope, name)
	ctx := ctxFor(t)
	for {
		_, err := f.env.Kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return name
		}
		if !apierrors.IsNotFound(err) {
			t.Fatalf("reading ServiceAccount %s/default: %v", name, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace %s got no default ServiceAccount in time\n%s", name, f.env.ControllerManagerLogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *fixture) meshConfig(t *testing.T, name, mesh string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.sys, Name: name}, Data: map[string]string{"mesh": mesh}}
	if _, err := f.env.Kube.CoreV1().ConfigMaps(f.sys).Create(ctxFor(t), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating mesh config %s/%s: %v", f.sys, name, err)
	}
}

func (f *fixture) config(allow ...AllowEntry) Config {
	return Config{IstioNamespace: f.sys, Namespaces: f.scope, Allow: AllowList{Entries: allow}}
}

func (f *fixture) run(t *testing.T, allow ...AllowEntry) Report {
	t.Helper()
	r, err := Run(ctxFor(t), f.c, f.config(allow...))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// args are Main's flags scoped to this fixture.
func (f *fixture) args(extra ...string) []string {
	return append([]string{"--kubeconfig", f.env.Kubeconfig, "--istio-namespace", f.sys,
		"--namespaces", strings.Join(f.scope, ",")}, extra...)
}

func (f *fixture) harden(t *testing.T) {
	t.Helper()
	if err := Hardened(f.root, WithSystemNamespace(f.sys)).Apply(ctxFor(t), f.c); err != nil {
		t.Fatalf("applying the hardened configuration: %v", err)
	}
}

func (f *fixture) peerAuth(t *testing.T, ns, name string, mutate func(*securityv1.PeerAuthentication)) {
	t.Helper()
	p := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	mutate(p)
	if _, err := f.c.Istio.SecurityV1().PeerAuthentications(ns).Create(ctxFor(t), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating PeerAuthentication %s/%s: %v", ns, name, err)
	}
}

func (f *fixture) authzPolicy(t *testing.T, ns, name string, mutate func(*securityv1.AuthorizationPolicy)) {
	t.Helper()
	p := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	mutate(p)
	if _, err := f.c.Istio.SecurityV1().AuthorizationPolicies(ns).Create(ctxFor(t), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating AuthorizationPolicy %s/%s: %v", ns, name, err)
	}
}

func (f *fixture) netpol(t *testing.T, name string, mutate func(*networkingv1.NetworkPolicy)) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.sys, Name: name}}
	mutate(np)
	if _, err := f.env.Kube.NetworkingV1().NetworkPolicies(f.sys).Create(ctxFor(t), np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating NetworkPolicy %s/%s: %v", f.sys, name, err)
	}
}

const pauseImage = "registry.k8s.io/pause:3.10"

// pod creates a Pending pod: one app container, shaped further by the options.
func (f *fixture) pod(t *testing.T, ns, name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: pauseImage}}}}
	for _, o := range opts {
		o(p)
	}
	got, err := f.env.Kube.CoreV1().Pods(ns).Create(ctxFor(t), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return got
}

// sidecarInjected makes a pod what Istio's injector makes of it without CNI, from Istio's own
// golden file (pkg/kube/inject/testdata/inject/hello.yaml.injected: istio-init with
// NET_ADMIN/NET_RAW, istio-proxy, the status annotation); see injectFrom.
func sidecarInjected(p *corev1.Pod) { injectFrom(p, "hello.yaml.injected") }

// cniInjected makes a pod what the injector makes of it with Istio CNI
// (hello.yaml.cni.injected: istio-validation, no added capabilities).
func cniInjected(p *corev1.Pod) { injectFrom(p, "hello.yaml.cni.injected") }

// injectFrom grafts what Istio's injector added in golden file (on the release-1.31 branch)
// onto p: its sidecar.istio.io/status annotation, init containers, the
// istio-proxy container when it is a classic sidecar, and the volumes they mount. The app
// containers stay p's. The golden's pod has no service account; on a cluster the
// ServiceAccount admission plugin names "default" (which the injected token volume needs), and
// envtest's API server runs without that plugin.
func injectFrom(p *corev1.Pod, golden string) {
	dir, err := istiosrc.InjectGoldenDir(context.Background(), istiosrc.Release131)
	if err != nil {
		panic(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, golden))
	if err != nil {
		panic(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(strings.SplitN(string(data), "\n---", 2)[0]), &d); err != nil {
		panic(fmt.Sprintf("%s: %v", golden, err))
	}
	tmpl := d.Spec.Template
	if _, ok := tmpl.Annotations[istionames.StatusAnnotation]; !ok || len(tmpl.Spec.InitContainers) == 0 {
		panic(golden + " is not an injected pod template")
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[istionames.StatusAnnotation] = tmpl.Annotations[istionames.StatusAnnotation]
	p.Spec.InitContainers = append(p.Spec.InitContainers, tmpl.Spec.InitContainers...)
	for _, c := range tmpl.Spec.Containers {
		if c.Name == istionames.ProxyContainerName {
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
	}
	p.Spec.Volumes = append(p.Spec.Volumes, tmpl.Spec.Volumes...)
	if p.Spec.ServiceAccountName == "" {
		p.Spec.ServiceAccountName = "default"
	}
}

func annotate(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[k] = v
	}
}

func label(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[k] = v }
}

// mustCheck returns check id of r, failing the test with the whole report if it is absent
// or its result is not want.
func mustCheck(t *testing.T, r Report, id string, want Result) CheckResult {
	t.Helper()
	c, ok := r.Check(id)
	if !ok {
		t.Fatalf("no %s in the report", id)
	}
	if c.Result != want {
		var b bytes.Buffer
		_ = WriteText(&b, r)
		t.Fatalf("%s is %s, want %s\n%s", id, c.Result, want, b.String())
	}
	return c
}

// findingKeys lists findings as "Kind ns/name field=value" for exact comparisons.
func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s=%s", f.Object(), f.Field, f.Value))
	}
	slices.Sort(out)
	return out
}

func wantFindings(t *testing.T, c CheckResult, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := findingKeys(c.Findings); !slices.Equal(got, want) {
		t.Errorf("%s findings:\n  got  %q\n  want %q", c.ID, got, want)
	}
}

func TestTier1RootNamespaceComesFromMeshConfig(t *testing.T) {
	f := newFixture(t)
	r := f.run(t)
	if r.RootNamespace != f.root || r.RootNamespaceSource != fmt.Sprintf("ConfigMap %s/istio, key mesh, field rootNamespace", f.sys) {
		t.Fatalf("root namespace %q (%s), want %q from ConfigMap %s/istio", r.RootNamespace, r.RootNamespaceSource, f.root, f.sys)
	}
	if r.SystemNamespace != f.sys || r.SystemNamespaceSource != "--istio-namespace" {
		t.Errorf("system namespace %q (%s)", r.SystemNamespace, r.SystemNamespaceSource)
	}

	t.Run("revisioned mesh config found through the istiod pod", func(t *testing.T) {
		g := &fixture{env: f.env, c: f.c}
		g.sys = g.ns(t, "sysrev", nil)
		g.root = g.ns(t, "rootrev", nil)
		g.meshConfig(t, "istio-canary", "rootNamespace: "+g.root+"\n")
		g.pod(t, g.sys, "istiod-canary-0", label("app", "istiod"), label("istio.io/rev", "canary"))
		r := g.run(t)
		if r.RootNamespace != g.root || !strings.Contains(r.RootNamespaceSource, g.sys+"/istio-canary") {
			t.Errorf("root namespace %q (%s), want %q from ConfigMap %s/istio-canary", r.RootNamespace, r.RootNamespaceSource, g.root, g.sys)
		}
	})

	t.Run("mesh config without rootNamespace", func(t *testing.T) {
		g := &fixture{env: f.env, c: f.c}
		g.sys = g.ns(t, "sysdef", nil)
		g.meshConfig(t, "istio", "trustDomain: cluster.local\n")
		r := g.run(t)
		if r.RootNamespace != DefaultIstioNamespace || !strings.Contains(r.RootNamespaceSource, "sets no rootNamespace: Istio's default istio-system") {
			t.Errorf("root namespace %q (%s)", r.RootNamespace, r.RootNamespaceSource)
		}
	})

	t.Run("no mesh config: the default, said so", func(t *testing.T) {
		g := &fixture{env: f.env, c: f.c}
		g.sys = g.ns(t, "sysnone", nil)
		r := g.run(t)
		want := fmt.Sprintf("assumed Istio's default: no mesh config found (ConfigMap istio in %s)", g.sys)
		if r.RootNamespace != DefaultIstioNamespace || r.RootNamespaceSource != want {
			t.Errorf("root namespace %q (%s), want istio-system (%s)", r.RootNamespace, r.RootNamespaceSource, want)
		}
		var b bytes.Buffer
		_ = WriteText(&b, r)
		if !strings.Contains(b.String(), "root namespace:    istio-system (assumed Istio's default: no mesh config found") {
			t.Errorf("the text output must say the root namespace was assumed:\n%s", b.String())
		}
	})

	t.Run("unparseable mesh config is an error, exit 2", func(t *testing.T) {
		g := &fixture{env: f.env, c: f.c}
		g.sys = g.ns(t, "sysbad", nil)
		g.meshConfig(t, "istio", "rootNamespace: [unclosed\n")
		r := g.run(t)
		c := mustCheck(t, r, MeshWideStrict, Error)
		if !strings.Contains(c.Error, "key mesh is not YAML") {
			t.Errorf("error %q should say the mesh config is not YAML", c.Error)
		}
		mustCheck(t, r, MeshWideDefaultDeny, Error)
		mustCheck(t, r, NoCaptureBypass, Pass) // the other checks still ran
		if r.ExitCode() != ExitError {
			t.Errorf("exit %d, want 2", r.ExitCode())
		}
	})
}

func TestTier1SystemNamespaceFromIstiodPods(t *testing.T) {
	f := newFixture(t)
	f.pod(t, f.sys, "istiod-0", label("app", "istiod"), label("istio", "pilot"))
	r, err := Run(ctxFor(t), f.c, Config{Namespaces: f.scope})
	if err != nil {
		t.Fatal(err)
	}
	// Other tests' istiod pods may exist at the same time; ours must be among those seen.
	if r.SystemNamespace != f.sys && !strings.Contains(r.SystemNamespaceSource, f.sys) {
		t.Fatalf("system namespace %q (%s) does not mention %s, where istiod-0 runs", r.SystemNamespace, r.SystemNamespaceSource, f.sys)
	}
	if r.SystemNamespace == f.sys && r.RootNamespace != f.root {
		t.Errorf("root namespace %q, want %q from the mesh config next to istiod", r.RootNamespace, f.root)
	}
}

func TestTier1Posture001MeshWideStrict(t *testing.T) {
	f := newFixture(t)
	c := mustCheck(t, f.run(t), MeshWideStrict, Fail)
	wantFindings(t, c, fmt.Sprintf("PeerAuthentication %s/(none) spec.mtls.mode=(absent)", f.root))

	// STRICT for one workload, or in the system namespace that is not root, is not mesh-wide.
	f.peerAuth(t, f.root, "workload-strict", func(p *securityv1.PeerAuthentication) {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "x"}}
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	})
	f.peerAuth(t, f.sys, "not-root", func(p *securityv1.PeerAuthentication) {
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	})
	mustCheck(t, f.run(t), MeshWideStrict, Fail)

	f.peerAuth(t, f.root, "mesh-permissive", func(p *securityv1.PeerAuthentication) {
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE}
	})
	c = mustCheck(t, f.run(t), MeshWideStrict, Fail)
	wantFindings(t, c, fmt.Sprintf("PeerAuthentication %s/mesh-permissive spec.mtls.mode=PERMISSIVE", f.root))

	if err := f.c.Istio.SecurityV1().PeerAuthentications(f.root).Delete(ctxFor(t), "mesh-permissive", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.harden(t)
	mustCheck(t, f.run(t), MeshWideStrict, Pass)
}

func TestTier1Posture002NothingWeakensStrict(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", nil)
	f.peerAuth(t, apps, "ns-strict", func(p *securityv1.PeerAuthentication) {
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	})
	f.peerAuth(t, apps, "inherits", func(p *securityv1.PeerAuthentication) {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}}
	})
	mustCheck(t, f.run(t), NothingWeakensStrict, Pass)

	f.peerAuth(t, apps, "legacy-disable", func(p *securityv1.PeerAuthentication) {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "legacy"}}
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_DISABLE}
	})
	f.peerAuth(t, apps, "metrics-port", func(p *securityv1.PeerAuthentication) {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "web"}}
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
		p.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{
			9090: {Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE},
			8080: {Mode: securityapi.PeerAuthentication_MutualTLS_STRICT},
		}
	})
	f.peerAuth(t, f.root, "mesh-permissive", func(p *securityv1.PeerAuthentication) {
		p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE}
	})
	c := mustCheck(t, f.run(t), NothingWeakensStrict, Fail)
	wantFindings(t, c,
		fmt.Sprintf("PeerAuthentication %s/legacy-disable spec.mtls.mode=DISABLE", apps),
		fmt.Sprintf("PeerAuthentication %s/metrics-port spec.portLevelMtls[9090].mode=PERMISSIVE", apps),
		fmt.Sprintf("PeerAuthentication %s/mesh-permissive spec.mtls.mode=PERMISSIVE", f.root))
}

func TestTier1Posture003DefaultDeny(t *testing.T) {
	f := newFixture(t)
	f.authzPolicy(t, f.root, "allow-health", func(p *securityv1.AuthorizationPolicy) {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "x"}}
	})
	c := mustCheck(t, f.run(t), MeshWideDefaultDeny, Fail)
	wantFindings(t, c, fmt.Sprintf("AuthorizationPolicy %s/(none) spec=(absent)", f.root))

	f.harden(t)
	mustCheck(t, f.run(t), MeshWideDefaultDeny, Pass)

	// A mesh-wide ALLOW with an empty rule allows everything: default deny is undone.
	f.authzPolicy(t, f.root, "allow-all", func(p *securityv1.AuthorizationPolicy) {
		p.Spec.Rules = []*securityapi.Rule{{}}
	})
	c = mustCheck(t, f.run(t), MeshWideDefaultDeny, Fail)
	wantFindings(t, c, fmt.Sprintf("AuthorizationPolicy %s/allow-all spec.rules[0]={}", f.root))
}

func TestTier1Posture004SidecarsEverywhere(t *testing.T) {
	f := newFixture(t)
	meshed := f.ns(t, "meshed", map[string]string{"istio-injection": "enabled"})
	revisioned := f.ns(t, "rev", map[string]string{"istio.io/rev": "canary"})
	plain := f.ns(t, "plain", nil)
	optedOut := f.ns(t, "optout", map[string]string{"istio-injection": "disabled", "istio.io/rev": "canary"})
	always := corev1.ContainerRestartPolicyAlways
	f.pod(t, meshed, "web", sidecarInjected)
	f.pod(t, revisioned, "native", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: istionames.ProxyContainerName, Image: pauseImage, RestartPolicy: &always}}
	})
	f.pod(t, plain, "no-mesh-here")
	f.pod(t, optedOut, "not-meshed-either")
	r := f.run(t)
	mustCheck(t, r, SidecarsEverywhere, Pass)
	if want := []string{meshed, revisioned}; !slices.Equal(r.MeshedNamespaces, sorted(want)) {
		t.Errorf("meshed namespaces %v, want %v", r.MeshedNamespaces, sorted(want))
	}

	f.pod(t, meshed, "opted-out", label(istionames.InjectLabel, "false"))
	f.pod(t, revisioned, "opted-out-annotation", annotate(istionames.InjectLabel, "false"))
	f.pod(t, meshed, "predates-injection")
	c := mustCheck(t, f.run(t), SidecarsEverywhere, Fail)
	wantFindings(t, c,
		fmt.Sprintf("Pod %s/opted-out metadata.labels['sidecar.istio.io/inject']=false", meshed),
		fmt.Sprintf("Pod %s/opted-out-annotation metadata.annotations['sidecar.istio.io/inject']=false", revisioned),
		fmt.Sprintf("Pod %s/predates-injection spec.containers[*].name=app", meshed))
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// enrolledAmbient marks a pod as Istio's CNI node agent does once ztunnel took it
// (cni/pkg/util/podutil.go); no CNI runs against this API server, so the test writes it.
func enrolledAmbient(p *corev1.Pod) {
	annotate(istionames.AmbientRedirectionAnnotation, istionames.AmbientRedirectionEnabled)(p)
}

// waypointShaped is a waypoint's pod as istiod's waypoint template labels it
// (istio-discovery/files/waypoint.yaml): opted out of ambient, its own istio-proxy.
func waypointShaped(p *corev1.Pod) {
	p.Labels[istionames.DataplaneModeLabel] = istionames.DataplaneModeNone
	p.Labels[istionames.InjectLabel] = "false"
	p.Labels["gateway.networking.k8s.io/gateway-name"] = "waypoint"
	p.Spec.Containers = []corev1.Container{{Name: istionames.ProxyContainerName, Image: pauseImage}}
}

// POSTURE-004 on an ambient mesh: a namespace is meshed by istio.io/dataplane-mode=ambient and
// a pod is in the mesh when Istio's CNI enrolled it. An audit of namespaces none of which is
// enrolled fails (no meshed namespace found); an enrolled one passes; a pod opted out, never
// redirected, waiting for ztunnel or on the host network fails, each named.
func TestTier1Posture004AmbientEnrolment(t *testing.T) {
	f := newFixture(t)
	unenrolled := f.ns(t, "unenrolled", nil)
	f.pod(t, unenrolled, "web")
	c := mustCheck(t, f.run(t), SidecarsEverywhere, Fail)
	wantFindings(t, c, "Namespace (none) metadata.labels=(absent)")
	if want := "no meshed namespace found: none of the namespaces audited (" + strings.Join(f.scope, ", ") + ") is labelled"; !strings.HasPrefix(c.Findings[0].Message, want) {
		t.Errorf("message %q, want it to start %q", c.Findings[0].Message, want)
	}
	var stdout, stderr bytes.Buffer
	if code := Main(f.args(), &stdout, &stderr); code != ExitFindings || !strings.Contains(stdout.String(), "meshed namespaces: 0 (no meshed namespace found") {
		t.Errorf("an audit that finds no meshed namespace must say so and exit 1; exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}

	amb := f.ns(t, "amb", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient})
	f.pod(t, amb, "web", enrolledAmbient)
	f.pod(t, amb, "reviews", enrolledAmbient, label(istionames.InjectLabel, "false")) // no opt-out in ambient
	f.pod(t, amb, "waypoint", waypointShaped)
	r := f.run(t)
	mustCheck(t, r, SidecarsEverywhere, Pass)
	if !slices.Equal(r.MeshedNamespaces, []string{amb}) || !slices.Equal(r.AmbientNamespaces, []string{amb}) {
		t.Errorf("meshed %v, ambient %v; want [%s] for both", r.MeshedNamespaces, r.AmbientNamespaces, amb)
	}

	f.pod(t, amb, "opted-out", label(istionames.DataplaneModeLabel, istionames.DataplaneModeNone))
	f.pod(t, amb, "never-redirected")
	f.pod(t, amb, "waiting", annotate(istionames.AmbientRedirectionAnnotation, istionames.AmbientRedirectionPending))
	f.pod(t, amb, "host", func(p *corev1.Pod) { p.Spec.HostNetwork = true })
	c = mustCheck(t, f.run(t), SidecarsEverywhere, Fail)
	wantFindings(t, c,
		fmt.Sprintf("Pod %s/opted-out metadata.labels['istio.io/dataplane-mode']=none", amb),
		fmt.Sprintf("Pod %s/never-redirected metadata.annotations['ambient.istio.io/redirection']=(absent)", amb),
		fmt.Sprintf("Pod %s/waiting metadata.annotations['ambient.istio.io/redirection']=pending", amb),
		fmt.Sprintf("Pod %s/host spec.hostNetwork=true", amb))

	// The exceptions a platform team writes cover them like any other finding.
	r = f.run(t, AllowEntry{Namespace: amb, Checks: []string{SidecarsEverywhere}, Reason: "ambient rollout, OPS-12"})
	if c := mustCheck(t, r, SidecarsEverywhere, Pass); len(c.Allowed) != 4 {
		t.Errorf("allowed %v, want the 4 findings", findingKeys(c.Allowed))
	}
}

func TestTier1Posture005NoCaptureBypass(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", map[string]string{"istio-injection": "enabled"})
	f.pod(t, apps, "web", sidecarInjected, annotate("traffic.sidecar.istio.io/includeInboundPorts", "*"))
	mustCheck(t, f.run(t), NoCaptureBypass, Pass)

	f.pod(t, apps, "db-client", sidecarInjected,
		annotate(istionames.ExcludeOutboundPortsAnnotation, "5432"), annotate(istionames.ExcludeOutboundIPRangesAnnotation, "10.0.0.0/8"))
	f.pod(t, apps, "metrics", sidecarInjected, annotate(istionames.ExcludeInboundPortsAnnotation, "9100"))
	c := mustCheck(t, f.run(t), NoCaptureBypass, Fail)
	wantFindings(t, c,
		fmt.Sprintf("Pod %s/db-client metadata.annotations['traffic.sidecar.istio.io/excludeOutboundPorts']=5432", apps),
		fmt.Sprintf("Pod %s/db-client metadata.annotations['traffic.sidecar.istio.io/excludeOutboundIPRanges']=10.0.0.0/8", apps),
		fmt.Sprintf("Pod %s/metrics metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts']=9100", apps))
}

// POSTURE-005 on an ambient mesh: enrolled pods pass; one annotated
// ambient.istio.io/bypass-inbound-capture: "true" fails, one with "false" does not.
func TestTier1Posture005AmbientBypass(t *testing.T) {
	f := newFixture(t)
	amb := f.ns(t, "amb", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient})
	f.pod(t, amb, "web", enrolledAmbient)
	f.pod(t, amb, "captured", enrolledAmbient, annotate(istionames.AmbientBypassInboundCaptureAnnotation, "false"))
	mustCheck(t, f.run(t), NoCaptureBypass, Pass)

	f.pod(t, amb, "nginx-ingress", enrolledAmbient, annotate(istionames.AmbientBypassInboundCaptureAnnotation, "true"))
	r := f.run(t)
	c := mustCheck(t, r, NoCaptureBypass, Fail)
	wantFindings(t, c, fmt.Sprintf("Pod %s/nginx-ingress metadata.annotations['ambient.istio.io/bypass-inbound-capture']=true", amb))
	if !strings.Contains(c.Remedy, istionames.AmbientBypassInboundCaptureAnnotation) {
		t.Errorf("remedy %q should name the annotation", c.Remedy)
	}
	mustCheck(t, r, SidecarsEverywhere, Pass) // enrolled: in the mesh, its inbound bypass is 005's business

	r = f.run(t, AllowEntry{Workload: amb + "/nginx-ingress", Checks: []string{NoCaptureBypass}, Reason: "third-party ingress receives only out-of-mesh traffic"})
	if c := mustCheck(t, r, NoCaptureBypass, Pass); len(c.Allowed) != 1 {
		t.Errorf("allowed %v", findingKeys(c.Allowed))
	}
}

func TestTier1Posture006NoPrivilegedInit(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", map[string]string{"istio-injection": "enabled"})
	f.pod(t, apps, "cni", cniInjected)
	// NET_ADMIN outside an injected pod is another check's business, not this one's.
	f.pod(t, apps, "uninjected-netadmin", label(istionames.InjectLabel, "false"), func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
	})
	mustCheck(t, f.run(t), NoPrivilegedInit, Pass)

	f.pod(t, apps, "iptables", sidecarInjected)
	c := mustCheck(t, f.run(t), NoPrivilegedInit, Fail)
	wantFindings(t, c, fmt.Sprintf("Pod %s/iptables spec.initContainers[istio-init].securityContext.capabilities.add=[NET_ADMIN NET_RAW]", apps))
	if !strings.Contains(c.Findings[0].Message, "Istio CNI is not in use") {
		t.Errorf("message %q should say Istio CNI is not in use", c.Findings[0].Message)
	}
}

func TestTier1Posture007ControlPlaneIsolated(t *testing.T) {
	f := newFixture(t)
	c := mustCheck(t, f.run(t), ControlPlaneIsolated, Fail)
	wantFindings(t, c, fmt.Sprintf("NetworkPolicy %s/(none) spec.podSelector=(absent)", f.sys))

	f.netpol(t, "other-app", func(np *networkingv1.NetworkPolicy) {
		np.Spec.PodSelector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "grafana"}}
	})
	f.netpol(t, "allow-everything", func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	})
	c = mustCheck(t, f.run(t), ControlPlaneIsolated, Fail)
	if len(c.Notes) != 2 || !strings.Contains(strings.Join(c.Notes, "\n"), "allow-everything does not count: spec.ingress[0] has neither from nor ports") {
		t.Errorf("notes should explain why the two policies do not count: %q", c.Notes)
	}

	f.harden(t)
	mustCheck(t, f.run(t), ControlPlaneIsolated, Pass)
}

// The hardened configuration makes a cluster whose one workload is enrolled in ambient pass
// everything, and the objects' cleanup leaves nothing behind.
func TestTier1HardenedPassesAllAndDeletes(t *testing.T) {
	f := newFixture(t)
	amb := f.ns(t, "amb", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient})
	f.pod(t, amb, "web", enrolledAmbient)
	before := f.run(t)
	for _, id := range []string{MeshWideStrict, MeshWideDefaultDeny, ControlPlaneIsolated} {
		mustCheck(t, before, id, Fail)
	}
	h := Hardened(f.root, WithSystemNamespace(f.sys), WithLabels(map[string]string{"meshconform.io/run-id": f.env.RunID}))
	if err := h.Apply(ctxFor(t), f.c); err != nil {
		t.Fatal(err)
	}
	after := f.run(t)
	for _, id := range CheckIDs() {
		mustCheck(t, after, id, Pass)
	}
	if after.ExitCode() != ExitPass {
		t.Errorf("exit %d, want 0", after.ExitCode())
	}
	if err := h.Apply(ctxFor(t), f.c); err == nil || !apierrors.IsAlreadyExists(unwrapStatus(err)) {
		t.Errorf("a second Apply must refuse to overwrite, got %v", err)
	}
	if err := h.Delete(ctxFor(t), f.c); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(ctxFor(t), f.c); err != nil {
		t.Errorf("deleting what is gone is not an error: %v", err)
	}
	for _, id := range []string{MeshWideStrict, MeshWideDefaultDeny, ControlPlaneIsolated} {
		mustCheck(t, f.run(t), id, Fail)
	}
}

func unwrapStatus(err error) error {
	for e := err; e != nil; {
		if isAPIStatus(e) {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

// Allow-list entries by namespace, workload (through a ReplicaSet owner), selector and
// annotation suppress exactly the findings they match, which are reported with the reason.
func TestTier1AllowListHonoured(t *testing.T) {
	f := newFixture(t)
	f.harden(t)
	legacy := f.ns(t, "legacy", map[string]string{"istio-injection": "enabled"})
	shop := f.ns(t, "shop", map[string]string{"istio-injection": "enabled"})

	f.pod(t, legacy, "batch", label(istionames.InjectLabel, "false"))
	rs, err := f.env.Kube.AppsV1().ReplicaSets(shop).Create(ctxFor(t), &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f7c", Namespace: shop},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: pauseImage}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.pod(t, shop, "web-5d8f7c-x2x9q", sidecarInjected, label("pod-template-hash", "5d8f7c"), annotate(istionames.ExcludeInboundPortsAnnotation, "8081"),
		func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
		})
	f.pod(t, shop, "kafka-0", sidecarInjected, label("app", "kafka"), annotate(istionames.ExcludeOutboundPortsAnnotation, "9092"))
	f.pod(t, shop, "approved", sidecarInjected, annotate("security.example.com/posture-exception", "SEC-9"), annotate(istionames.ExcludeOutboundIPRangesAnnotation, "169.254.169.254/32"))
	f.pod(t, shop, "unexplained", sidecarInjected, annotate(istionames.ExcludeInboundPortsAnnotation, "7000"))

	allow := []AllowEntry{
		{Namespace: legacy, Checks: []string{SidecarsEverywhere}, Reason: "batch jobs until BILL-142"},
		{Workload: shop + "/web", Reason: "health port 8081 probed by the LB"},
		{Selector: "app=kafka", Namespace: shop, Reason: "broker TLS is native"},
		{Annotation: "security.example.com/posture-exception", Reason: "approved exception"},
		{Namespace: shop, Checks: []string{NoPrivilegedInit}, Reason: "CNI rollout in Q3"},
	}
	r := f.run(t, allow...)
	c4 := mustCheck(t, r, SidecarsEverywhere, Pass)
	if len(c4.Allowed) != 1 || c4.Allowed[0].Name != "batch" || c4.Allowed[0].Allowed.Reason != "batch jobs until BILL-142" || c4.Allowed[0].Allowed.Entry != 0 {
		t.Errorf("POSTURE-004 allowed %+v", c4.Allowed)
	}
	c5 := mustCheck(t, r, NoCaptureBypass, Fail)
	wantFindings(t, c5, fmt.Sprintf("Pod %s/unexplained metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts']=7000", shop))
	reasons := map[string]string{}
	for _, a := range c5.Allowed {
		reasons[a.Name] = a.Allowed.Reason
	}
	if want := map[string]string{"web-5d8f7c-x2x9q": "health port 8081 probed by the LB", "kafka-0": "broker TLS is native", "approved": "approved exception"}; !mapsEqual(reasons, want) {
		t.Errorf("POSTURE-005 allowed %v, want %v", reasons, want)
	}
	c6 := mustCheck(t, r, NoPrivilegedInit, Pass)
	if len(c6.Allowed) != 4 {
		t.Errorf("POSTURE-006: want the 4 injected shop pods allowed, got %v", findingKeys(c6.Allowed))
	}

	// Without the list, the same state fails three checks.
	r = f.run(t)
	mustCheck(t, r, SidecarsEverywhere, Fail)
	if c := mustCheck(t, r, NoCaptureBypass, Fail); len(c.Findings) != 4 {
		t.Errorf("POSTURE-005 without allow list: %v", findingKeys(c.Findings))
	}
	mustCheck(t, r, NoPrivilegedInit, Fail)

	// Through Main: the text output shows the exception and its reason.
	path := filepath.Join(t.TempDir(), "allow.yaml")
	yaml := fmt.Sprintf("allow:\n  - namespace: %s\n    checks: [POSTURE-004]\n    reason: batch jobs until BILL-142\n", legacy)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main(f.args("--allow-list", path), &stdout, &stderr)
	if code != ExitFindings {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if want := fmt.Sprintf("allow[0] namespace=%s checks=POSTURE-004: batch jobs until BILL-142", legacy); !strings.Contains(stdout.String(), want) {
		t.Errorf("text output lacks %q:\n%s", want, stdout.String())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Exit codes 0 and 1 through Main, with JSON and JUnit that parse back. The text output of
// the failing run is logged: it is the README's sample.
func TestTier1MainExitCodesAndFormats(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", map[string]string{"istio-injection": "enabled"})
	f.pod(t, apps, "web", cniInjected)

	f.harden(t)
	var stdout, stderr bytes.Buffer
	if code := Main(f.args("-o", "json"), &stdout, &stderr); code != ExitPass {
		t.Fatalf("hardened: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, stdout.String())
	}
	if len(r.Checks) != 7 || r.RootNamespace != f.root || r.Context != "meshconform-apitest" || r.Server != f.env.Config.Host {
		t.Errorf("JSON report: %d checks, root %q, context %q, server %q", len(r.Checks), r.RootNamespace, r.Context, r.Server)
	}

	// Break three checks.
	f.pod(t, apps, "legacy", label(istionames.InjectLabel, "false"))
	f.pod(t, apps, "reports", sidecarInjected, annotate(istionames.ExcludeOutboundPortsAnnotation, "5432"))
	junit := filepath.Join(t.TempDir(), "posture.xml")
	stdout.Reset()
	stderr.Reset()
	code := Main(f.args("--junit-file", junit), &stdout, &stderr)
	if code != ExitFindings {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	t.Logf("sample text output (exit %d):\n%s", code, stdout.String())
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, data)
	if doc.Tests != 7 || doc.Failures != 3 || doc.Errors != 0 {
		t.Fatalf("JUnit tests=%d failures=%d errors=%d, want 7/3/0:\n%s", doc.Tests, doc.Failures, doc.Errors, data)
	}
	failed := map[string]string{}
	for _, tc := range doc.Suites[0].Cases {
		if tc.Failure != nil {
			failed[tc.Failure.Type] = tc.Failure.Text
		}
	}
	for id, want := range map[string]string{
		SidecarsEverywhere: fmt.Sprintf("Pod %s/legacy  metadata.labels['sidecar.istio.io/inject'] = false", apps),
		NoCaptureBypass:    fmt.Sprintf("Pod %s/reports  metadata.annotations['traffic.sidecar.istio.io/excludeOutboundPorts'] = 5432", apps),
		NoPrivilegedInit:   fmt.Sprintf("Pod %s/reports  spec.initContainers[istio-init].securityContext.capabilities.add = [NET_ADMIN NET_RAW]", apps),
	} {
		if !strings.Contains(failed[id], want) {
			t.Errorf("JUnit failure of %s should contain %q, has %q", id, want, failed[id])
		}
	}

	stdout.Reset()
	if code := Main(f.args("-o", "junit"), &stdout, &stderr); code != ExitFindings || parseJUnit(t, stdout.Bytes()).Failures != 3 {
		t.Errorf("-o junit: exit %d\n%s", code, stdout.String())
	}
}

// recorder notes the (verb, group, resource) of every request a client sends.
type recorder struct {
	mu   sync.Mutex
	seen map[Permission]bool
	raw  []string
}

func (rec *recorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		p, ok := requestPermission(req)
		rec.mu.Lock()
		rec.raw = append(rec.raw, req.Method+" "+req.URL.Path)
		if ok {
			rec.seen[p] = true
		} else {
			rec.seen[Permission{Verb: "?", Resource: req.Method + " " + req.URL.Path}] = true
		}
		rec.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requestPermission maps a resource request path to what RBAC checks:
// /api/v1/[namespaces/NS/]RESOURCE[/NAME] and /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME].
func requestPermission(req *http.Request) (Permission, bool) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return Permission{}, false
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:] // a namespaced resource
	}
	resource, named := parts[0], len(parts) > 1
	verb := ""
	switch {
	case req.Method == http.MethodGet && named:
		verb = "get"
	case req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true":
		verb = "watch"
	case req.Method == http.MethodGet:
		verb = "list"
	default:
		verb = strings.ToLower(req.Method)
	}
	return Permission{Verb: verb, Group: group, Resource: resource}, true
}

// The ClusterRole is the single source of truth: the audit's actual requests against a real
// API server are exactly its rules, no more (it would fail under the role) and no fewer (the
// role would grant more than needed).
func TestTier1RequestsEqualClusterRole(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", map[string]string{"istio-injection": "enabled"})
	f.pod(t, apps, "web", sidecarInjected)
	rec := &recorder{seen: map[Permission]bool{}}
	cfg := rest.CopyConfig(f.env.Config)
	cfg.Wrap(rec.wrap)
	c, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctxFor(t), c, f.config()); err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for p := range rec.seen {
		got = append(got, p.String())
	}
	for _, p := range RequiredPermissions() {
		want = append(want, p.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the audit's requests and manifests/rbac/posture-clusterrole.yaml disagree:\n  requests:    %q\n  clusterrole: %q\n  raw: %q", got, want, rec.raw)
	}
}

// saKubeconfig writes a kubeconfig that impersonates ServiceAccount ns/name (the admin of
// the test API server may impersonate; RBAC then evaluates the ServiceAccount alone).
func saKubeconfig(t *testing.T, env *apitest.Environment, ns, name string) string {
	t.Helper()
	return env.KubeconfigAs(t, "system:serviceaccount:"+ns+":"+name, "posture-sa")
}

// bindRole creates ClusterRole name with rules, a ServiceAccount of the same name, and a
// ClusterRoleBinding between them (removed when the test ends), then waits until the API
// server's RBAC cache grants exactly rules (bindings reach the authorizer through an informer).
func bindRole(t *testing.T, f *fixture, name string, rules []rbacv1.PolicyRule) (saNS, saName string) {
	t.Helper()
	ctx := ctxFor(t)
	kube := f.env.Kube
	saNS, saName = f.sys, name
	if _, err := kube.CoreV1().ServiceAccounts(saNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: saName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: saName}}}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})

	var want []Permission
	for _, p := range RequiredPermissions() {
		granted := false
		for _, r := range rules {
			granted = granted || (slices.Contains(r.APIGroups, p.Group) && slices.Contains(r.Resources, p.Resource) && slices.Contains(r.Verbs, p.Verb))
		}
		if !granted {
			want = append(want, p)
		}
	}
	cfg := rest.CopyConfig(f.env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + saNS + ":" + saName}
	c, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for {
		got, err := MissingPermissions(ctx, c.Kube)
		if err != nil {
			t.Fatalf("asking as %s/%s: %v", saNS, saName, err)
		}
		if slices.Equal(got, want) {
			return saNS, saName
		}
		select {
		case <-ctx.Done():
			t.Fatalf("RBAC for %s/%s never settled: missing %v, want %v", saNS, saName, got, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A ServiceAccount bound to exactly the shipped ClusterRole can run the whole audit.
func TestTier1ServiceAccountWithMinimalClusterRole(t *testing.T) {
	f := newFixture(t)
	apps := f.ns(t, "apps", map[string]string{"istio-injection": "enabled"})
	f.pod(t, apps, "web", cniInjected)
	f.harden(t)
	cr, err := ClusterRole()
	if err != nil {
		t.Fatal(err)
	}
	ns, sa := bindRole(t, f, "posture-min-"+f.env.RunID, cr.Rules)
	kubeconfig := saKubeconfig(t, f.env, ns, sa)

	args := []string{"--kubeconfig", kubeconfig, "--istio-namespace", f.sys, "--namespaces", strings.Join(f.scope, ","), "-o", "json"}
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	if code != ExitPass {
		t.Fatalf("as %s/%s with the minimal ClusterRole: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", ns, sa, code, stdout.String(), stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Context != "posture-sa" || r.RootNamespace != f.root || len(r.MeshedNamespaces) != 1 {
		t.Errorf("report as the ServiceAccount: context %q root %q meshed %v", r.Context, r.RootNamespace, r.MeshedNamespaces)
	}

	// The same ServiceAccount, findings present: exit 1, not 2 (reading is enough).
	f.pod(t, apps, "legacy", label(istionames.InjectLabel, "false"))
	stdout.Reset()
	if code := Main(args, &stdout, &stderr); code != ExitFindings {
		t.Errorf("with a finding: exit %d, want 1\n%s", code, stderr.String())
	}
}

// Remove any one permission from the ClusterRole: exit 2, and the message names exactly it.
func TestTier1ServiceAccountMissingOnePermission(t *testing.T) {
	f := newFixture(t)
	for i, drop := range RequiredPermissions() {
		t.Run(drop.String(), func(t *testing.T) {
			var rules []rbacv1.PolicyRule
			for _, p := range RequiredPermissions() {
				if p != drop {
					rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{p.Group}, Resources: []string{p.Resource}, Verbs: []string{p.Verb}})
				}
			}
			ns, sa := bindRole(t, f, fmt.Sprintf("posture-less%d-%s", i, f.env.RunID), rules)
			kubeconfig := saKubeconfig(t, f.env, ns, sa)
			var stdout, stderr bytes.Buffer
			code := Main([]string{"--kubeconfig", kubeconfig, "--istio-namespace", f.sys, "-o", "json"}, &stdout, &stderr)
			if code != ExitError {
				t.Fatalf("exit %d, want 2\nstderr:\n%s", code, stderr.String())
			}
			var r Report
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("JSON: %v\n%s", err, stdout.String())
			}
			if !slices.Equal(r.MissingPermissions, []string{drop.String()}) {
				t.Errorf("missingPermissions %q, want exactly [%q]", r.MissingPermissions, drop)
			}
			var lines []string
			for _, l := range strings.Split(stderr.String(), "\n") {
				if m, ok := strings.CutPrefix(l, "  missing: "); ok {
					lines = append(lines, m)
				}
			}
			if !slices.Equal(lines, []string{drop.String()}) {
				t.Errorf("stderr lists %q as missing, want exactly [%q]:\n%s", lines, drop, stderr.String())
			}
			if want := "for system:serviceaccount:" + ns + ":" + sa; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr should name the user (%q):\n%s", want, stderr.String())
			}
			if i == 0 {
				t.Logf("stderr:\n%s", stderr.String())
			}
		})
	}
}
