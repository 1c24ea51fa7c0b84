// Package dataplane is the seam between behaviours and the data-plane mode: where the proxy
// runs, how a namespace joins the mesh, when a workload counts as ready, which pod to read,
// which container is the proxy when a behaviour probes from it, and the shape an expected
// outcome takes in the mode. Behaviours that do not
// depend on the mode never name a sidecar; the runner (suites/internal/e2e) asks the run's
// DataPlane instead. Sidecar is the implementation today; an ambient one would sit beside it
// (namespaces labelled istio.io/dataplane-mode=ambient, readiness of ztunnel instead of a
// container, no proxy container to probe from) without touching those behaviours.
package dataplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
)

// ModeSidecar is the sidecar data plane's mode, as reports and requirements name it.
const ModeSidecar = "sidecar"

// DataPlane is one data-plane mode, as the runner needs it.
type DataPlane interface {
	// Mode names the mode (ModeSidecar), for the report and for behaviours' requirements.
	Mode() string
	// Injection is how a namespace is labelled: meshed or not, for the control plane of
	// revision ("" = default).
	Injection(meshed bool, revision string) workload.Injection
	// Readiness is what a deployed workload must show before a behaviour probes it: with
	// running false (DATAPLANE=0), only that its pods were admitted as the mode shapes them.
	Readiness() workload.ProxyMode
	// Pod finds the pod of app in ns that a behaviour reads or probes from.
	Pod(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error)
	// ProxyContainer is the container in pod where the proxy runs, for behaviours that probe
	// from the proxy itself; an error when the pod has none.
	ProxyContainer(pod *corev1.Pod) (string, error)
	// Outcome is the shape a probe expecting e shows in this mode. The catalog's shapes are
	// the sidecar's (the seeds were written against it); another mode maps those it words
	// differently (ztunnel resets where a sidecar answers 503, say), and the report then
	// classifies against what this mode documents.
	Outcome(e catalog.Expectation) catalog.Expectation
}

// Sidecar is the sidecar mode: an istio-proxy container injected into each meshed pod (a
// native sidecar among the init containers on Istio ≥ 1.27 with Kubernetes ≥ 1.33).
type Sidecar struct {
	// Running is false where nothing can run a proxy (DATAPLANE=0): injected pods never
	// start, so readiness and pod lookup stop at admission.
	Running bool
}

func (Sidecar) Mode() string { return ModeSidecar }

func (Sidecar) Injection(meshed bool, revision string) workload.Injection {
	switch {
	case !meshed:
		return workload.InjectionOff
	case revision != "":
		return workload.Revision(revision)
	}
	return workload.InjectionOn
}

func (s Sidecar) Readiness() workload.ProxyMode {
	if s.Running {
		return workload.ProxyAuto
	}
	return workload.ProxyAdmitted
}

func (s Sidecar) Pod(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error) {
	if s.Running {
		return workload.PodFor(ctx, kube, ns, app)
	}
	return workload.AdmittedPodFor(ctx, kube, ns, app) // injected pods never start: read what was admitted
}

// Outcome: the catalog's shapes are the sidecar's own.
func (Sidecar) Outcome(e catalog.Expectation) catalog.Expectation { return e }

func (Sidecar) ProxyContainer(pod *corev1.Pod) (string, error) {
	name, _, ok := probe.ProxyContainer(pod)
	if !ok {
		return "", fmt.Errorf("pod %s/%s has no istio-proxy container (was it injected?)", pod.Namespace, pod.Name)
	}
	return name, nil
}

// ModeProxyless is the proxyless gRPC data plane's mode (DATAPLANE_MODE=proxyless).
const ModeProxyless = "proxyless"

// Proxyless is proxyless gRPC: Istio's echo server and client use grpc-go's xDS support, fed by
// istiod's grpc generator through pilot-agent without Envoy (the grpc-agent injection template,
// DISABLE_ENVOY=true), which also writes the CA-issued certificate grpc-go's TLS reads. The
// mesh is the sidecar mode's install (istiod and its injector): namespaces join the same way,
// and the samples themselves select the grpc-agent template (manifests/workloads/echo-*.yaml).
// Its probes are gRPC calls (probe.GRPC) judged against gRPC shapes
// (catalog.ProxylessExpectations); the behaviours' proxyless tables name them.
type Proxyless struct{}

