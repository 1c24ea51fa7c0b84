package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"meshconform/framework/ownership"
)

// Object is what the Applier takes: *securityv1.PeerAuthentication,
// *securityv1.AuthorizationPolicy, *networkingv1.DestinationRule, or an
// *unstructured.Unstructured of an Istio kind (case data as written, so that the API
// server, not a Go decoder, judges it).
type Object interface {
	metav1.Object
	runtime.Object
}

// Applier creates, updates and deletes Istio policy objects, labelling each with the run's
// ownership labels so that DeleteAll (and anyone auditing the cluster) can find them.
type Applier struct {
	istio istioclient.Interface
	runID string
}

// NewApplier returns an Applier for the run runID (see ownership.NewRunID).
func NewApplier(istio istioclient.Interface, runID string) *Applier {
	return &Applier{istio: istio, runID: runID}
}

// Apply creates obj, or updates it if an object of that name exists (spec, labels and
// annotations become obj's). It adds the ownership labels to obj first, and on success fills
// obj with what the server stored (resourceVersion, uid). Errors carry the API server's
// message, which names the offending field; apierrors.IsInvalid and friends see through them.
func (a *Applier) Apply(ctx context.Context, obj Object) error {
	obj.SetLabels(ownership.Stamp(obj.GetLabels(), a.runID))
	switch o := obj.(type) {
	case *securityv1.PeerAuthentication:
		return apply(ctx, a.peerAuthentications(o.Namespace), o)
	case *securityv1.AuthorizationPolicy:
		return apply(ctx, a.authorizationPolicies(o.Namespace), o)
	case *networkingv1.DestinationRule:
		return apply(ctx, a.destinationRules(o.Namespace), o)
	case *unstructured.Unstructured:
		return a.applyUnstructured(ctx, o, false)
	}
	return unsupported(obj)
}

// DryRun asks the API server to validate obj as a create (or, if it exists, an update)
// without storing anything: the way to check case data against the real CRD schemas.
func (a *Applier) DryRun(ctx context.Context, obj Object) error {
	obj = obj.DeepCopyObject().(Object)
	obj.SetLabels(ownership.Stamp(obj.GetLabels(), a.runID))
	switch o := obj.(type) {
	case *securityv1.PeerAuthentication:
		return dryRun(ctx, a.peerAuthentications(o.Namespace), o)
	case *securityv1.AuthorizationPolicy:
		return dryRun(ctx, a.authorizationPolicies(o.Namespace), o)
	case *networkingv1.DestinationRule:
		return dryRun(ctx, a.destinationRules(o.Namespace), o)
	case *unstructured.Unstructured:
		return a.applyUnstructured(ctx, o, true)
	}
	return unsupported(obj)
}

// Delete deletes obj; an object that is already gone is not an error.
func (a *Applier) Delete(ctx context.Context, obj Object) error {
	var err error
	switch o := obj.(type) {
	case *securityv1.PeerAuthentication:
		err = a.peerAuthentications(o.Namespace).del(ctx, o.Name)
	case *securityv1.AuthorizationPolicy:
		err = a.authorizationPolicies(o.Namespace).del(ctx, o.Name)
	case *networkingv1.DestinationRule:
		err = a.destinationRules(o.Namespace).del(ctx, o.Name)
	case *unstructured.Unstructured:
		rc, resource, rerr := a.restFor(o.GroupVersionKind())
		if rerr != nil {
			return rerr
		}
		_, err = do(ctx, rc.Delete().Namespace(o.GetNamespace()).Resource(resource).Name(o.GetName()))
	default:
		return unsupported(obj)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("policy: delete %s: %w", describe(obj), err)
	}
	return nil
}

// DeleteAll deletes the PeerAuthentications, AuthorizationPolicies and DestinationRules in
// ns (every namespace when ns is "") that carry this run's ownership labels, and nothing else.
func (a *Applier) DeleteAll(ctx context.Context, ns string) error {
	sel := metav1.ListOptions{LabelSelector: ownership.Selector(a.runID)}
	var errs []error
	errs = append(errs, deleteListed(ctx, a.peerAuthentications(ns), a.peerAuthentications, sel)...)
	errs = append(errs, deleteListed(ctx, a.authorizationPolicies(ns), a.authorizationPolicies, sel)...)
	errs = append(errs, deleteListed(ctx, a.destinationRules(ns), a.destinationRules, sel)...)
	return errors.Join(errs...)
}

