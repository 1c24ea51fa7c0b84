package mesh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
)

// UninstallOption changes what Uninstall removes.
type UninstallOption func(*uninstallConfig)

type uninstallConfig struct{ crds bool }

// RemoveCRDs also deletes istio-base's CustomResourceDefinitions, and with them every Istio
// resource in the cluster. Without it the CRDs stay (as `helm uninstall` of Istio's base leaves
// them), so policies elsewhere in the cluster survive.
func RemoveCRDs() UninstallOption { return func(c *uninstallConfig) { c.crds = true } }

// keepPolicy is Helm's annotation that makes uninstall leave an object alone.
const keepPolicy = "helm.sh/resource-policy"

// Uninstall removes what Install made, in reverse order: the gateway, ztunnel and istio-cni
// (ambient; only when no other istiod is left, as istio.io's ambient Helm uninstall removes
// ztunnel, istio-cni, istiod, then base), istiod, then — when no
// other istiod is left in the cluster — istio-base, the istio-ca-root-cert ConfigMaps istiod
// spread into every namespace, the Gateway API CRDs Install created (labelled with this run's
// id: the cluster had none; a Gateway API it had stays), and the namespaces Install created. Each Helm uninstall waits
// until its objects are gone. Releases that do not exist are skipped, so it is safe to call
// after a failed or partial Install.
func (i *Installer) Uninstall(ctx context.Context, opts ...UninstallOption) error {
	var uc uninstallConfig
	for _, opt := range opts {
		opt(&uc)
	}
	o := i.Options()
	start := time.Now()
	// Reverse of Install: the gateway, then ztunnel and istio-cni (when this is the last
	// control plane: one pair serves every revision), then istiod. They are looked for
	// whatever the mode, so an ambient install is removed by any Installer of its namespace.
	steps := []Chart{ChartGateway}
	if others, err := i.remainingIstiods(ctx); err != nil {
		return err
	} else if self := o.Namespace + "/" + o.IstiodDeploymentName(); len(slices.DeleteFunc(others, func(s string) bool { return s == self })) == 0 {
		steps = append(steps, ChartZtunnel, ChartCNI)
	}
	steps = append(steps, ChartIstiod)
	for _, c := range steps {
		if err := i.uninstallRelease(ctx, o, c); err != nil {
			return err
		}
	}
	others, err := i.remainingIstiods(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		i.log.Info("istio-base kept: other control planes still use it", "istiod", strings.Join(others, ", "))
	} else {
		if err := i.uninstallBase(ctx, o, uc.crds); err != nil {
			return err
		}
		if err := i.deleteRootCertConfigMaps(ctx); err != nil {
			return err
		}
		// The Gateway API CRDs Install created (there were none before it), with the last
		// control plane: like the namespaces Install created, by their run id.
		if err := i.uninstallGatewayAPI(ctx, o); err != nil {
			return err
		}
	}
	if err := i.deleteOwnNamespaces(ctx, o, len(others) == 0); err != nil {
		return err
	}
	i.log.Info("istio uninstalled", "revision", o.Revision, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// uninstallRelease runs `helm uninstall --wait` for chart c's release, if it exists.
func (i *Installer) uninstallRelease(ctx context.Context, o Options, c Chart) error {
	name, ns := o.ReleaseName(c), o.ReleaseNamespace(c)
	cfg, err := i.helmConfig(ns)
	if err != nil {
		return err
	}
	last, _, err := releaseState(cfg, name)
	if err != nil {
		return err
	}
	if last == nil {
		return nil
	}
	return i.helmUninstall(ctx, cfg, o, name, ns)
}

func (i *Installer) helmUninstall(ctx context.Context, cfg *action.Configuration, o Options, name, ns string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	// What the release made, read before Helm forgets it, so the deletion can be waited for.
	var made kube.ResourceList
	if last, _, err := releaseState(cfg, name); err == nil && last != nil {
		if made, err = cfg.KubeClient.Build(strings.NewReader(last.Manifest), false); err != nil {
			return fmt.Errorf("read the objects of release %s: %w", name, err)
		}
	}
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	// Helm's own status-watcher wait for deletion was seen to return while a Deployment was
	// still Terminating (foreground deletion waits on the garbage collector), failing an
	// uninstall that was merely slow; the wait below polls until the objects are gone.
	un.WaitStrategy = kube.HookOnlyStrategy
	un.Timeout = o.Timeout
	un.DeletionPropagation = "foreground"
	// Helm's uninstall takes no context; it is bounded by Timeout.
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("helm uninstall of %s in namespace %s: %w. Look at `kubectl -n %s get all` for what is stuck (finalizers?)", name, ns, err, ns)
	}
	if err := WaitFor(ctx, o.Timeout, "deletion of release "+name, i.log, objectsGone(made)); err != nil {
		return fmt.Errorf("helm uninstall of %s in namespace %s: %w. Look at `kubectl -n %s get all` for what is stuck (finalizers?)", name, ns, err, ns)
	}
	i.log.Info("helm release uninstalled", "release", name, "namespace", ns, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// objectsGone is a Check that the release's objects are deleted, except those Helm keeps
// (the keep policy: istio-base's CRDs unless they are removed on purpose, then waited for
// by deleteCRDs).
func objectsGone(made kube.ResourceList) Check {
	return func(ctx context.Context) string {
		var left []string
		for _, info := range made {
			if acc, err := meta.Accessor(info.Object); err == nil && acc.GetAnnotations()[keepPolicy] == "keep" {
				continue
			}
			err := info.Get()
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return fmt.Sprintf("%s %s: %v", info.Mapping.GroupVersionKind.Kind, info.ObjectName(), err)
			default:
				left = append(left, info.Mapping.GroupVersionKind.Kind+" "+info.Namespace+"/"+info.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Sprintf("%d objects still being deleted: %s", len(left), strings.Join(left, ", "))
		}
		return ""
	}
}

// uninstallBase removes istio-base. Its CRDs stay unless crds: Helm decides what to keep from
// the keep policy in the release's stored manifest, so that policy is first added to every
// CRD there (whatever the chart version rendered); the live CRDs keep their Helm ownership,
// so a later Install adopts them again. With crds they are deleted after the release, and
// waited for.
func (i *Installer) uninstallBase(ctx context.Context, o Options, crds bool) error {
	name, ns := o.ReleaseName(ChartBase), o.ReleaseNamespace(ChartBase)
	cfg, err := i.helmConfig(ns)
	if err != nil {
		return err
	}
	last, _, err := releaseState(cfg, name)
	if err != nil || last == nil {
		return err
	}
	names := releaseCRDs(last)
	if !crds {
		if err := keepCRDsOnUninstall(cfg, last); err != nil {
			return err
		}
	}
	if err := i.helmUninstall(ctx, cfg, o, name, ns); err != nil {
		return err
	}
	if crds {
		return i.deleteCRDs(ctx, o, names)
	}
	if len(names) > 0 {
		i.log.Info("CRDs kept", "count", len(names))
	}
	return nil
}

// keepCRDsOnUninstall adds Helm's keep policy to the CRDs in release r's stored manifest.
func keepCRDsOnUninstall(cfg *action.Configuration, r *release.Release) error {
	docs := releaseutil.SplitManifests(r.Manifest)
	changed := false
	parts := make([]string, 0, len(docs))
	for n := 0; n < len(docs); n++ {
		doc := docs[fmt.Sprintf("manifest-%d", n)]
		var obj map[string]any
		if yaml.Unmarshal([]byte(doc), &obj) == nil && obj["kind"] == "CustomResourceDefinition" {
			md, _ := obj["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				obj["metadata"] = md
			}
			ann, _ := md["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				md["annotations"] = ann
			}
			if ann[keepPolicy] != "keep" {
				ann[keepPolicy] = "keep"
				out, err := yaml.Marshal(obj)
				if err != nil {
					return fmt.Errorf("release %s: rewrite CRD %v: %w", r.Name, md["name"], err)
				}
				doc, changed = string(out), true
			}
		}
		parts = append(parts, doc)
	}
	if !changed {
		return nil
	}
	r.Manifest = "---\n" + strings.Join(parts, "\n---\n")
	if err := cfg.Releases.Update(r); err != nil {
		return fmt.Errorf("release %s: store the keep policy of its CRDs: %w", r.Name, err)
	}
	return nil
}

// releaseCRDs lists the CustomResourceDefinitions a release holds: in its templates, and in
// its chart's crds/ directory (which Helm never deletes by itself).
func releaseCRDs(r *release.Release) []string {
	var names []string
	seen := map[string]bool{}
	add := func(doc string) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &head) == nil && head.Kind == "CustomResourceDefinition" && head.Metadata.Name != "" && !seen[head.Metadata.Name] {
			seen[head.Metadata.Name] = true
			names = append(names, head.Metadata.Name)
		}
	}
	for _, doc := range releaseutil.SplitManifests(r.Manifest) {
		add(doc)
	}
	if r.Chart != nil {
		for _, crd := range r.Chart.CRDObjects() {
			if crd.File != nil {
				for _, doc := range releaseutil.SplitManifests(string(crd.File.Data)) {
					add(doc)
				}
			}
		}
	}
	return names
}

// deleteCRDs deletes the CRDs and waits until the API server has removed them (it deletes
// every custom resource first).
func (i *Installer) deleteCRDs(ctx context.Context, o Options, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ext, err := i.extClient()
	if err != nil {
		return err
	}
	crds := ext.ApiextensionsV1().CustomResourceDefinitions()
	for _, n := range names {
		if err := crds.Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete CRD %s: %w", n, err)
		}
	}
	gone := func(ctx context.Context) string {
		var left []string
		for _, n := range names {
			if _, err := crds.Get(ctx, n, metav1.GetOptions{}); err == nil {
				left = append(left, n)
			} else if !apierrors.IsNotFound(err) {
				return fmt.Sprintf("CRD %s: %v", n, err)
			}
		}
		if len(left) > 0 {
			return fmt.Sprintf("%d CRDs still being deleted: %s", len(left), strings.Join(left, ", "))
		}
		return ""
	}
	if err := WaitFor(ctx, o.Timeout, "CRD deletion", i.log, gone); err != nil {
		return err
	}
	i.log.Info("CRDs deleted", "count", len(names))
	return nil
}

// remainingIstiods lists istiod Deployments still in the cluster (any namespace when allowed,
// else the control-plane namespace).
func (i *Installer) remainingIstiods(ctx context.Context) ([]string, error) {
	k, err := i.client()
	if err != nil {
		return nil, err
	}
	list, err := k.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: istionames.IstiodSelector})
	if apierrors.IsForbidden(err) {
		list, err = k.AppsV1().Deployments(i.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: istionames.IstiodSelector})
	}
	if err != nil {
		return nil, fmt.Errorf("list istiod Deployments: %w", err)
	}
	var out []string
	for _, d := range list.Items {
		if d.DeletionTimestamp == nil {
			out = append(out, d.Namespace+"/"+d.Name)
		}
	}
	return out, nil
}