func (Proxyless) Mode() string { return ModeProxyless }

func (Proxyless) Injection(meshed bool, revision string) workload.Injection {
	return Sidecar{}.Injection(meshed, revision)
}

// Readiness: a grpc-agent pod's istio-proxy (pilot-agent) is ready once its certificate and
// bootstrap exist (pilot-agent's grpcready probe), and the app starts only then
// (holdApplicationUntilProxyStarts): the sidecar mode's check of a ready proxy holds.
func (Proxyless) Readiness() workload.ProxyMode { return workload.ProxyAuto }

func (Proxyless) Pod(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error) {
	return workload.PodFor(ctx, kube, ns, app)
}

// ProxyContainer: the grpc-agent's istio-proxy is pilot-agent, which carries no traffic; there
// is no proxy to probe from.
func (Proxyless) ProxyContainer(pod *corev1.Pod) (string, error) {
	return "", fmt.Errorf("pod %s/%s: the proxyless data plane has no proxy that sends traffic (istio-proxy is pilot-agent without Envoy)", pod.Namespace, pod.Name)
}

// Outcome: the proxyless tables name gRPC shapes already; a curl shape is returned as it is,
// and a gRPC outcome never matches it (expect.Classify), so a sidecar expectation reached here
// is a deviation, never a pass.
func (Proxyless) Outcome(e catalog.Expectation) catalog.Expectation { return e }

// ModeAmbient is the ambient data plane's mode (DATAPLANE_MODE=ambient): ztunnel on each node.
const ModeAmbient = "ambient"

// Ambient is Istio's ambient mode: no proxy in the pod; Istio's CNI node agent redirects an
// enrolled pod's traffic to the node's ztunnel (L4: mTLS over HBONE, L4 authorization), and L7
// needs a waypoint. Outcome maps the shapes that hold without one (catalog.AmbientExpectation); a
// behaviour that needs a waypoint (the catalog's marker) gets one in its path from the runner, and
// its 403 and 401 are then the waypoint's Envoy's, the sidecar's shapes.
type Ambient struct {
	// Running is false where nothing runs ztunnel (DATAPLANE=0): pods are then read as
	// admitted.
	Running bool
}

func (Ambient) Mode() string { return ModeAmbient }

// Injection: a meshed namespace is enrolled (istio.io/dataplane-mode=ambient) and carries no
// injection label; a plain one is labelled istio-injection=disabled, which keeps it out of both
// modes (only the dataplane-mode label enrols: the istio-cni chart's enablement selectors,
// values.yaml:59-66). The revision is not labelled: istio.io/rev on a namespace would select
// that revision's sidecar injector too (its webhook reads it, and nothing in its selector
// excludes an ambient namespace), and every revision's pods share the node's ztunnel.
func (Ambient) Injection(meshed bool, _ string) workload.Injection {
	if !meshed {
		return workload.InjectionOff
	}
	return workload.InjectionAmbient
}

// Readiness: running, pods ready and, where enrolled, annotated as redirected by the CNI node
// agent (workload.ProxyAmbient); without a data plane, admitted with no proxy container.
func (a Ambient) Readiness() workload.ProxyMode {
	if a.Running {
		return workload.ProxyAmbient
	}
	return workload.ProxyAdmitted
}

func (a Ambient) Pod(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error) {
	if a.Running {
		return workload.PodFor(ctx, kube, ns, app)
	}
	return workload.AdmittedPodFor(ctx, kube, ns, app)
}

// ProxyContainer: an ambient pod has no proxy container; ztunnel runs on the node.
func (Ambient) ProxyContainer(pod *corev1.Pod) (string, error) {
	return "", fmt.Errorf("pod %s/%s: the ambient data plane has no proxy container in the pod (ztunnel runs on the node)", pod.Namespace, pod.Name)
}

// Outcome: the catalog's ambient shapes, without a waypoint in the path.
func (Ambient) Outcome(e catalog.Expectation) catalog.Expectation {
	return catalog.AmbientExpectation(e)
}
