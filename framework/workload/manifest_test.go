package workload

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
)

var allSamples = []Sample{
	Httpbin, Nginx, Frontend, Sleep, Curl, TestClient, PlainClient, ProductCatalog, MySQL, MySQLClient,
	ProbeServer, ProbeTCP, ProbeNoRewrite, ProbePort, ProbePortExcluded, HttpbinExcluded, MultiPort, HttpbinTTL, HttpbinTCP,
	GRPCAgent, GRPCAgentTTL, EchoServer, EchoClient, EchoAllowed, EchoPlain,
}

// echoSamples run only in the proxyless data plane (DATAPLANE_MODE=proxyless), never beside
// the others.
var echoSamples = []Sample{EchoServer, EchoClient, EchoAllowed, EchoPlain}

func loadAll(t *testing.T) map[Sample]*Manifest {
	t.Helper()
	out := map[Sample]*Manifest{}
	for _, s := range Samples() {
		m, err := Load(s)
		if err != nil {
			t.Fatal(err)
		}
		out[s] = m
	}
	return out
}

func TestEverySampleHasAConstantAndAFile(t *testing.T) {
	got := Samples()
	want := slices.Clone(allSamples)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("embedded samples %v\nexported constants %v\nadd a constant for each new file (and a file for each constant)", got, want)
	}
}

func TestManifestsParseStrictlyWithoutNamespace(t *testing.T) {
	for s, m := range loadAll(t) {
		for _, d := range m.Deployments {
			if d.Namespace != "" {
				t.Errorf("%s: Deployment %s sets namespace %q: namespaces are set at apply time", s, d.Name, d.Namespace)
			}
		}
		for _, o := range m.Services {
			if o.Namespace != "" {
				t.Errorf("%s: Service %s sets namespace %q", s, o.Name, o.Namespace)
			}
		}
		for _, o := range m.ServiceAccounts {
			if o.Namespace != "" {
				t.Errorf("%s: ServiceAccount %s sets namespace %q", s, o.Name, o.Namespace)
			}
		}
		if len(m.Deployments) != 1 {
			t.Errorf("%s: %d Deployments; a sample is one Deployment (Handle describes the first)", s, len(m.Deployments))
		}
	}
}

// The decoder must refuse what the API server would silently drop or refuse later.
func TestDecodeIsStrict(t *testing.T) {
	cases := map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  replica: 2\n",
		"unknown kind":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"no Deployment": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n",
		"bad YAML":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x\n",
	}
	for name, doc := range cases {
		if _, err := Decode([]byte(doc)); err == nil {
			t.Errorf("%s: Decode accepted:\n%s", name, doc)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	m, err := Decode([]byte("# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n---\n"))
	if err != nil || len(m.Deployments) != 1 || m.Deployments[0].Name != "x" {
		t.Fatalf("Decode of a comment document and a Deployment: %v, %+v", err, m)
	}
}

var (
	// name[:tag][@sha256:digest], the registry host included.
	imageRef = regexp.MustCompile(`^([a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+)(?::([A-Za-z0-9._-]+))?(?:@(sha256:[a-f0-9]{64}))?$`)
	semver3  = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)
)

// pinned says why an image reference is not pinned by tag (or digest), "" when it is.
func pinned(img string) string {
	m := imageRef.FindStringSubmatch(img)
	switch {
	case m == nil:
		return "not a fully qualified reference (registry/repository:tag)"
	case !strings.Contains(strings.SplitN(m[1], "/", 2)[0], "."):
		return "no registry host (write docker.io/...): kind nodes and mirrors resolve short names differently"
	case m[2] == "" && m[3] == "":
		return "no tag or digest"
	case m[2] == "latest":
		return "tag latest"
	case m[3] == "" && !semver3.MatchString(m[2]):
		return "tag " + m[2] + " is not a full version (x.y.z)"
	}
	return ""
}

