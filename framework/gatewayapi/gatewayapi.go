// Package gatewayapi installs the Kubernetes Gateway API's CRDs (standard channel) that Istio's
// ambient mode needs (waypoints are Gateway objects of class istio-waypoint) and that Gateway-API
// ingress uses, at the version Istio 1.31 builds on. The files come from the Go module
// sigs.k8s.io/gateway-api, read from the Go module cache (downloaded through the module proxy
// when missing: `go mod download`, outside meshconform's go.mod, which does not depend on it),
// or from a directory named by DirEnv for machines without the proxy.
//
// What a cluster already has is left as found: an API server that serves the Gateway API
// (any version) gets nothing from here. What is created carries meshconform's ownership labels,
// and Uninstall removes only objects of the given run.
package gatewayapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"meshconform/framework/ownership"
	"meshconform/internal/moddownload"
)

const (
	// Module is the Kubernetes Gateway API's Go module, whose zip carries its CRDs.
	Module = "sigs.k8s.io/gateway-api"
	// Version is the Gateway API release Istio 1.31 builds on: istio.io/istio's go.mod at the
	// pinned release-1.31 commit (v0.0.0-20260827124520-eed52ebb66ad), line 113, `require
	// sigs.k8s.io/gateway-api v1.6.0` (release-1.30's, line 112, says v1.5.1; v1.6.0's CRDs serve
	// it too: Istio's per-kind minimums are in pkg/config/schema/gatewayapi/minimumversions.go).
	Version = "v1.6.0"
	// Channel is the channel installed: the standard one holds everything meshconform uses
	// (GatewayClass, Gateway, HTTPRoute, ReferenceGrant).
	Channel = "standard"
	// standardDir is the standard channel's directory in the module: the CRDs
	// (gateway.networking.k8s.io_<plural>.yaml) and the safe-upgrades ValidatingAdmissionPolicy
	// with its binding, as the release's standard-install.yaml bundles them.
	standardDir = "config/crd/standard"
	// DirEnv overrides where the standard channel's files are read from (a directory laid out
	// like config/crd/standard of the module), for machines without the Go module proxy.
	DirEnv = "MESHCONFORM_GATEWAY_API_CRDS"
	// Group is the Gateway API's API group.
	Group = "gateway.networking.k8s.io"
	// BundleVersionAnnotation is the release each of the Gateway API's CRDs carries.
	BundleVersionAnnotation = Group + "/bundle-version"
	// ProbeCRD is the CRD whose presence says the cluster has the Gateway API.
	ProbeCRD = "gateways." + Group
)

// Dir returns the standard channel's directory at Version: DirEnv when set, else the module's
// from the Go module cache, downloading it first when needed.
func Dir(ctx context.Context) (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("gatewayapi: %s=%s is not a directory (%v)", DirEnv, d, err)
		}
		return d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ref := Module + "@" + Version
	modDir, err := moddownload.Dir(ctx, Module, Version)
	if err != nil {
		return "", fmt.Errorf("the Gateway API CRDs (go mod download %s): %v. It needs the Go module proxy (GOPROXY) or a module cache that holds it; or set %s to a copy of its %s",
			ref, err, DirEnv, standardDir)
	}
	dir := filepath.Join(modDir, standardDir)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("gatewayapi: %s has no %s: %w", ref, standardDir, err)
	}
	return dir, nil
}

// Objects reads every object of the standard channel in dir: the CRDs first (file order),
// then the ValidatingAdmissionPolicy and its binding.
func Objects(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var crds, rest []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := docs.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("gatewayapi: %s: %w", f, err)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
				return nil, fmt.Errorf("gatewayapi: %s: %w", f, err)
			}
			switch obj.GetKind() {
			case "":
				continue
			case "CustomResourceDefinition":
				crds = append(crds, obj)
			case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
				rest = append(rest, obj)
			default:
				return nil, fmt.Errorf("gatewayapi: %s: unexpected %s %s in the standard channel", f, obj.GetKind(), obj.GetName())
			}
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("gatewayapi: %s holds no CRD", dir)
	}
	return append(crds, rest...), nil
}

// Clients are what Install and Uninstall talk to.
type Clients struct {
	Kube kubernetes.Interface
	Ext  apiextensions.Interface
}

// Present reports whether the cluster has the Gateway API (its Gateway CRD), and the bundle
// version that CRD carries ("" when it has no such annotation).
func Present(ctx context.Context, c Clients) (bool, string, error) {
	crd, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, ProbeCRD, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read CRD %s: %w", ProbeCRD, err)
	}
	return true, crd.Annotations[BundleVersionAnnotation], nil
}

