package policy

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

// ForWaypoint is o as it attaches to waypoint in namespace ns (ambient mode, where only a
// waypoint enforces L7): an AuthorizationPolicy or RequestAuthentication of ns that selects
// workloads by labels targets, instead, the Services whose pods those labels select
// (services: each Service of ns with its pods' labels), since the waypoint enforces what
// targets a Service bound to it and the CRD refuses a selector beside targetRefs; one that
// selects every workload of ns (no selector) targets the waypoint's Gateway, the whole of
// what it carries. A waypoint ignores a policy with no targetRefs, and attaches one that targets
// a Service it serves or its own Gateway (istio/istio release-1.31
// pilot/pkg/model/policyattachment.go:140-147, 154-163, 194-196). Anything else (another kind, another namespace, targetRefs already set) is
// returned as it is. o is not changed: a copy is returned.
func ForWaypoint(o Object, ns, waypoint string, services map[string]map[string]string) (Object, error) {
	if o.GetNamespace() != ns {
		return o, nil
	}
	refsFor := func(sel map[string]string) ([]TargetRef, error) {
		if len(sel) == 0 {
			return []TargetRef{GatewayRef(waypoint)}, nil
		}
		var refs []TargetRef
		for _, svc := range slices.Sorted(maps.Keys(services)) {
			if labels.SelectorFromSet(sel).Matches(labels.Set(services[svc])) {
				refs = append(refs, ServiceRef(svc))
			}
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("%s/%s: its selector %v selects the pods of no Service of %s, so no waypoint would enforce it", ns, o.GetName(), sel, ns)
		}
		return refs, nil
	}
	switch p := o.(type) {
	case *securityv1.AuthorizationPolicy:
		if len(p.Spec.GetTargetRefs()) > 0 || p.Spec.GetTargetRef() != nil {
			return o, nil
		}
		refs, err := refsFor(p.Spec.GetSelector().GetMatchLabels())
		if err != nil {
			return nil, err
		}
		c := p.DeepCopy()
		c.Spec.Selector = nil
		c.Spec.TargetRefs = policyRefs(refs)
		return c, nil
	case *securityv1.RequestAuthentication:
		if len(p.Spec.GetTargetRefs()) > 0 || p.Spec.GetTargetRef() != nil {
			return o, nil
		}
		refs, err := refsFor(p.Spec.GetSelector().GetMatchLabels())
		if err != nil {
			return nil, err
		}
		c := p.DeepCopy()
		c.Spec.Selector = nil
		c.Spec.TargetRefs = policyRefs(refs)
		return c, nil
	case *unstructured.Unstructured:
		if k := p.GetKind(); p.GroupVersionKind().Group != "security.istio.io" || (k != "AuthorizationPolicy" && k != "RequestAuthentication") {
			return o, nil
		}
		if _, has, _ := unstructured.NestedFieldNoCopy(p.Object, "spec", "targetRefs"); has {
			return o, nil
		}
		if _, has, _ := unstructured.NestedFieldNoCopy(p.Object, "spec", "targetRef"); has {
			return o, nil
		}
		sel, _, err := unstructured.NestedStringMap(p.Object, "spec", "selector", "matchLabels")
		if err != nil {
			return nil, fmt.Errorf("%s/%s: spec.selector.matchLabels: %w", ns, p.GetName(), err)
		}
		refs, err := refsFor(sel)
		if err != nil {
			return nil, err
		}
		c := p.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "spec", "selector")
		var list []any
		for _, r := range refs {
			list = append(list, map[string]any{"group": r.Group, "kind": r.Kind, "name": r.Name})
		}
		if err := unstructured.SetNestedSlice(c.Object, list, "spec", "targetRefs"); err != nil {
			return nil, err
		}
		return c, nil
	}
	return o, nil
}

func policyRefs(refs []TargetRef) []*typeapi.PolicyTargetReference {
	var out []*typeapi.PolicyTargetReference
	for _, r := range refs {
		out = append(out, &typeapi.PolicyTargetReference{Group: r.Group, Kind: r.Kind, Name: r.Name})
	}
	return out
}
