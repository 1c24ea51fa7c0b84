package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// wire renders obj as the API server will receive it, and the expected YAML the same way, so
// that the builders are checked against Istio's documented field names and values.
func assertWire(t *testing.T, obj any, wantYAML string) {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(wantYAML), &want); err != nil {
		t.Fatalf("expected YAML: %v", err)
	}
	// creationTimestamp: null and status: {} come from the client-go types, not the builders.
	if md, ok := got["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	if st, ok := got["status"].(map[string]any); ok && len(st) == 0 {
		delete(got, "status")
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(want)
		t.Errorf("object on the wire:\n%s\nwant:\n%s", g, w)
	}
}

func TestPeerAuthenticationBuilder(t *testing.T) {
	assertWire(t, PeerAuthentication("ns1", "default", Mode(MTLSStrict)), `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: ns1}
spec:
  mtls: {mode: STRICT}
`)
	assertWire(t, PeerAuthentication("ns1", "ports",
		Selector(map[string]string{"app": "server"}),
		Mode(MTLSStrict),
		PortMTLS(8080, MTLSPermissive),
		PortMTLS(9090, MTLSDisable),
		Labels(map[string]string{"case": "MTLS-004"}),
	), `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ports, namespace: ns1, labels: {case: MTLS-004}}
spec:
  selector: {matchLabels: {app: server}}
  mtls: {mode: STRICT}
  portLevelMtls:
    "8080": {mode: PERMISSIVE}
    "9090": {mode: DISABLE}
`)
	// No options: an empty spec (inherit).
	assertWire(t, PeerAuthentication("ns1", "empty"), `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty, namespace: ns1}
spec: {}
`)
}

// DISABLE is the zero value of the TLS mode enum, and Istio's JSON marshaler omits zero
// values: tls.mode DISABLE goes on the wire as "tls: {}", which Istio reads back as DISABLE
// (a present tls block whose mode is the default), not as "no TLS settings".
func TestDestinationRuleBuilder(t *testing.T) {
	assertWire(t, DestinationRule("ns1", "plain", "server.ns1.svc.cluster.local",
		TLSMode(TLSDisable),
		PortTLS(8443, TLSIstioMutual),
		PortTLS(9000, TLSSimple),
		PortTLS(8443, TLSDisable), // replaces the first 8443
		ExportTo("."),
		Selector(map[string]string{"app": "client"}),
		Annotations(map[string]string{"note": "x"}),
	), `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: plain, namespace: ns1, annotations: {note: x}}
spec:
  host: server.ns1.svc.cluster.local
  exportTo: ["."]
  workloadSelector: {matchLabels: {app: client}}
  trafficPolicy:
    tls: {}
    portLevelSettings:
    - port: {number: 8443}
      tls: {}
    - port: {number: 9000}
      tls: {mode: SIMPLE}
`)
}

func TestAuthorizationPolicyBuilder(t *testing.T) {
	// Empty spec: Istio's allow-nothing, which denies every request.
	assertWire(t, AuthorizationPolicy("ns1", "deny-all"), `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: ns1}
spec: {}
`)
	assertWire(t, AuthorizationPolicy("ns1", "deny-get",
		Selector(map[string]string{"app": "server"}),
		Action(Deny),
		Rule(
			FromPrincipals("cluster.local/ns/a/sa/client"),
			FromNamespaces("b", "c"),
			ToMethods("GET", "HEAD"),
			ToPorts(8080),
			ToPaths("/admin*"),
			When("request.headers[x-user]", "eve"),
		),
		Rule(From(Namespaces("d"), NotPrincipals("cluster.local/ns/d/sa/ok")), To(Methods("POST"), Paths("/api"), Ports(80, 443))),
		Rule(), // matches everything
	), `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-get, namespace: ns1}
spec:
  selector: {matchLabels: {app: server}}
  action: DENY
  rules:
  - from:
    - source: {principals: [cluster.local/ns/a/sa/client]}
    - source: {namespaces: [b, c]}
    to:
    - operation: {methods: [GET, HEAD]}
    - operation: {ports: ["8080"]}
    - operation: {paths: ["/admin*"]}
    when:
    - key: request.headers[x-user]
      values: [eve]
  - from:
    - source: {namespaces: [d], notPrincipals: [cluster.local/ns/d/sa/ok]}
    to:
    - operation: {methods: [POST], paths: [/api], ports: ["80", "443"]}
  - {}
`)
	assertWire(t, AuthorizationPolicy("ns1", "ext", Provider("opa"), Rule(ToPaths("/x"))), `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: ns1}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules:
  - to:
    - operation: {paths: [/x]}
`)
}

func TestBuildersDoNotShareCallerMaps(t *testing.T) {
	sel := map[string]string{"app": "a"}
	pa := PeerAuthentication("ns", "n", Selector(sel))
	sel["app"] = "changed"
	if got := pa.Spec.Selector.MatchLabels["app"]; got != "a" {
		t.Errorf("selector follows the caller's map: %q", got)
	}
}

func TestParse(t *testing.T) {
	if m, err := ParseMTLSMode("strict"); err != nil || m != MTLSStrict {
		t.Errorf("ParseMTLSMode(strict) = %v, %v", m, err)
	}
	if _, err := ParseMTLSMode("STRCT"); err == nil || !strings.Contains(err.Error(), `"STRCT"`) {
		t.Errorf("ParseMTLSMode(STRCT) error = %v", err)
	}
	if m, err := ParseTLSMode("ISTIO_MUTUAL"); err != nil || m != TLSIstioMutual {
		t.Errorf("ParseTLSMode = %v, %v", m, err)
	}
	if _, err := ParseTLSMode("MTLS"); err == nil {
		t.Error("ParseTLSMode(MTLS) accepted")
	}
	if a, err := ParseAction("deny"); err != nil || a != Deny {
		t.Errorf("ParseAction(deny) = %v, %v", a, err)
	}
	if _, err := ParseAction("REJECT"); err == nil {
		t.Error("ParseAction(REJECT) accepted")
	}
}

func TestFromYAML(t *testing.T) {
	objs, err := FromYAML([]byte(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: a, namespace: x}
spec: {mtls: {mode: STRCT}}
---
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b, namespace: x}
spec: {host: h}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "PeerAuthentication" || objs[1].GetName() != "b" {
		t.Fatalf("FromYAML gave %d objects: %v", len(objs), objs)
	}
	// Kept as written: the invalid value is for the API server to judge.
	if mode, _, _ := unstructuredString(objs[0].Object, "spec", "mtls", "mode"); mode != "STRCT" {
		t.Errorf("mode = %q", mode)
	}
	if _, err := FromYAML([]byte("metadata: {name: x}\n")); err == nil || !strings.Contains(err.Error(), "no apiVersion/kind") {
		t.Errorf("FromYAML without kind: %v", err)
	}
}

func unstructuredString(m map[string]any, path ...string) (string, bool, error) {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = mm[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