// Installed says what Install did.
type Installed struct {
	// Found is the bundle version of a Gateway API the cluster already had ("unknown" when its
	// CRD names none); empty when Install created it.
	Found string
	// CRDs are the CRDs Install created (nil when Found).
	CRDs []string
}

// Install creates the Gateway API's standard channel from dir when the cluster has none: every
// CRD, then the ValidatingAdmissionPolicy and its binding, each labelled with labels
// (meshconform's ownership labels, so that Uninstall finds them). A cluster that has the
// Gateway API at any version is left as found, whatever its version: a platform's Gateway API
// is not the suite's to replace. The caller waits for the CRDs (NotEstablished).
func Install(ctx context.Context, c Clients, dir string, labels map[string]string) (Installed, error) {
	found, version, err := Present(ctx, c)
	if err != nil {
		return Installed{}, err
	}
	if found {
		if version == "" {
			version = "unknown"
		}
		return Installed{Found: version}, nil
	}
	objs, err := Objects(dir)
	if err != nil {
		return Installed{}, err
	}
	var out Installed
	for _, obj := range objs {
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for k, v := range labels {
			l[k] = v
		}
		obj.SetLabels(l)
		if err := create(ctx, c, obj); err != nil {
			return out, err
		}
		if obj.GetKind() == "CustomResourceDefinition" {
			out.CRDs = append(out.CRDs, obj.GetName())
		}
	}
	return out, nil
}

func create(ctx context.Context, c Clients, obj *unstructured.Unstructured) error {
	data, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	switch obj.GetKind() {
	case "CustomResourceDefinition":
		var crd apiextensionsv1.CustomResourceDefinition
		if err = yaml.UnmarshalStrict(data, &crd); err == nil {
			_, err = c.Ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{FieldManager: fieldManager})
		}
	default:
		err = createAdmission(ctx, c, obj.GetKind(), data)
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s %s of the Gateway API %s: %w", obj.GetKind(), obj.GetName(), Version, err)
	}
	return nil
}

const fieldManager = "meshconform"

// NotEstablished is what keeps the named CRDs from being served: "" once each is Established.
func NotEstablished(ctx context.Context, c Clients, names []string) string {
	var waiting []string
	for _, n := range names {
		crd, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			waiting = append(waiting, fmt.Sprintf("CRD %s: %v", n, err))
			continue
		}
		ok := false
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			waiting = append(waiting, "CRD "+n+" not established")
		}
	}
	if len(waiting) > 0 {
		return fmt.Sprintf("%d of %d Gateway API CRDs not served yet: %s", len(waiting), len(names), strings.Join(waiting, "; "))
	}
	return ""
}

// Uninstall deletes the Gateway API objects of run runID (ownership labels), CRDs last but
// for the admission policy (whose binding names it); a cluster-provided Gateway API carries no
// such label and is left alone. It returns the CRDs it deleted, for the caller to wait on
// (Gone). Deleting a CRD deletes every object of its kind.
func Uninstall(ctx context.Context, c Clients, runID string) ([]string, error) {
	sel := ownership.Selector(runID)
	crds := c.Ext.ApiextensionsV1().CustomResourceDefinitions()
	list, err := crds.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list the Gateway API CRDs of run %s: %w", runID, err)
	}
	if err := deleteAdmission(ctx, c, sel); err != nil {
		return nil, err
	}
	var deleted []string
	for _, crd := range list.Items {
		if crd.Spec.Group != Group {
			continue
		}
		if err := crds.Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("delete CRD %s: %w", crd.Name, err)
		}
		deleted = append(deleted, crd.Name)
	}
	return deleted, nil
}

// Gone is what is left of the named CRDs: "" once none is there.
func Gone(ctx context.Context, c Clients, names []string) string {
	var left []string
	for _, n := range names {
		crd, err := c.Ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
		switch {
		case err == nil:
			// The API server's own account of the deletion (Terminating: instances being
			// deleted, finalizers).
			what := n
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Terminating && cond.Status == apiextensionsv1.ConditionTrue {
					what += " (" + cond.Reason + ": " + cond.Message + ")"
				}
			}
			if len(crd.Finalizers) > 0 {
				what += fmt.Sprintf(" finalizers %v", crd.Finalizers)
			}
			left = append(left, what)
		case !apierrors.IsNotFound(err):
			return fmt.Sprintf("CRD %s: %v", n, err)
		}
	}
	if len(left) > 0 {
		return fmt.Sprintf("%d Gateway API CRDs still being deleted: %s", len(left), strings.Join(left, ", "))
	}
	return ""
}