// badCurl says why a curl image is unfit, "" when it is fine: curl 8.14.x exits 0 on some
// failures under --retry, turning a rejected connection into a pass.
func badCurl(img string) string {
	m := imageRef.FindStringSubmatch(img)
	if m == nil || !strings.HasSuffix(m[1], "/curl") {
		return ""
	}
	v := semver3.FindStringSubmatch(m[2])
	if v == nil {
		return "curl tag " + m[2] + " is not a version; the suite must know it is not 8.14.x"
	}
	if v[1] == "8" && v[2] == "14" {
		return "curl " + m[2] + " has the --retry exit-0 bug of 8.14.x"
	}
	return ""
}

func TestImageCheckersCatchBadImages(t *testing.T) {
	for _, img := range []string{"nginx", "docker.io/library/nginx", "docker.io/library/nginx:latest",
		"curlimages/curl:8.11.1", "docker.io/library/nginx:1.27", "docker.io/library/nginx:stable"} {
		if pinned(img) == "" {
			t.Errorf("pinned(%q) accepted an unpinned image", img)
		}
	}
	for _, img := range []string{"docker.io/curlimages/curl:8.14.0", "docker.io/curlimages/curl:8.14.1", "docker.io/curlimages/curl:latest"} {
		if badCurl(img) == "" {
			t.Errorf("badCurl(%q) accepted it", img)
		}
	}
	for _, img := range []string{"docker.io/curlimages/curl:8.11.1", "docker.io/curlimages/curl:8.15.0",
		"docker.io/library/mysql:8.14.0" /* not curl */} {
		if why := badCurl(img); why != "" {
			t.Errorf("badCurl(%q): %s", img, why)
		}
	}
	digest := "docker.io/curlimages/curl:8.11.1@sha256:" + strings.Repeat("a", 64)
	if why := pinned(digest); why != "" {
		t.Errorf("pinned(%q): %s", digest, why)
	}
}

func TestImagesArePinnedAndCurlIsNot814(t *testing.T) {
	imgs := Images()
	want := []string{
		"docker.io/curlimages/curl:8.11.1",
		"docker.io/library/mysql:8.4.3",
		"docker.io/library/nginx:1.27.3-alpine",
		"docker.io/mccutchen/go-httpbin:v2.15.0",
	}
	if !slices.Equal(imgs, want) {
		t.Errorf("Images() = %v, want %v (update this list and the report when an image changes)", imgs, want)
	}
	sawCurl := false
	for _, img := range imgs {
		if why := pinned(img); why != "" {
			t.Errorf("image %s: %s", img, why)
		}
		if why := badCurl(img); why != "" {
			t.Errorf("image %s: %s", img, why)
		}
		sawCurl = sawCurl || strings.HasSuffix(strings.Split(img, ":")[0], "/curl")
	}
	if !sawCurl {
		t.Error("no curl image among the samples: the clients need one")
	}
	for s, m := range loadAll(t) {
		for _, d := range m.Deployments {
			for _, c := range allContainers(&d.Spec.Template.Spec) {
				if c.ImagePullPolicy != corev1.PullIfNotPresent {
					t.Errorf("%s: container %s: imagePullPolicy %q, want IfNotPresent (images are preloaded into kind)", s, c.Name, c.ImagePullPolicy)
				}
			}
		}
	}
	fast, err := ImagesOf(Httpbin, Sleep)
	if err != nil || !slices.Equal(fast, []string{"docker.io/curlimages/curl:8.11.1", "docker.io/mccutchen/go-httpbin:v2.15.0"}) {
		t.Errorf("ImagesOf(httpbin, sleep) = %v, %v", fast, err)
	}
	if _, err := ImagesOf("nope"); err == nil || !strings.Contains(err.Error(), "httpbin") {
		t.Errorf("ImagesOf(unknown) error should list known samples, got %v", err)
	}
}

