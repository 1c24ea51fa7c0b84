// Package workload deploys the sample workloads of the source documents (manifests/workloads,
// embedded) into per-spec namespaces, and waits until they are ready, proxies included.
//
//	ns, err := workload.Namespace(ctx, kube, workload.NamespaceSpec{Prefix: "mtls", RunID: id, Injection: workload.InjectionOn})
//	hs, err := workload.Deploy(ctx, kube, ns, workload.Httpbin, workload.Sleep, workload.PlainClient)
//	err = workload.WaitReady(ctx, kube, ns, hs[0].Selector)
//	pod, err := workload.PodFor(ctx, kube, ns, "sleep")
//
// The manifests are templated only at apply time, and only by namespace and labels (the
// ownership labels of the run and the sample's name): what is in the YAML is what runs.
package workload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
	"meshconform/manifests"
)

// Sample names one sample workload: the file manifests/workloads/<name>.yaml.
type Sample string

// The samples. BEHAVIORS.md names the servers, service accounts and ports these carry.
const (
	// Httpbin echoes request headers at /headers (XFCC); sa httpbin, Service port 8000→8080.
	Httpbin Sample = "httpbin"
	// Nginx is seed 004's my-nginx (Deployment, Service and run=my-nginx), port 80.
	Nginx Sample = "nginx"
	// Frontend is seed 001's frontend server, Service port 80→8080.
	Frontend Sample = "frontend"
	// Sleep is a mesh curl client with sa sleep.
	Sleep Sample = "sleep"
	// Curl is a mesh curl client with sa curl.
	Curl Sample = "curl"
	// TestClient is a mesh curl client with sa test-service-account.
	TestClient Sample = "test-client"
	// PlainClient is a curl client without a sidecar (sa test-service-account, see its YAML).
	PlainClient Sample = "plain-client"
	// ProductCatalog is a mesh pod whose istio-proxy container is a probe source.
	ProductCatalog Sample = "productcatalogservice"
	// MySQL is a server-first protocol server (slow: large image).
	MySQL Sample = "mysql"
	// MySQLClient is a mesh pod with the mysql client (slow: large image).
	MySQLClient Sample = "mysql-client"
	// ProbeServer has HTTP readiness and liveness probes on its app port 8080.
	ProbeServer Sample = "probe-server"
	// ProbeTCP has TCP (tcpSocket) readiness and liveness probes on its app port 8080.
	ProbeTCP Sample = "probe-tcp"
	// ProbeNoRewrite is ProbeServer with sidecar.istio.io/rewriteAppHTTPProbers: "false".
	ProbeNoRewrite Sample = "probe-norewrite"
	// ProbePort probes a separate port, 8081, with rewrite off (PERMISSIVE on 8081 needed).
	ProbePort Sample = "probe-port"
	// ProbePortExcluded is ProbePort with 8081 excluded from inbound capture.
	ProbePortExcluded Sample = "probe-port-excluded"
	// HttpbinTCP is httpbin behind a Service port declared TCP (appProtocol: tcp).
	HttpbinTCP Sample = "httpbin-tcp"
	// HttpbinExcluded is httpbin with its port excluded from inbound capture (MTLS-010).
	HttpbinExcluded Sample = "httpbin-excluded"
	// MultiPort serves HTTP on two ports, 8080 and 8081 (Service 8000 and 8001).
	MultiPort Sample = "multiport"
	// HttpbinTTL is httpbin whose proxy requests 48h certificates (SECRET_TTL, CERT-004).
	HttpbinTTL Sample = "httpbin-ttl"
	// GRPCAgent is a client injected with Istio's grpc-agent template (pilot-agent, no Envoy),
	// holding the app until the agent wrote its workload certificate (CERT-006, CERT-007).
	GRPCAgent Sample = "grpc-agent"
	// GRPCAgentTTL is GRPCAgent asking for 48h certificates (SECRET_TTL, CERT-007).
	GRPCAgentTTL Sample = "grpc-agent-ttl"
	// EchoServer is Istio's echo server as a proxyless gRPC server (grpc-agent template, xDS
	// ports 7070 and 7071): the proxyless data plane's target.
	EchoServer Sample = "echo-server"
	// EchoClient and EchoAllowed are proxyless gRPC clients (grpc-agent template) with the
	// service accounts echo-client and echo-allowed.
	EchoClient  Sample = "echo-client"
	EchoAllowed Sample = "echo-allowed"
	// EchoPlain is Istio's echo image without injection: a plain gRPC client.
	EchoPlain Sample = "echo-plain"
)

