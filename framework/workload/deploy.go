package workload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
)

// FieldManager is the server-side apply field manager of everything this package applies.
const FieldManager = "meshconform"

// Handle is a deployed sample: what a spec needs to address it.
type Handle struct {
	Sample    Sample
	Namespace string
	// Name is the Deployment's name.
	Name string
	// App is the pods' app label (PodFor's argument).
	App string
	// Selector selects the sample's pods (the Deployment's selector), for WaitReady.
	Selector string
	// ServiceAccount is the pods' service account: the identity in their SPIFFE id.
	ServiceAccount string
	// Service is the Service's name, "" when the sample has none (clients).
	Service string
	// Ports are the Service's ports, in manifest order.
	Ports []int32
	// Container is the first app container, the one to exec curl in.
	Container string
	// Sidecar is whether the pods should get an istio-proxy: the namespace is labelled for
	// injection and the pod template does not opt out.
	Sidecar bool
}

// Host is the Service's in-cluster name, "<service>.<namespace>", as the documents curl it.
func (h Handle) Host() string { return h.Service + "." + h.Namespace }

// URL is http://<service>.<namespace>:<first port><path>.
func (h Handle) URL(path string) string {
	if h.Service == "" || len(h.Ports) == 0 {
		return ""
	}
	return "http://" + h.Host() + ":" + strconv.Itoa(int(h.Ports[0])) + path
}

// Deploy applies the samples' ServiceAccounts, Services and Deployments to namespace ns with
// server-side apply (so a second Deploy is a no-op), stamped with the namespace's run id and
// the sample's name. ns must have been made by Namespace (it carries the run id). Deploy does
// not wait: call WaitReady with each handle's Selector.
func Deploy(ctx context.Context, kube kubernetes.Interface, ns string, samples ...Sample) ([]Handle, error) {
	return apply(ctx, kube, ns, false, DeployOptions{}, samples)
}

// DeployOptions are what a run changes in the samples it deploys.
type DeployOptions struct {
	// AgentImage is given to the pods of Istio's grpc-agent template (Manifest.UseAgentImage;
	// ISTIO_AGENT_IMAGE); "" leaves them the chart's proxy image.
	AgentImage string
	// EchoImage replaces the echo samples' placeholder image (Manifest.UseEchoImage;
	// ISTIO_ECHO_IMAGE).
	EchoImage string
}

// DeployWith is Deploy with the run's options.
func DeployWith(ctx context.Context, kube kubernetes.Interface, ns string, opts DeployOptions, samples ...Sample) ([]Handle, error) {
	return apply(ctx, kube, ns, false, opts, samples)
}

// DryRun applies the samples to ns as Deploy would, with server-side dry-run: the API server
// validates and admits every object and stores nothing.
func DryRun(ctx context.Context, kube kubernetes.Interface, ns string, samples ...Sample) error {
	_, err := apply(ctx, kube, ns, true, DeployOptions{}, samples)
	return err
}