func TestPlainAndMeshClients(t *testing.T) {
	ms := loadAll(t)
	injected := map[string]string{istionames.InjectionLabel: "enabled"}
	for s, m := range ms {
		tmpl := m.Deployments[0].Spec.Template
		l, a := tmpl.Labels[istionames.InjectLabel], tmpl.Annotations[istionames.InjectLabel]
		if (l != "") != (a != "") || l != a {
			t.Errorf("%s: %s label %q and annotation %q: a plain pod carries both, equal", s, istionames.InjectLabel, l, a)
		}
		wantPlain := s == PlainClient || s == EchoPlain
		if got := !SidecarExpected(injected, tmpl.Labels, tmpl.Annotations); got != wantPlain {
			t.Errorf("%s: plain (no sidecar in an injected namespace) = %t, want %t", s, got, wantPlain)
		}
		// In ambient mode the plain client stays out of an enrolled namespace by its own label.
		ambientNS := map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient}
		if got, want := !AmbientExpected(ambientNS, tmpl.Labels), s == PlainClient; got != want {
			t.Errorf("%s: plain (not enrolled in an ambient namespace) = %t, want %t", s, got, want)
		}
	}
	for _, s := range []Sample{Sleep, Curl, TestClient, PlainClient, ProductCatalog} {
		spec := ms[s].Deployments[0].Spec.Template.Spec
		c := spec.Containers[0]
		if !strings.HasSuffix(strings.Split(c.Image, ":")[0], "/curl") {
			t.Errorf("%s: first container runs %s, want the curl image", s, c.Image)
		}
		if !slices.Equal(c.Command, []string{"/bin/sleep", "infinity"}) {
			t.Errorf("%s: command %q, want a client that sleeps until exec'd into", s, c.Command)
		}
	}
	if c := ms[MySQLClient].Deployments[0].Spec.Template.Spec.Containers[0]; !slices.Equal(c.Command, []string{"sleep", "infinity"}) {
		t.Errorf("mysql-client: command %q", c.Command)
	}
}

func TestResourceRequestsAreSetAndSmall(t *testing.T) {
	maxCPU, maxMem := resource.MustParse("10m"), resource.MustParse("128Mi")
	var cpu, mem, echoCPU, echoMem resource.Quantity
	for s, m := range loadAll(t) {
		for _, d := range m.Deployments {
			if r := d.Spec.Replicas; r == nil || *r != 1 {
				t.Errorf("%s: replicas %v, want 1", s, r)
			}
			for _, c := range allContainers(&d.Spec.Template.Spec) {
				rc, okc := c.Resources.Requests[corev1.ResourceCPU]
				rm, okm := c.Resources.Requests[corev1.ResourceMemory]
				if !okc || !okm {
					t.Errorf("%s: container %s: requests %v: set cpu and memory", s, c.Name, c.Resources.Requests)
					continue
				}
				if rc.Cmp(maxCPU) > 0 || rm.Cmp(maxMem) > 0 {
					t.Errorf("%s: container %s requests cpu %s memory %s; keep ≤ %s / %s (2-core CI runner)", s, c.Name, rc.String(), rm.String(), maxCPU.String(), maxMem.String())
				}
				if slices.Contains(echoSamples, s) {
					echoCPU.Add(rc)
					echoMem.Add(rm)
					continue
				}
				cpu.Add(rc)
				mem.Add(rm)
			}
		}
	}
	// Every sample at once (a spec never needs all) must still fit beside kind and Istio.
	if cpu.Cmp(resource.MustParse("150m")) > 0 || mem.Cmp(resource.MustParse("512Mi")) > 0 {
		t.Errorf("all samples request cpu %s memory %s; keep ≤ 150m / 512Mi", cpu.String(), mem.String())
	}
	// The proxyless samples run instead of the others (DATAPLANE_MODE=proxyless): the same budget.
	if echoCPU.Cmp(resource.MustParse("150m")) > 0 || echoMem.Cmp(resource.MustParse("512Mi")) > 0 {
		t.Errorf("the proxyless samples request cpu %s memory %s; keep ≤ 150m / 512Mi", echoCPU.String(), echoMem.String())
	}
	t.Logf("all samples request cpu %s, memory %s; the proxyless ones cpu %s, memory %s (proxies not counted)", cpu.String(), mem.String(), echoCPU.String(), echoMem.String())
}