func deleteListed[P Object](ctx context.Context, all kindClient[P], in func(string) kindClient[P], sel metav1.ListOptions) []error {
	items, err := all.list(ctx, sel)
	if err != nil {
		return []error{fmt.Errorf("policy: list %s (%s): %w", all.kind, sel.LabelSelector, err)}
	}
	var errs []error
	for _, it := range items {
		if err := in(it.GetNamespace()).del(ctx, it.GetName()); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("policy: delete %s %s/%s: %w", all.kind, it.GetNamespace(), it.GetName(), err))
		}
	}
	return errs
}

// kindClient is the part of a typed Istio client the Applier uses, for one kind in one
// namespace ("" lists across namespaces).
type kindClient[P Object] struct {
	kind   string
	create func(context.Context, P, metav1.CreateOptions) (P, error)
	update func(context.Context, P, metav1.UpdateOptions) (P, error)
	get    func(context.Context, string) (P, error)
	del    func(context.Context, string) error
	list   func(context.Context, metav1.ListOptions) ([]P, error)
	// sameContent reports whether spec, labels and annotations agree.
	sameContent func(a, b P) bool
	// setContent copies spec, labels and annotations from src into dst.
	setContent func(dst, src P)
}

func (a *Applier) peerAuthentications(ns string) kindClient[*securityv1.PeerAuthentication] {
	c := a.istio.SecurityV1().PeerAuthentications(ns)
	return kindClient[*securityv1.PeerAuthentication]{
		kind: "PeerAuthentication", create: c.Create, update: c.Update,
		get: func(ctx context.Context, name string) (*securityv1.PeerAuthentication, error) {
			return c.Get(ctx, name, metav1.GetOptions{})
		},
		del: func(ctx context.Context, name string) error { return c.Delete(ctx, name, metav1.DeleteOptions{}) },
		list: func(ctx context.Context, opts metav1.ListOptions) ([]*securityv1.PeerAuthentication, error) {
			l, err := c.List(ctx, opts)
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		},
		sameContent: func(x, y *securityv1.PeerAuthentication) bool {
			return sameMeta(x, y) && proto.Equal(&x.Spec, &y.Spec)
		},
		setContent: func(dst, src *securityv1.PeerAuthentication) {
			setMeta(dst, src)
			src.Spec.DeepCopyInto(&dst.Spec)
		},
	}
}

func (a *Applier) authorizationPolicies(ns string) kindClient[*securityv1.AuthorizationPolicy] {
	c := a.istio.SecurityV1().AuthorizationPolicies(ns)
	return kindClient[*securityv1.AuthorizationPolicy]{
		kind: "AuthorizationPolicy", create: c.Create, update: c.Update,
		get: func(ctx context.Context, name string) (*securityv1.AuthorizationPolicy, error) {
			return c.Get(ctx, name, metav1.GetOptions{})
		},
		del: func(ctx context.Context, name string) error { return c.Delete(ctx, name, metav1.DeleteOptions{}) },
		list: func(ctx context.Context, opts metav1.ListOptions) ([]*securityv1.AuthorizationPolicy, error) {
			l, err := c.List(ctx, opts)
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		},
		sameContent: func(x, y *securityv1.AuthorizationPolicy) bool {
			return sameMeta(x, y) && proto.Equal(&x.Spec, &y.Spec)
		},
		setContent: func(dst, src *securityv1.AuthorizationPolicy) {
			setMeta(dst, src)
			src.Spec.DeepCopyInto(&dst.Spec)
		},
	}
}

func (a *Applier) destinationRules(ns string) kindClient[*networkingv1.DestinationRule] {
	c := a.istio.NetworkingV1().DestinationRules(ns)
	return kindClient[*networkingv1.DestinationRule]{
		kind: "DestinationRule", create: c.Create, update: c.Update,
		get: func(ctx context.Context, name string) (*networkingv1.DestinationRule, error) {
			return c.Get(ctx, name, metav1.GetOptions{})
		},
		del: func(ctx context.Context, name string) error { return c.Delete(ctx, name, metav1.DeleteOptions{}) },
		list: func(ctx context.Context, opts metav1.ListOptions) ([]*networkingv1.DestinationRule, error) {
			l, err := c.List(ctx, opts)
			if err != nil {
				return nil, err
			}
			return l.Items, nil
		},
		sameContent: func(x, y *networkingv1.DestinationRule) bool {
			return sameMeta(x, y) && proto.Equal(&x.Spec, &y.Spec)
		},
		setContent: func(dst, src *networkingv1.DestinationRule) {
			setMeta(dst, src)
			src.Spec.DeepCopyInto(&dst.Spec)
		},
	}
}