// EchoImagePlaceholder is the image the echo samples name: the run gives them ISTIO_ECHO_IMAGE
// instead (Manifest.UseEchoImage). Istio publishes its echo image only for its own tests, and
// the live tier builds it from the pinned commits (scripts/istiod-image.sh), so no image name
// is right for every run; Images leaves the placeholder out.
const EchoImagePlaceholder = "istio-echo-image"

const (
	// SampleKey labels every object Deploy applies, and its pods, with the sample's name.
	SampleKey = "meshconform.io/sample"
	// SlowKey="true" on a sample's Deployment marks it slow (a large image): specs that use
	// it carry the "slow" Ginkgo label.
	SlowKey = "meshconform.io/slow"
)

// Manifest is one sample's objects, decoded from its YAML into typed objects. Each Load
// returns fresh copies, free to change.
type Manifest struct {
	Sample          Sample
	ServiceAccounts []*corev1.ServiceAccount
	Services        []*corev1.Service
	Deployments     []*appsv1.Deployment
}

var raw struct {
	once  sync.Once
	files map[Sample][]byte
	err   error
}

func rawFiles() (map[Sample][]byte, error) {
	raw.once.Do(func() {
		raw.files, raw.err = readFiles(manifests.Workloads())
	})
	return raw.files, raw.err
}

func readFiles(fsys fs.FS) (map[Sample][]byte, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	files := make(map[Sample][]byte, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		files[Sample(strings.TrimSuffix(path.Base(n), ".yaml"))] = b
	}
	if len(files) == 0 {
		return nil, errors.New("workload: no manifests embedded under manifests/workloads")
	}
	return files, nil
}