// BEHAVIORS.md names these service accounts, services and ports.
func TestServiceAccountsServicesAndPortsMatchTheCatalog(t *testing.T) {
	ms := loadAll(t)
	type want struct {
		sa, svc string
		port    int32
		target  int
	}
	wants := map[Sample]want{
		Httpbin:         {"httpbin", "httpbin", 8000, 8080},
		Sleep:           {"sleep", "", 0, 0},
		Curl:            {"curl", "", 0, 0},
		TestClient:      {"test-service-account", "", 0, 0},
		Nginx:           {"my-nginx", "my-nginx", 80, 80},
		Frontend:        {"frontend", "frontend", 80, 8080},
		ProductCatalog:  {"productcatalogservice", "", 0, 0},
		HttpbinExcluded: {"httpbin-excluded", "httpbin-excluded", 8000, 8080},
		HttpbinTTL:      {"httpbin-ttl", "httpbin-ttl", 8000, 8080},
		MySQL:           {"mysql", "mysql", 3306, 3306},
	}
	for s, w := range wants {
		m := ms[s]
		d := m.Deployments[0]
		if got := d.Spec.Template.Spec.ServiceAccountName; got != w.sa {
			t.Errorf("%s: service account %q, want %q", s, got, w.sa)
		}
		if w.svc == "" {
			if len(m.Services) != 0 {
				t.Errorf("%s: a client has no Service, found %s", s, m.Services[0].Name)
			}
			continue
		}
		if len(m.Services) == 0 || m.Services[0].Name != w.svc {
			t.Errorf("%s: want Service %s", s, w.svc)
			continue
		}
		p := m.Services[0].Spec.Ports[0]
		if p.Port != w.port || p.TargetPort != intstr.FromInt32(int32(w.target)) {
			t.Errorf("%s: Service port %d → %s, want %d → %d", s, p.Port, p.TargetPort.String(), w.port, w.target)
		}
	}
	if d := ms[Nginx].Deployments[0]; d.Name != "my-nginx" || d.Spec.Selector.MatchLabels["run"] != "my-nginx" {
		t.Errorf("nginx: Deployment %s selecting %v, want my-nginx selecting run=my-nginx (seed 004's policies select it)", d.Name, d.Spec.Selector.MatchLabels)
	}
	if h := ms[Httpbin].Deployments[0].Spec.Template.Spec.Containers[0].Image; !strings.Contains(h, "go-httpbin") {
		t.Errorf("httpbin runs %s; it must echo headers at /headers (go-httpbin does)", h)
	}
}

// Every sample is self-consistent: what the API server cannot check for us.
func TestSamplesAreSelfConsistent(t *testing.T) {
	for s, m := range loadAll(t) {
		sas := map[string]bool{}
		for _, sa := range m.ServiceAccounts {
			sas[sa.Name] = true
		}
		d := m.Deployments[0]
		tmpl := d.Spec.Template
		if d.Spec.Selector == nil || !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(tmpl.Labels)) {
			t.Errorf("%s: Deployment selector %v does not match its template labels %v", s, d.Spec.Selector, tmpl.Labels)
		}
		if tmpl.Labels["app"] == "" {
			t.Errorf("%s: pod template has no app label (PodFor and Istio telemetry use it)", s)
		}
		if sa := tmpl.Spec.ServiceAccountName; !sas[sa] {
			t.Errorf("%s: pods run as service account %q, which the sample does not create", s, sa)
		}
		ports := map[int32]bool{}
		for _, c := range tmpl.Spec.Containers {
			for _, p := range c.Ports {
				if ports[p.ContainerPort] {
					t.Errorf("%s: container port %d declared twice", s, p.ContainerPort)
				}
				ports[p.ContainerPort] = true
			}
		}
		for _, svc := range m.Services {
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) || len(svc.Spec.Selector) == 0 {
				t.Errorf("%s: Service %s selector %v does not select the pods %v", s, svc.Name, svc.Spec.Selector, tmpl.Labels)
			}
			for _, p := range svc.Spec.Ports {
				if p.TargetPort.Type != intstr.Int || !ports[p.TargetPort.IntVal] {
					t.Errorf("%s: Service %s port %d targets %s, which no container declares", s, svc.Name, p.Port, p.TargetPort.String())
				}
				if p.Name == "" {
					t.Errorf("%s: Service %s port %d has no name: Istio selects the protocol by name", s, svc.Name, p.Port)
				}
			}
		}
		if g := tmpl.Spec.TerminationGracePeriodSeconds; g == nil || *g > 5 {
			t.Errorf("%s: terminationGracePeriodSeconds %v; keep it short so namespace deletion is quick", s, g)
		}
	}
}

