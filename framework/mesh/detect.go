package mesh

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
)

// ControlPlane is an istiod found on a cluster.
type ControlPlane struct {
	Namespace  string // where istiod runs
	Deployment string // its Deployment
	Revision   string // "" for the default revision
	Version    string // e.g. 1.31.1; "" when nothing told
	// VersionFrom says where Version was read: "image" (the discovery container's tag) or
	// the label it came from.
	VersionFrom string
	Image       string // the discovery container's image

	// From the mesh config (ConfigMap istio[-<rev>], key "mesh"), with Istio's defaults for
	// what it leaves unset.
	MeshConfigMap string // "" when the ConfigMap does not exist
	TrustDomain   string
	RootNamespace string
}

// InjectorWebhookName is the name Istio's chart gives this control plane's sidecar injector
// (see Options.InjectorWebhookName: the namespace is part of it outside istio-system).
func (c ControlPlane) InjectorWebhookName() string {
	return Options{Namespace: c.Namespace, Revision: c.Revision}.InjectorWebhookName()
}

func (c ControlPlane) String() string {
	rev := c.Revision
	if rev == "" {
		rev = istionames.DefaultRevision
	}
	v := c.Version
	if v == "" {
		v = "unknown version"
	}
	return fmt.Sprintf("istiod %s/%s (revision %s, %s from %s, trust domain %s, root namespace %s)",
		c.Namespace, c.Deployment, rev, v, c.VersionFrom, c.TrustDomain, c.RootNamespace)
}

// Detect finds the istiod Deployments on a cluster (label app=istiod, in every namespace when
// the caller may list them there, else in istio-system) and reads for each its version,
// revision and mesh config. The default revision comes first. No istiod: an empty list.
func Detect(ctx context.Context, k kubernetes.Interface) ([]ControlPlane, error) {
	list, err := k.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: istionames.IstiodSelector})
	if apierrors.IsForbidden(err) {
		list, err = k.AppsV1().Deployments(DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: istionames.IstiodSelector})
	}
	if err != nil {
		return nil, fmt.Errorf("list istiod Deployments (%s): %w", istionames.IstiodSelector, err)
	}
	var out []ControlPlane
	for idx := range list.Items {
		d := &list.Items[idx]
		if d.DeletionTimestamp != nil {
			continue
		}
		cp := describeIstiod(d)
		if err := readMeshConfig(ctx, k, &cp); err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(a, b int) bool {
		if (out[a].Revision == "") != (out[b].Revision == "") {
			return out[a].Revision == ""
		}
		if out[a].Namespace != out[b].Namespace {
			return out[a].Namespace < out[b].Namespace
		}
		return out[a].Deployment < out[b].Deployment
	})
	return out, nil
}

// describeIstiod reads revision and version from the Deployment.
func describeIstiod(d *appsv1.Deployment) ControlPlane {
	cp := ControlPlane{Namespace: d.Namespace, Deployment: d.Name}
	rev, ok := d.Labels[istionames.RevisionLabel]
	if !ok {
		rev = d.Spec.Template.Labels[istionames.RevisionLabel]
	}
	if rev == "" && strings.HasPrefix(d.Name, istionames.Istiod+"-") {
		rev = strings.TrimPrefix(d.Name, istionames.Istiod+"-")
	}
	if rev != istionames.DefaultRevision {
		cp.Revision = rev
	}
	containers := d.Spec.Template.Spec.Containers
	for _, c := range containers {
		if c.Name == istionames.DiscoveryContainerName {
			cp.Image = c.Image
		}
	}
	if cp.Image == "" && len(containers) > 0 {
		cp.Image = containers[0].Image
	}
	if v, ok := versionFromImage(cp.Image); ok {
		cp.Version, cp.VersionFrom = v, "image"
		return cp
	}
	for _, key := range []string{istionames.OperatorVersionLabel, "app.kubernetes.io/version", "helm.sh/chart"} {
		val := d.Labels[key]
		if key == "helm.sh/chart" {
			val = strings.TrimPrefix(val, istionames.Istiod+"-")
		}
		if v, err := ParseVersion(val); err == nil {
			cp.Version, cp.VersionFrom = v.String(), "label "+key
			return cp
		}
	}
	return cp
}

// versionFromImage reads an Istio version from an image tag: docker.io/istio/pilot:1.31.1,
// …:1.31.1-distroless, …:1.32.0-beta.0-debug. Digest-only references give nothing.
func versionFromImage(image string) (string, bool) {
	ref, _, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		return "", false
	}
	tag := ref[colon+1:]
	for _, variant := range []string{"-distroless", "-debug"} {
		tag = strings.TrimSuffix(tag, variant)
	}
	v, err := ParseVersion(tag)
	if err != nil {
		return "", false
	}
	return v.String(), true
}

