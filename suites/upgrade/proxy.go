package upgrade

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/framework/workload"
)

// Proxy is a pod's istio-proxy as its spec says: which image, and so which Istio version the
// injector that created the pod put there.
type Proxy struct {
	Container string
	// Native is true for a native sidecar (an init container with restartPolicy Always).
	Native bool
	Image  string
	// Tag is the image's tag ("" for a digest-only reference).
	Tag string
	// Version is the Istio release the tag names, variants (-distroless, -debug) stripped; ""
	// when the tag is not a release.
	Version string
}

func (p Proxy) String() string {
	v := p.Version
	if v == "" {
		v = "unknown version"
	}
	kind := "sidecar"
	if p.Native {
		kind = "native sidecar"
	}
	return fmt.Sprintf("%s %s (%s, Istio %s)", kind, p.Container, p.Image, v)
}

// Is reports whether the proxy is Istio version v.
func (p Proxy) Is(v string) bool {
	want, err := mesh.ParseVersion(v)
	return err == nil && p.Version != "" && p.Version == want.String()
}

// ProxyOf reads the istio-proxy of a pod, in containers or as a native sidecar. A pod without
// one, or whose proxy image names no version, is an error that says what the pod holds.
func ProxyOf(pod *corev1.Pod) (Proxy, error) {
	name, native, ok := workload.ProxyContainer(pod)
	if !ok {
		return Proxy{}, fmt.Errorf("pod %s/%s has no %s container (containers %s; init containers %s): was it injected?",
			pod.Namespace, pod.Name, istionames.ProxyContainerName, names(pod.Spec.Containers), names(pod.Spec.InitContainers))
	}
	p := Proxy{Container: name, Native: native}
	list := pod.Spec.Containers
	if native {
		list = pod.Spec.InitContainers
	}
	for _, c := range list {
		if c.Name == name {
			p.Image = c.Image
		}
	}
	p.Tag, p.Version = imageVersion(p.Image)
	if p.Version == "" {
		return p, fmt.Errorf("pod %s/%s: proxy image %q names no Istio release in its tag, so its version cannot be told", pod.Namespace, pod.Name, p.Image)
	}
	return p, nil
}

// imageVersion reads the tag of an image reference and the Istio release it names:
// docker.io/istio/proxyv2:1.31.1, localhost:5000/istio/proxyv2:1.31.1-distroless@sha256:….
func imageVersion(image string) (tag, version string) {
	ref, _, _ := strings.Cut(image, "@")
	slash, colon := strings.LastIndex(ref, "/"), strings.LastIndex(ref, ":")
	if colon <= slash {
		return "", ""
	}
	tag = ref[colon+1:]
	bare := tag
	for _, variant := range []string{"-distroless", "-debug"} {
		bare = strings.TrimSuffix(bare, variant)
	}
	v, err := mesh.ParseVersion(bare)
	if err != nil {
		return tag, ""
	}
	return tag, v.String()
}

func names(cs []corev1.Container) string {
	if len(cs) == 0 {
		return "none"
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return strings.Join(out, ", ")
}

// InjectedRevision says which control plane's injector made the pod: its istio.io/rev
// annotation, else the revision in its sidecar.istio.io/status annotation. from names where
// it was read; both are "" when the pod carries neither.
//
// The injection template writes the injecting control plane's revision on the pod as an
// annotation ("default" for the unrevisioned one): istio-discovery/files/
// injection-template.yaml, metadata.annotations. Istio never writes istio.io/rev as a pod
// label (pkg/kube/inject/webhook.go: "Rather than setting istio.io/rev label on injected pods
// include them here in status annotation", so a revision tag in the label survives); a pod
// label istio.io/rev is what a user (or the gateway chart) asked for, a revision tag
// perhaps, not who injected.
func InjectedRevision(pod *corev1.Pod) (rev, from string) {
	if r := pod.Annotations[istionames.RevisionAnnotation]; r != "" {
		return r, "annotation " + istionames.RevisionAnnotation
	}
	var st struct {
		Revision string `json:"revision"`
	}
	if raw := pod.Annotations[istionames.StatusAnnotation]; raw != "" && json.Unmarshal([]byte(raw), &st) == nil && st.Revision != "" {
		return st.Revision, "annotation " + istionames.StatusAnnotation
	}
	return "", ""
}