func TestProbeAndCaptureVariants(t *testing.T) {
	ms := loadAll(t)
	httpProbePorts := func(s Sample) (ready, live []int32) {
		for _, c := range ms[s].Deployments[0].Spec.Template.Spec.Containers {
			if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil {
				ready = append(ready, p.HTTPGet.Port.IntVal)
			}
			if p := c.LivenessProbe; p != nil && p.HTTPGet != nil {
				live = append(live, p.HTTPGet.Port.IntVal)
			}
		}
		return
	}
	ann := func(s Sample, k string) string { return ms[s].Deployments[0].Spec.Template.Annotations[k] }
	const rewrite, exclude = "sidecar.istio.io/rewriteAppHTTPProbers", "traffic.sidecar.istio.io/excludeInboundPorts"

	for _, s := range []Sample{ProbeServer, ProbeNoRewrite} {
		r, l := httpProbePorts(s)
		if !slices.Equal(r, []int32{8080}) || !slices.Equal(l, []int32{8080}) {
			t.Errorf("%s: HTTP readiness %v liveness %v, want both on the app port 8080", s, r, l)
		}
	}
	if v, ok := ms[ProbeServer].Deployments[0].Spec.Template.Annotations[rewrite]; ok {
		t.Errorf("probe-server sets %s=%q; it must keep Istio's default", rewrite, v)
	}
	if ann(ProbeNoRewrite, rewrite) != "false" {
		t.Errorf("probe-norewrite: %s=%q, want \"false\"", rewrite, ann(ProbeNoRewrite, rewrite))
	}
	for _, s := range []Sample{ProbePort, ProbePortExcluded} {
		r, l := httpProbePorts(s)
		if !slices.Equal(r, []int32{8081}) || !slices.Equal(l, []int32{8081}) {
			t.Errorf("%s: HTTP readiness %v liveness %v, want both on the separate port 8081", s, r, l)
		}
		if ann(s, rewrite) != "false" {
			t.Errorf("%s: %s=%q, want \"false\" (else the probes never reach 8081)", s, rewrite, ann(s, rewrite))
		}
	}
	if ann(ProbePort, exclude) != "" {
		t.Errorf("probe-port excludes %q; that is probe-port-excluded's job", ann(ProbePort, exclude))
	}
	if ann(ProbePortExcluded, exclude) != "8081" {
		t.Errorf("probe-port-excluded: %s=%q, want \"8081\"", exclude, ann(ProbePortExcluded, exclude))
	}
	if got := ann(HttpbinExcluded, exclude); got != strconv.Itoa(8080) {
		t.Errorf("httpbin-excluded: %s=%q, want its app port \"8080\"", exclude, got)
	}
	for s := range ms {
		if s != ProbePortExcluded && s != HttpbinExcluded && ann(s, exclude) != "" {
			t.Errorf("%s: unexpected %s=%q", s, exclude, ann(s, exclude))
		}
	}
	if svc := ms[MultiPort].Services[0]; len(svc.Spec.Ports) != 2 {
		t.Errorf("multiport: %d Service ports, want 2", len(svc.Spec.Ports))
	}
}