func apply[P Object](ctx context.Context, c kindClient[P], obj P) error {
	// A resourceVersion (say, from an earlier Apply of this value) would make the create a
	// BadRequest rather than AlreadyExists; the update below sets the current one.
	obj.SetResourceVersion("")
	created, err := c.create(ctx, obj, metav1.CreateOptions{})
	if err == nil {
		copyInto(obj, created)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("policy: create %s: %w", describe(obj), err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.get(ctx, obj.GetName())
		if err != nil {
			return err
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		updated, err := c.update(ctx, obj, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		copyInto(obj, updated)
		return nil
	})
	if err != nil {
		return fmt.Errorf("policy: update %s: %w", describe(obj), err)
	}
	return nil
}

func dryRun[P Object](ctx context.Context, c kindClient[P], obj P) error {
	obj.SetResourceVersion("") // obj is the Applier's copy
	_, err := c.create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if apierrors.IsAlreadyExists(err) {
		// A create would be refused for the name alone; validate the content as an update.
		cur, gerr := c.get(ctx, obj.GetName())
		if gerr != nil {
			return fmt.Errorf("policy: dry-run %s: %w", describe(obj), gerr)
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = c.update(ctx, obj, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	}
	if err != nil {
		return fmt.Errorf("policy: dry-run %s: %w", describe(obj), err)
	}
	return nil
}

// copyInto makes dst what the server returned, keeping dst's TypeMeta (servers leave it empty).
func copyInto(dst, src Object) {
	tm := dst.GetObjectKind().GroupVersionKind()
	switch d := dst.(type) {
	case *securityv1.PeerAuthentication:
		src.(*securityv1.PeerAuthentication).DeepCopyInto(d)
	case *securityv1.AuthorizationPolicy:
		src.(*securityv1.AuthorizationPolicy).DeepCopyInto(d)
	case *networkingv1.DestinationRule:
		src.(*networkingv1.DestinationRule).DeepCopyInto(d)
	}
	if !tm.Empty() {
		dst.GetObjectKind().SetGroupVersionKind(tm)
	}
}

// istioResources maps the Istio kinds an unstructured object may be to their resource names.
var istioResources = map[string]string{
	"PeerAuthentication": "peerauthentications", "AuthorizationPolicy": "authorizationpolicies",
	"RequestAuthentication": "requestauthentications", "DestinationRule": "destinationrules",
	"VirtualService": "virtualservices", "Gateway": "gateways", "ServiceEntry": "serviceentries",
	"Sidecar": "sidecars", "WorkloadEntry": "workloadentries", "WorkloadGroup": "workloadgroups",
	"EnvoyFilter": "envoyfilters", "ProxyConfig": "proxyconfigs", "Telemetry": "telemetries",
	"WasmPlugin": "wasmplugins",
}

// restFor returns the istio clientset's REST client for gvk's group-version and the
// resource name: unstructured objects go through the same clientset as typed ones.
func (a *Applier) restFor(gvk schema.GroupVersionKind) (rest.Interface, string, error) {
	resource, ok := istioResources[gvk.Kind]
	if !ok {
		return nil, "", fmt.Errorf("policy: kind %q is not an Istio kind this Applier knows", gvk.Kind)
	}
	var rc rest.Interface
	switch gvk.GroupVersion().String() {
	case "security.istio.io/v1":
		rc = a.istio.SecurityV1().RESTClient()
	case "security.istio.io/v1beta1":
		rc = a.istio.SecurityV1beta1().RESTClient()
	case "networking.istio.io/v1":
		rc = a.istio.NetworkingV1().RESTClient()
	case "networking.istio.io/v1beta1":
		rc = a.istio.NetworkingV1beta1().RESTClient()
	case "networking.istio.io/v1alpha3":
		rc = a.istio.NetworkingV1alpha3().RESTClient()
	case "telemetry.istio.io/v1":
		rc = a.istio.TelemetryV1().RESTClient()
	case "extensions.istio.io/v1alpha1":
		rc = a.istio.ExtensionsV1alpha1().RESTClient()
	default:
		return nil, "", fmt.Errorf("policy: apiVersion %q is not an Istio API version this Applier knows", gvk.GroupVersion())
	}
	return rc, resource, nil
}

func (a *Applier) applyUnstructured(ctx context.Context, u *unstructured.Unstructured, dry bool) error {
	rc, resource, err := a.restFor(u.GroupVersionKind())
	if err != nil {
		return err
	}
	verb := "create"
	if dry {
		verb = "dry-run"
	}
	post := func(body *unstructured.Unstructured) ([]byte, error) {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r := rc.Post().Namespace(body.GetNamespace()).Resource(resource).Body(data)
		if dry {
			r = r.Param("dryRun", metav1.DryRunAll)
		}
		return do(ctx, r)
	}
	put := func(body *unstructured.Unstructured) ([]byte, error) {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r := rc.Put().Namespace(body.GetNamespace()).Resource(resource).Name(body.GetName()).Body(data)
		if dry {
			r = r.Param("dryRun", metav1.DryRunAll)
		}
		return do(ctx, r)
	}
	fresh := u.DeepCopy()
	fresh.SetResourceVersion("")
	raw, err := post(fresh)
	if apierrors.IsAlreadyExists(err) {
		verb = "update"
		if dry {
			verb = "dry-run"
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, gerr := do(ctx, rc.Get().Namespace(u.GetNamespace()).Resource(resource).Name(u.GetName()))
			if gerr != nil {
				return gerr
			}
			var existing unstructured.Unstructured
			if gerr := json.Unmarshal(cur, &existing.Object); gerr != nil {
				return gerr
			}
			u.SetResourceVersion(existing.GetResourceVersion())
			var perr error
			raw, perr = put(u)
			return perr
		})
	}
	if err != nil {
		return fmt.Errorf("policy: %s %s: %w", verb, describe(u), err)
	}
	if !dry {
		var stored unstructured.Unstructured
		if err := json.Unmarshal(raw, &stored.Object); err == nil {
			u.Object = stored.Object
		}
	}
	return nil
}

// do runs r and returns the body. The istio clientset's REST client does not decode the API
// server's Status replies (its scheme lacks them), so its errors would say only "the server
// rejected our request"; the Status is decoded here instead, keeping the server's message
// (which names the field) and apierrors' classification.
func do(ctx context.Context, r *rest.Request) ([]byte, error) {
	body, err := r.DoRaw(ctx)
	if err == nil {
		return body, nil
	}
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
		return nil, &apierrors.StatusError{ErrStatus: st}
	}
	return nil, err
}

// FromYAML reads one or more YAML (or JSON) documents into unstructured objects, as written:
// no Go decoding of the spec, so that invalid values reach the API server and its message.
func FromYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("policy: YAML document %d: %w", i+1, err)
		}
		if len(m) == 0 {
			continue // an empty document, between "---" lines
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("policy: YAML document %d has no apiVersion/kind", i+1)
		}
		out = append(out, u)
	}
}

func describe(obj Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		switch obj.(type) {
		case *securityv1.PeerAuthentication:
			kind = "PeerAuthentication"
		case *securityv1.AuthorizationPolicy:
			kind = "AuthorizationPolicy"
		case *networkingv1.DestinationRule:
			kind = "DestinationRule"
		default:
			kind = fmt.Sprintf("%T", obj)
		}
	}
	return fmt.Sprintf("%s %s/%s", kind, obj.GetNamespace(), obj.GetName())
}

func unsupported(obj Object) error {
	return fmt.Errorf("policy: %T is not a kind the Applier handles: use *securityv1.PeerAuthentication, "+
		"*securityv1.AuthorizationPolicy, *networkingv1.DestinationRule or *unstructured.Unstructured", obj)
}

func sameMeta(x, y metav1.Object) bool {
	return equalMaps(x.GetLabels(), y.GetLabels()) && equalMaps(x.GetAnnotations(), y.GetAnnotations())
}

func setMeta(dst, src metav1.Object) {
	dst.SetLabels(copyMap(src.GetLabels()))
	dst.SetAnnotations(copyMap(src.GetAnnotations()))
}

func equalMaps(x, y map[string]string) bool {
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}
