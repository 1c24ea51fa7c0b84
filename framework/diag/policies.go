package diag

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// policyKind lists one kind of Istio object in a namespace.
type policyKind struct {
	gvk  schema.GroupVersionKind
	list func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error)
}

func objects[P runtime.Object](items []P) []runtime.Object {
	out := make([]runtime.Object, 0, len(items))
	for _, it := range items {
		out = append(out, it)
	}
	return out
}

// policyKinds are the Istio kinds a dump collects, in the order policies.yaml shows them.
var policyKinds = []policyKind{
	{securityv1.SchemeGroupVersion.WithKind("PeerAuthentication"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.SecurityV1().PeerAuthentications(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{networkingv1.SchemeGroupVersion.WithKind("DestinationRule"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.NetworkingV1().DestinationRules(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{securityv1.SchemeGroupVersion.WithKind("AuthorizationPolicy"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.SecurityV1().AuthorizationPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{securityv1.SchemeGroupVersion.WithKind("RequestAuthentication"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.SecurityV1().RequestAuthentications(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{networkingv1.SchemeGroupVersion.WithKind("VirtualService"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.NetworkingV1().VirtualServices(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{networkingv1.SchemeGroupVersion.WithKind("Gateway"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.NetworkingV1().Gateways(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{networkingv1.SchemeGroupVersion.WithKind("Sidecar"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.NetworkingV1().Sidecars(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
	{networkingv1.SchemeGroupVersion.WithKind("ServiceEntry"), func(ctx context.Context, c istioclient.Interface, ns string) ([]runtime.Object, error) {
		l, err := c.NetworkingV1().ServiceEntries(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return objects(l.Items), nil
	}},
}

// policies writes every Istio policy in ns to one policies.yaml, kind by kind, saying so
// when a kind has none (absence is evidence) or could not be listed.
func (d *dumper) policies(ctx context.Context, ns string) {
	if d.istio == nil {
		d.noteErr("istio policies in %s: no Istio client (set DumpOptions.Istio or RestConfig)", ns)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Istio policies in %s\n", ns)
	for _, k := range policyKinds {
		cctx, cancel := d.call(ctx)
		objs, err := k.list(cctx, d.istio, ns)
		cancel()
		if err != nil {
			d.noteErr("%s in %s: %v", k.gvk.Kind, ns, err)
			fmt.Fprintf(&b, "# %s: not listed (%v)\n", k.gvk.Kind, err)
			continue
		}
		fmt.Fprintf(&b, "# %s (%s): %d\n", k.gvk.Kind, k.gvk.GroupVersion(), len(objs))
		for _, o := range objs {
			o.GetObjectKind().SetGroupVersionKind(k.gvk)
			if m, ok := o.(metav1.Object); ok {
				m.SetManagedFields(nil)
			}
			y, err := yaml.Marshal(o)
			if err != nil {
				d.noteErr("%s in %s: marshal: %v", k.gvk.Kind, ns, err)
				continue
			}
			b.WriteString("---\n")
			b.Write(y)
		}
	}
	d.write(filepath.Join(ns, "policies.yaml"), []byte(b.String()))
}