// The grpc-agent samples select Istio's grpc-agent template and hold the app until the agent is
// ready; only they get ISTIO_AGENT_IMAGE, and an empty one changes nothing.
func TestAgentSamplesAndAgentImage(t *testing.T) {
	const img = "meshconform.local/istio/pilot-agent:1.31.0-dev.20260827124520"
	for s, m := range loadAll(t) {
		tmpl := m.Deployments[0].Spec.Template
		agent := s == GRPCAgent || s == GRPCAgentTTL || (slices.Contains(echoSamples, s) && s != EchoPlain)
		if UsesAgentTemplate(tmpl.Annotations) != agent {
			t.Errorf("%s: uses the grpc-agent template = %t, want %t", s, !agent, agent)
		}
		if agent && !strings.Contains(tmpl.Annotations["proxy.istio.io/config"], `"holdApplicationUntilProxyStarts":true`) {
			t.Errorf("%s: proxy.istio.io/config %q does not hold the app until the agent is ready", s, tmpl.Annotations["proxy.istio.io/config"])
		}
		if m.UseAgentImage("") {
			t.Errorf("%s: an empty agent image changed the manifest", s)
		}
		if got := m.UseAgentImage(img); got != agent || (tmpl.Annotations["sidecar.istio.io/proxyImage"] == img) != agent {
			t.Errorf("%s: UseAgentImage = %t, annotation %q; want the image only on grpc-agent pods", s, got, tmpl.Annotations["sidecar.istio.io/proxyImage"])
		}
	}
	if !strings.Contains(loadAll(t)[GRPCAgentTTL].Deployments[0].Spec.Template.Annotations["proxy.istio.io/config"], `"SECRET_TTL":"48h"`) {
		t.Error("grpc-agent-ttl does not ask for 48h certificates")
	}
	if !UsesAgentTemplate(map[string]string{"inject.istio.io/templates": "sidecar, grpc-agent"}) || UsesAgentTemplate(map[string]string{"inject.istio.io/templates": "grpc-agentx"}) {
		t.Error("UsesAgentTemplate does not read the comma-separated list")
	}
}

func TestSlowSamples(t *testing.T) {
	for s, m := range loadAll(t) {
		want := s == MySQL || s == MySQLClient
		if m.Slow() != want {
			t.Errorf("%s: Slow() = %t, want %t", s, m.Slow(), want)
		}
	}
}

func TestRenderStampsNamespaceAndLabels(t *testing.T) {
	m, err := Load(Httpbin)
	if err != nil {
		t.Fatal(err)
	}
	selBefore := m.Deployments[0].Spec.Selector.String()
	m.Render("ns1", "run1")
	check := func(what string, ns string, l map[string]string) {
		if ns != "ns1" {
			t.Errorf("%s: namespace %q", what, ns)
		}
		if !ownership.Owned(l, "run1") || l[SampleKey] != "httpbin" || l["app"] != "httpbin" {
			t.Errorf("%s: labels %v lack ownership, sample or app", what, l)
		}
	}
	check("ServiceAccount", m.ServiceAccounts[0].Namespace, m.ServiceAccounts[0].Labels)
	check("Service", m.Services[0].Namespace, m.Services[0].Labels)
	check("Deployment", m.Deployments[0].Namespace, m.Deployments[0].Labels)
	check("pod template", "ns1", m.Deployments[0].Spec.Template.Labels)
	if after := m.Deployments[0].Spec.Selector.String(); after != selBefore {
		t.Errorf("selector changed %s → %s; selectors are immutable", selBefore, after)
	}
	// Load returns fresh copies: rendering one does not leak into the next.
	again, _ := Load(Httpbin)
	if again.Deployments[0].Namespace != "" || again.Deployments[0].Labels[ownership.RunIDKey] != "" {
		t.Errorf("Load returned a rendered manifest: %+v", again.Deployments[0].ObjectMeta)
	}
}