// meshFields are the parts of Istio's MeshConfig the suite needs.
type meshFields struct {
	TrustDomain   string `json:"trustDomain"`
	RootNamespace string `json:"rootNamespace"`
}

func readMeshConfig(ctx context.Context, k kubernetes.Interface, cp *ControlPlane) error {
	cp.TrustDomain, cp.RootNamespace = istionames.DefaultTrustDomain, istionames.IstioSystemNamespace
	name := suffix(istionames.MeshConfigMap, cp.Revision)
	cm, err := k.CoreV1().ConfigMaps(cp.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read mesh config ConfigMap %s/%s: %w", cp.Namespace, name, err)
	}
	cp.MeshConfigMap = name
	return parseMesh(cm, cp)
}

func parseMesh(cm *corev1.ConfigMap, cp *ControlPlane) error {
	var m meshFields
	if err := yaml.Unmarshal([]byte(cm.Data[istionames.MeshConfigKey]), &m); err != nil {
		return fmt.Errorf("ConfigMap %s/%s key mesh is not YAML: %w", cm.Namespace, cm.Name, err)
	}
	if m.TrustDomain != "" {
		cp.TrustDomain = m.TrustDomain
	}
	if m.RootNamespace != "" {
		cp.RootNamespace = m.RootNamespace
	}
	return nil
}

// The data-plane modes, as DataPlaneFound, settings (DATAPLANE_MODE) and reports name them.
const (
	ModeSidecar = "sidecar"
	ModeAmbient = "ambient"
)

// DataPlaneFound is what a cluster shows of its data plane, read, never assumed.
type DataPlaneFound struct {
	// Mode is ModeAmbient when a ztunnel DaemonSet runs in the control plane's namespace (the
	// node proxy every ambient pod's traffic goes through, which istiod trusts there under
	// that name: istio-discovery/templates/deployment.yaml:179-184, CA_TRUSTED_NODE_ACCOUNTS),
	// else ModeSidecar.
	Mode string
	// Ztunnel is the ztunnel DaemonSet found, "<namespace>/ztunnel", or "".
	Ztunnel string
	// AmbientNamespaces are the namespaces labelled istio.io/dataplane-mode=ambient (enrolled).
	AmbientNamespaces []string
}

func (d DataPlaneFound) String() string {
	s := "data plane " + d.Mode
	switch {
	case d.Ztunnel != "":
		s += " (DaemonSet " + d.Ztunnel
	default:
		s += " (no ztunnel DaemonSet"
	}
	if n := len(d.AmbientNamespaces); n > 0 {
		s += fmt.Sprintf(", %d namespace(s) labelled %s=%s: %s", n, istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient, strings.Join(d.AmbientNamespaces, ", "))
	}
	return s + ")"
}

// DetectDataPlane reads the data-plane mode of the mesh whose istiod runs in namespace ns: a
// DaemonSet named ztunnel there (ZtunnelDaemonSet) means ambient, and the namespaces labelled
// for ambient are listed as the evidence beside it. Namespaces so labelled without a ztunnel
// stay sidecar (nothing would redirect their pods' traffic); the caller sees them in
// AmbientNamespaces. When namespaces may not be listed, the ztunnel alone decides.
func DetectDataPlane(ctx context.Context, k kubernetes.Interface, ns string) (DataPlaneFound, error) {
	out := DataPlaneFound{Mode: ModeSidecar}
	_, err := k.AppsV1().DaemonSets(ns).Get(ctx, ZtunnelDaemonSet, metav1.GetOptions{})
	switch {
	case err == nil:
		out.Mode, out.Ztunnel = ModeAmbient, ns+"/"+ZtunnelDaemonSet
	case !apierrors.IsNotFound(err):
		return out, fmt.Errorf("look for the ztunnel DaemonSet %s/%s (ambient's node proxy): %w", ns, ZtunnelDaemonSet, err)
	}
	list, err := k.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: istionames.DataplaneModeLabel + "=" + istionames.DataplaneModeAmbient})
	switch {
	case apierrors.IsForbidden(err):
		return out, nil
	case err != nil:
		return out, fmt.Errorf("list namespaces labelled %s=%s: %w", istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient, err)
	}
	for _, n := range list.Items {
		out.AmbientNamespaces = append(out.AmbientNamespaces, n.Name)
	}
	sort.Strings(out.AmbientNamespaces)
	return out, nil
}