func apply(ctx context.Context, kube kubernetes.Interface, ns string, dryRun bool, dopts DeployOptions, samples []Sample) ([]Handle, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("workload: deploy to %s: no samples named; known samples: %s", ns, joinSamples(Samples()))
	}
	nsObj, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("workload: deploy to namespace %s: %w (create it with workload.Namespace)", ns, err)
	}
	runID := nsObj.Labels[ownership.RunIDKey]
	if nsObj.Labels[ownership.ManagedByKey] != ownership.ManagedByValue || runID == "" {
		return nil, fmt.Errorf("workload: namespace %s lacks the ownership labels %s=%s and %s: create it with workload.Namespace",
			ns, ownership.ManagedByKey, ownership.ManagedByValue, ownership.RunIDKey)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: ptr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var handles []Handle
	for _, s := range samples {
		m, err := Load(s)
		if err != nil {
			return nil, err
		}
		m.Render(ns, runID)
		m.UseAgentImage(dopts.AgentImage)
		m.UseEchoImage(dopts.EchoImage)
		for _, o := range m.ServiceAccounts {
			if err := patch(ctx, o, corev1.SchemeGroupVersion.WithKind("ServiceAccount"), func(b []byte) error {
				_, err := kube.CoreV1().ServiceAccounts(ns).Patch(ctx, o.Name, types.ApplyPatchType, b, opts)
				return err
			}); err != nil {
				return nil, fmt.Errorf("workload %s: ServiceAccount %s/%s: %w", s, ns, o.Name, err)
			}
		}
		for _, o := range m.Services {
			if err := patch(ctx, o, corev1.SchemeGroupVersion.WithKind("Service"), func(b []byte) error {
				_, err := kube.CoreV1().Services(ns).Patch(ctx, o.Name, types.ApplyPatchType, b, opts)
				return err
			}); err != nil {
				return nil, fmt.Errorf("workload %s: Service %s/%s: %w", s, ns, o.Name, err)
			}
		}
		for _, o := range m.Deployments {
			gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			if err := patch(ctx, o, gvk, func(b []byte) error {
				_, err := kube.AppsV1().Deployments(ns).Patch(ctx, o.Name, types.ApplyPatchType, b, opts)
				return err
			}); err != nil {
				return nil, fmt.Errorf("workload %s: Deployment %s/%s: %w", s, ns, o.Name, err)
			}
		}
		handles = append(handles, handleFor(m, nsObj))
	}
	return handles, nil
}

// patch encodes obj as an apply configuration: typed objects marshal a null
// creationTimestamp and an empty status, which are not the caller's intent, so both go.
func patch(_ context.Context, obj runtime.Object, gvk schema.GroupVersionKind, send func([]byte) error) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u["apiVersion"], u["kind"] = gvk.GroupVersion().String(), gvk.Kind
	delete(u, "status")
	if md, ok := u["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	if spec, ok := u["spec"].(map[string]any); ok {
		if tmpl, ok := spec["template"].(map[string]any); ok {
			if md, ok := tmpl["metadata"].(map[string]any); ok {
				delete(md, "creationTimestamp")
			}
		}
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return send(b)
}

func handleFor(m *Manifest, ns *corev1.Namespace) Handle {
	d := m.Deployments[0]
	h := Handle{
		Sample:         m.Sample,
		Namespace:      ns.Name,
		Name:           d.Name,
		App:            d.Spec.Template.Labels["app"],
		Selector:       metav1.FormatLabelSelector(d.Spec.Selector),
		ServiceAccount: d.Spec.Template.Spec.ServiceAccountName,
		Sidecar:        SidecarExpected(ns.Labels, d.Spec.Template.Labels, d.Spec.Template.Annotations),
	}
	if h.ServiceAccount == "" {
		h.ServiceAccount = "default"
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		h.Container = cs[0].Name
	}
	if len(m.Services) > 0 {
		h.Service = m.Services[0].Name
		for _, p := range m.Services[0].Spec.Ports {
			h.Ports = append(h.Ports, p.Port)
		}
	}
	return h
}

// SidecarExpected reports whether Istio's injector should add a proxy to a pod with these
// labels and annotations in a namespace with nsLabels, by Istio's documented rule: any
// "off" switch wins (namespace istio-injection=disabled, pod label or annotation
// sidecar.istio.io/inject="false"), then any "on" switch (istio-injection=enabled,
// istio.io/rev set, pod label "true"); otherwise no injection (enableNamespacesByDefault is
// off in every install this suite makes).
func SidecarExpected(nsLabels, podLabels, podAnnotations map[string]string) bool {
	if nsLabels[istionames.InjectionLabel] == istionames.InjectionDisabled || podLabels[istionames.InjectLabel] == "false" || podAnnotations[istionames.InjectLabel] == "false" {
		return false
	}
	return nsLabels[istionames.InjectionLabel] == istionames.InjectionEnabled || nsLabels[istionames.RevisionLabel] != "" || podLabels[istionames.InjectLabel] == "true"
}

func stampLabels(labels map[string]string, runID string, extra map[string]string) map[string]string {
	labels = ownership.Stamp(labels, runID)
	maps.Copy(labels, extra)
	return labels
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func ptr[T any](v T) *T { return &v }