func TestHandle(t *testing.T) {
	ns := &corev1.Namespace{}
	ns.Name, ns.Labels = "mtls-x", map[string]string{istionames.InjectionLabel: "enabled"}
	for _, c := range []struct {
		s                           Sample
		name, app, sa, svc, url, co string
		sidecar                     bool
	}{
		{Httpbin, "httpbin", "httpbin", "httpbin", "httpbin", "http://httpbin.mtls-x:8000/headers", "httpbin", true},
		{Nginx, "my-nginx", "my-nginx", "my-nginx", "my-nginx", "http://my-nginx.mtls-x:80/headers", "my-nginx", true},
		{Frontend, "frontend", "frontend", "frontend", "frontend", "http://frontend.mtls-x:80/headers", "server", true},
		{PlainClient, "plain-client", "plain-client", "test-service-account", "", "", "curl", false},
		{TestClient, "test-client", "test-client", "test-service-account", "", "", "curl", true},
	} {
		m, err := Load(c.s)
		if err != nil {
			t.Fatal(err)
		}
		h := handleFor(m, ns)
		got := fmt.Sprint(h.Name, h.App, h.ServiceAccount, h.Service, h.URL("/headers"), h.Container, h.Sidecar)
		want := fmt.Sprint(c.name, c.app, c.sa, c.svc, c.url, c.co, c.sidecar)
		if got != want {
			t.Errorf("%s: handle %+v\n got  %s\n want %s", c.s, h, got, want)
		}
		if _, err := labels.Parse(h.Selector); err != nil || h.Selector == "" {
			t.Errorf("%s: selector %q: %v", c.s, h.Selector, err)
		}
	}
}

func TestSidecarExpected(t *testing.T) {
	on, off, rev := map[string]string{istionames.InjectionLabel: "enabled"}, map[string]string{istionames.InjectionLabel: "disabled"}, map[string]string{istionames.RevisionLabel: "canary"}
	no, yes := map[string]string{istionames.InjectLabel: "false"}, map[string]string{istionames.InjectLabel: "true"}
	for _, c := range []struct {
		name            string
		ns, label, anno map[string]string
		want            bool
	}{
		{"namespace on", on, nil, nil, true},
		{"namespace off", off, nil, nil, false},
		{"revision", rev, nil, nil, true},
		{"unlabelled namespace", nil, nil, nil, false},
		{"pod label false in injected namespace", on, no, nil, false},
		{"pod annotation false in injected namespace", on, nil, no, false},
		{"pod label false under a revision", rev, no, nil, false},
		{"pod label true in unlabelled namespace", nil, yes, nil, true},
		{"pod label true in disabled namespace", off, yes, nil, false},
		{"pod annotation true alone does not reach the webhook", nil, nil, yes, false},
	} {
		if got := SidecarExpected(c.ns, c.label, c.anno); got != c.want {
			t.Errorf("%s: SidecarExpected = %t, want %t", c.name, got, c.want)
		}
	}
}

func TestInjectionLabels(t *testing.T) {
	for _, c := range []struct {
		in   Injection
		want string
		err  bool
	}{
		{InjectionOn, "map[istio-injection:enabled]", false},
		{InjectionOff, "map[istio-injection:disabled]", false},
		{InjectionAmbient, "map[istio.io/dataplane-mode:ambient]", false},
		{Revision("1-27-1"), "map[istio.io/rev:1-27-1]", false},
		{Revision("Bad_Rev"), "", true},
		{Revision(""), "", true},
		{"", "", true},
		{"enabled", "", true},
	} {
		l, err := c.in.Labels()
		if (err != nil) != c.err || (err == nil && fmt.Sprint(l) != c.want) {
			t.Errorf("Injection(%q).Labels() = %v, %v; want %s (error %t)", string(c.in), l, err, c.want, c.err)
		}
	}
}

// ServicePods: each Service with the labels of the pods it selects, from the manifests.
func TestServicePods(t *testing.T) {
	got, err := ServicePods(Httpbin, Nginx, Sleep)
	if err != nil {
		t.Fatal(err)
	}
	if got["my-nginx"]["run"] != "my-nginx" || got["httpbin"]["app"] != "httpbin" || len(got) != 2 {
		t.Errorf("ServicePods(httpbin, nginx, sleep) = %v: want httpbin and my-nginx with their pods' labels, and sleep has no Service", got)
	}
	if _, err := ServicePods("nothing"); err == nil {
		t.Error("an unknown sample: no error")
	}
}
