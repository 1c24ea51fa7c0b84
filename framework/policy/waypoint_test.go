package policy

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

var waypointServices = map[string]map[string]string{
	"httpbin":  {"app": "httpbin", "version": "v1"},
	"my-nginx": {"run": "my-nginx"},
}

func requestAuthn(ns string, sel map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"jwtRules": []any{map[string]any{"issuer": "x"}}}
	if sel != nil {
		spec["selector"] = map[string]any{"matchLabels": sel}
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
		"metadata": map[string]any{"name": "jwt", "namespace": ns}, "spec": spec}}
}

// ForWaypoint moves a selector to the Services whose pods it selects, a namespace-wide policy
// to the waypoint's Gateway, and leaves everything else as it is, never changing its argument.
func TestForWaypoint(t *testing.T) {
	ap := AuthorizationPolicy("srv", "allow-get", Selector(map[string]string{"run": "my-nginx"}), Action(Allow), Rule(ToMethods("GET")))
	got, err := ForWaypoint(ap, "srv", "waypoint", waypointServices)
	if err != nil {
		t.Fatal(err)
	}
	c := got.(*securityv1.AuthorizationPolicy)
	if refs := c.Spec.GetTargetRefs(); c.Spec.GetSelector() != nil || len(refs) != 1 || refs[0].GetKind() != "Service" || refs[0].GetGroup() != "" || refs[0].GetName() != "my-nginx" {
		t.Errorf("selector policy: selector %v, targetRefs %v; want Service my-nginx alone", c.Spec.GetSelector(), refs)
	}
	if ap.Spec.GetSelector() == nil || len(ap.Spec.GetTargetRefs()) != 0 || len(c.Spec.GetRules()) != 1 {
		t.Errorf("the argument changed (%v) or the rules were lost (%v)", &ap.Spec, &c.Spec)
	}

	all, err := ForWaypoint(AuthorizationPolicy("srv", "allow-nothing"), "srv", "waypoint", waypointServices)
	if refs := all.(*securityv1.AuthorizationPolicy).Spec.GetTargetRefs(); err != nil || len(refs) != 1 || refs[0].GetKind() != "Gateway" ||
		refs[0].GetGroup() != "gateway.networking.k8s.io" || refs[0].GetName() != "waypoint" {
		t.Errorf("namespace-wide policy: %v, %v; want the waypoint's Gateway", refs, err)
	}

	ra, err := ForWaypoint(requestAuthn("srv", map[string]any{"app": "httpbin"}), "srv", "waypoint", waypointServices)
	if err != nil {
		t.Fatal(err)
	}
	u := ra.(*unstructured.Unstructured)
	refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "targetRefs")
	if _, has, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "selector"); has || len(refs) != 1 ||
		refs[0].(map[string]any)["name"] != "httpbin" || refs[0].(map[string]any)["kind"] != "Service" {
		t.Errorf("RequestAuthentication: %v", u.Object["spec"])
	}
	if _, has, _ := unstructured.NestedSlice(u.Object, "spec", "jwtRules"); !has {
		t.Errorf("RequestAuthentication lost its jwtRules: %v", u.Object["spec"])
	}

	// Left as they are: another namespace, another kind, a policy already targeting.
	for name, o := range map[string]Object{
		"root namespace":     AuthorizationPolicy("istio-system", "deny", Selector(map[string]string{"app": "httpbin"})),
		"PeerAuthentication": PeerAuthentication("srv", "strict", Selector(map[string]string{"app": "httpbin"}), Mode(MTLSStrict)),
		"targetRefs":         AuthorizationPolicy("srv", "t", TargetRefs(ServiceRef("httpbin"))),
	} {
		if got, err := ForWaypoint(o, "srv", "waypoint", waypointServices); err != nil || got != o {
			t.Errorf("%s: %v, %v; want it unchanged", name, got, err)
		}
	}
	if _, err := ForWaypoint(AuthorizationPolicy("srv", "x", Selector(map[string]string{"app": "mysql"})), "srv", "waypoint", waypointServices); err == nil ||
		!strings.Contains(err.Error(), "srv/x: its selector map[app:mysql] selects the pods of no Service of srv") {
		t.Errorf("a selector no Service covers: %v", err)
	}
}