// deleteRootCertConfigMaps deletes the ConfigMap istiod writes into every namespace (the mesh's
// root certificate, istionames.RootCertConfigMap); it is not part of any release.
func (i *Installer) deleteRootCertConfigMaps(ctx context.Context) error {
	k, err := i.client()
	if err != nil {
		return err
	}
	list, err := k.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + istionames.RootCertConfigMap})
	if apierrors.IsForbidden(err) {
		i.log.Info("cannot list ConfigMaps cluster-wide; istio-ca-root-cert ConfigMaps left in place", "error", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s ConfigMaps: %w", istionames.RootCertConfigMap, err)
	}
	for _, cm := range list.Items {
		err := k.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
		}
	}
	if len(list.Items) > 0 {
		i.log.Info("istio-ca-root-cert ConfigMaps deleted", "count", len(list.Items))
	}
	return nil
}

// deleteOwnNamespaces deletes the namespaces Install created, once they hold no Helm release;
// the control-plane namespace only when no control plane is left (lastPlane).
func (i *Installer) deleteOwnNamespaces(ctx context.Context, o Options, lastPlane bool) error {
	k, err := i.client()
	if err != nil {
		return err
	}
	candidates := []string{o.GatewayNamespace}
	if lastPlane && o.Namespace != o.GatewayNamespace {
		candidates = append(candidates, o.Namespace)
	}
	var deleted []string
	for _, ns := range candidates {
		obj, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read namespace %s: %w", ns, err)
		}
		if !i.ownNamespace(obj.Labels) {
			continue
		}
		// Helm keeps its releases as Secrets labelled owner=helm.
		rels, err := k.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
		if err != nil {
			return fmt.Errorf("list Helm releases in namespace %s: %w", ns, err)
		}
		if len(rels.Items) > 0 {
			i.log.Info("namespace kept: it still holds Helm releases", "namespace", ns, "releases", len(rels.Items))
			continue
		}
		if err := k.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
		deleted = append(deleted, ns)
	}
	if len(deleted) == 0 {
		return nil
	}
	gone := func(ctx context.Context) string {
		var left []string
		for _, ns := range deleted {
			obj, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Sprintf("namespace %s: %v", ns, err)
			}
			s := fmt.Sprintf("namespace %s: %s", ns, obj.Status.Phase)
			for _, c := range obj.Status.Conditions {
				if c.Status == "True" {
					s += fmt.Sprintf(" (%s: %s)", c.Type, c.Message)
				}
			}
			left = append(left, s)
		}
		return strings.Join(left, "; ")
	}
	if err := WaitFor(ctx, o.Timeout, "namespace deletion", i.log, gone); err != nil {
		return errors.New(err.Error() + ". A namespace stuck in Terminating names what holds it in its conditions")
	}
	return nil
}