// Samples returns the name of every embedded sample, sorted.
func Samples() []Sample {
	files, err := rawFiles()
	if err != nil {
		return nil
	}
	out := make([]Sample, 0, len(files))
	for s := range files {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Load decodes a sample's manifest. Decoding is strict: an unknown field or kind is an
// error, so a typo fails here rather than being dropped on the way to the API server.
func Load(s Sample) (*Manifest, error) {
	files, err := rawFiles()
	if err != nil {
		return nil, err
	}
	b, ok := files[s]
	if !ok {
		return nil, fmt.Errorf("workload: no sample %q; known samples: %s", s, joinSamples(Samples()))
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("workload: manifests/workloads/%s.yaml: %w", s, err)
	}
	m.Sample = s
	return m, nil
}

// Decode reads a multi-document YAML stream of ServiceAccounts, Services and Deployments.
func Decode(b []byte) (*Manifest, error) {
	m := &Manifest{}
	r := utilyaml.NewYAMLReader(bufioReader(b))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			m.ServiceAccounts, obj = append(m.ServiceAccounts, o), o
		case "v1 Service":
			o := &corev1.Service{}
			m.Services, obj = append(m.Services, o), o
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			m.Deployments, obj = append(m.Deployments, o), o
		default:
			return nil, fmt.Errorf("document %d: apiVersion %q kind %q: samples hold only v1 ServiceAccount, v1 Service and apps/v1 Deployment",
				i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
	}
	if len(m.Deployments) == 0 {
		return nil, errors.New("no Deployment: a sample runs at least one")
	}
	return m, nil
}

// stripComments drops whole-line comments, so a document of only comments counts as empty.
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// Slow reports whether any Deployment of the sample is labelled slow.
func (m *Manifest) Slow() bool {
	for _, d := range m.Deployments {
		if d.Labels[SlowKey] == "true" {
			return true
		}
	}
	return false
}

// Images returns the images the sample's pods run (containers and init containers), sorted.
func (m *Manifest) Images() []string {
	var out []string
	for _, d := range m.Deployments {
		for _, c := range allContainers(&d.Spec.Template.Spec) {
			if c.Image != EchoImagePlaceholder && !slices.Contains(out, c.Image) {
				out = append(out, c.Image)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Render stamps the manifest for namespace ns and run runID: every object gets the
// namespace, the ownership labels and the sample label; so do the Deployments' pod
// templates, so that pods can be found by run. Selectors are left as written (they are
// immutable, and the sample's own labels already make them unique in the namespace).
func (m *Manifest) Render(ns, runID string) {
	extra := map[string]string{SampleKey: string(m.Sample)}
	stamp := func(om *metav1.ObjectMeta) {
		om.Namespace = ns
		om.Labels = stampLabels(om.Labels, runID, extra)
	}
	for _, o := range m.ServiceAccounts {
		stamp(&o.ObjectMeta)
	}
	for _, o := range m.Services {
		stamp(&o.ObjectMeta)
	}
	for _, o := range m.Deployments {
		stamp(&o.ObjectMeta)
		o.Spec.Template.Labels = stampLabels(o.Spec.Template.Labels, runID, extra)
	}
}

// UseAgentImage gives img to every pod template that selects Istio's grpc-agent injection
// template (annotation inject.istio.io/templates), as its annotation sidecar.istio.io/proxyImage:
// the image the injected istio-proxy container runs pilot-agent from. Other pods keep the
// chart's proxy image. It reports whether any template was changed; img "" changes nothing.
func (m *Manifest) UseAgentImage(img string) bool {
	changed := false
	for _, d := range m.Deployments {
		if img == "" || !UsesAgentTemplate(d.Spec.Template.Annotations) {
			continue
		}
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations[istionames.ProxyImageAnnotation] = img
		changed = true
	}
	return changed
}

// UseEchoImage gives img to every container that names EchoImagePlaceholder, and reports
// whether any did; img "" changes nothing (such a pod cannot start: its image does not exist).
func (m *Manifest) UseEchoImage(img string) bool {
	changed := false
	for _, d := range m.Deployments {
		spec := &d.Spec.Template.Spec
		for i := range spec.Containers {
			if img != "" && spec.Containers[i].Image == EchoImagePlaceholder {
				spec.Containers[i].Image = img
				changed = true
			}
		}
	}
	return changed
}

// UsesAgentTemplate reports whether pod annotations select Istio's grpc-agent injection
// template (inject.istio.io/templates, a comma-separated list: pkg/kube/inject/inject.go).
func UsesAgentTemplate(podAnnotations map[string]string) bool {
	for _, t := range strings.Split(podAnnotations[istionames.InjectTemplatesAnnotation], ",") {
		if strings.TrimSpace(t) == istionames.GRPCAgentTemplate {
			return true
		}
	}
	return false
}

// Images returns every image the samples use, sorted and without duplicates: what a kind
// cluster must have loaded before the specs run.
func Images() []string {
	out, err := ImagesOf(Samples()...)
	if err != nil {
		return nil
	}
	return out
}

// ImagesOf returns the images the given samples use, sorted and without duplicates.
func ImagesOf(samples ...Sample) ([]string, error) {
	set := map[string]bool{}
	for _, s := range samples {
		m, err := Load(s)
		if err != nil {
			return nil, err
		}
		for _, img := range m.Images() {
			set[img] = true
		}
	}
	out := make([]string, 0, len(set))
	for img := range set {
		out = append(out, img)
	}
	sort.Strings(out)
	return out, nil
}

func allContainers(spec *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

func joinSamples(ss []Sample) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// ServicePods maps each Service of the samples to the labels of the pods it selects (the pod
// template of the sample's Deployment it matches): what a policy's selector is matched against
// when it moves to the Services a waypoint enforces it for (policy.ForWaypoint).
func ServicePods(samples ...Sample) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, s := range samples {
		m, err := Load(s)
		if err != nil {
			return nil, err
		}
		for _, svc := range m.Services {
			for _, d := range m.Deployments {
				if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					out[svc.Name] = maps.Clone(d.Spec.Template.Labels)
				}
			}
		}
	}
	return out, nil
}
