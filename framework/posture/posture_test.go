package posture

// Tier 0: allow-list parsing and matching, the ClusterRole's shape, rendering (text, JSON,
// JUnit parsed back), check semantics on hand-built snapshots, and Main's flag and
// connection errors. No API server.

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"meshconform/framework/catalog"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

func TestParseAllowListAcceptsEveryMatcher(t *testing.T) {
	al, err := ParseAllowList([]byte(`
allow:
  - namespace: legacy-billing
    checks: [POSTURE-004]
    reason: "batch jobs without sidecars until BILL-142"
  - workload: monitoring/node-exporter
    reason: scrapes host ports
  - selector: "app in (kafka, zookeeper)"
    namespace: streaming
    checks: [POSTURE-005, POSTURE-006]
    reason: native TLS (SEC-77)
  - annotation: security.example.com/posture-exception=approved
    reason: approved by the security team
`))
	if err != nil {
		t.Fatalf("valid allow list rejected: %v", err)
	}
	if len(al.Entries) != 4 {
		t.Fatalf("parsed %d entries, want 4: %+v", len(al.Entries), al.Entries)
	}
	if got := al.Entries[2].Rule(); got != "namespace=streaming selector=app in (kafka, zookeeper) checks=POSTURE-005,POSTURE-006" {
		t.Errorf("Rule() = %q", got)
	}
	if empty, err := ParseAllowList(nil); err != nil || len(empty.Entries) != 0 {
		t.Errorf("an empty file should be an empty allow list, got %+v, %v", empty, err)
	}
}

func TestParseAllowListRejects(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"missing reason", "allow:\n- namespace: a\n", "allow[0]: reason is missing"},
		{"blank reason", "allow:\n- namespace: a\n  reason: '   '\n", "allow[0]: reason is missing"},
		{"second entry without reason", "allow:\n- namespace: a\n  reason: ok\n- workload: b/c\n", "allow[1]: reason is missing"},
		{"no matcher", "allow:\n- reason: because\n  checks: [POSTURE-004]\n", "matches nothing"},
		{"workload without namespace", "allow:\n- workload: web\n  reason: r\n", `workload "web": write it as namespace/name`},
		{"workload outside namespace", "allow:\n- workload: a/web\n  namespace: b\n  reason: r\n", "could never match"},
		{"bad selector", "allow:\n- selector: 'app in kafka'\n  reason: r\n", `selector "app in kafka"`},
		{"unknown check", "allow:\n- namespace: a\n  checks: [POSTURE-999]\n  reason: r\n", `"POSTURE-999" is not one of`},
		{"typo in a key", "allow:\n- namepsace: a\n  reason: r\n", `unknown field "namepsace"`},
		{"bad namespace", "allow:\n- namespace: Not_A_Namespace\n  reason: r\n", `namespace "Not_A_Namespace"`},
		{"not a list", "allow: {namespace: a}\n", "not a valid allow list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAllowList([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadAllowListNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow.yaml")
	if err := os.WriteFile(path, []byte("allow:\n- namespace: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAllowList(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "reason is missing") {
		t.Fatalf("error %v should name %s and the missing reason", err, path)
	}
}

func TestAllowEntryMatching(t *testing.T) {
	pod := subject{namespace: "shop", name: "web-5d8f7c-x2x9q", workload: "web",
		labels: map[string]string{"app": "web", "tier": "front"}, annotations: map[string]string{"exception": "SEC-1"}}
	for _, tc := range []struct {
		name  string
		entry AllowEntry
		check string
		want  bool
	}{
		{"namespace", AllowEntry{Namespace: "shop"}, SidecarsEverywhere, true},
		{"other namespace", AllowEntry{Namespace: "bank"}, SidecarsEverywhere, false},
		{"owner workload", AllowEntry{Workload: "shop/web"}, NoCaptureBypass, true},
		{"pod name", AllowEntry{Workload: "shop/web-5d8f7c-x2x9q"}, NoCaptureBypass, true},
		{"same name other namespace", AllowEntry{Workload: "bank/web"}, NoCaptureBypass, false},
		{"selector", AllowEntry{Selector: "app=web,tier in (front)"}, NoCaptureBypass, true},
		{"selector mismatch", AllowEntry{Selector: "app=db"}, NoCaptureBypass, false},
		{"annotation key", AllowEntry{Annotation: "exception"}, NoCaptureBypass, true},
		{"annotation value", AllowEntry{Annotation: "exception=SEC-1"}, NoCaptureBypass, true},
		{"annotation other value", AllowEntry{Annotation: "exception=SEC-2"}, NoCaptureBypass, false},
		{"check listed", AllowEntry{Namespace: "shop", Checks: []string{SidecarsEverywhere}}, SidecarsEverywhere, true},
		{"check not listed", AllowEntry{Namespace: "shop", Checks: []string{SidecarsEverywhere}}, NoCaptureBypass, false},
		{"all matchers must match", AllowEntry{Namespace: "shop", Selector: "app=db"}, NoCaptureBypass, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.entry.matches(tc.check, pod); got != tc.want {
				t.Errorf("%s matches %+v for %s = %v, want %v", tc.entry.Rule(), pod, tc.check, got, tc.want)
			}
		})
	}
}

func TestClusterRoleGrantsOnlyReads(t *testing.T) {
	cr, err := ClusterRole()
	if err != nil {
		t.Fatal(err)
	}
	if cr.Kind != "ClusterRole" || cr.APIVersion != "rbac.authorization.k8s.io/v1" || cr.Name != "meshconform-posture" {
		t.Errorf("manifest is %s %s %s, want rbac.authorization.k8s.io/v1 ClusterRole meshconform-posture", cr.APIVersion, cr.Kind, cr.Name)
	}
	for i, r := range cr.Rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %d: resourceNames/nonResourceURLs are not expected here: %+v", i, r)
		}
		for _, field := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			for _, v := range field {
				if v == "*" {
					t.Errorf("rule %d has a wildcard: %+v", i, r)
				}
			}
		}
		for _, v := range r.Verbs {
			if v != "get" && v != "list" {
				t.Errorf("rule %d grants %q: the audit is read-only (get/list)", i, v)
			}
		}
	}
	perms := RequiredPermissions()
	if len(perms) == 0 {
		t.Fatal("RequiredPermissions is empty")
	}
	for _, p := range perms {
		if !strings.HasSuffix(p.String(), " (cluster-wide)") || strings.Contains(p.String(), "..") {
			t.Errorf("badly named permission %q", p)
		}
	}
	if got := (Permission{Verb: "list", Group: "security.istio.io", Resource: "peerauthentications"}).String(); got != "list peerauthentications.security.istio.io (cluster-wide)" {
		t.Errorf("Permission.String() = %q", got)
	}
	if got := (Permission{Verb: "get", Resource: "configmaps"}).String(); got != "get configmaps (cluster-wide)" {
		t.Errorf("Permission.String() = %q", got)
	}
}

func TestCheckIDsMatchCatalog(t *testing.T) {
	var want []string
	for _, b := range catalog.All() {
		if b.Area == catalog.AreaPosture {
			want = append(want, b.ID)
		}
	}
	if !reflect.DeepEqual(CheckIDs(), want) {
		t.Fatalf("CheckIDs() = %v, catalog has %v", CheckIDs(), want)
	}
	for i, c := range checks {
		if c.id != want[i] {
			t.Errorf("checks[%d] is %s, want %s", i, c.id, want[i])
		}
	}
}

// Semantics that are easiest to pin on a hand-built snapshot.

func pa(ns, name string, created time.Time, mode securityapi.PeerAuthentication_MutualTLS_Mode, sel map[string]string) *securityv1.PeerAuthentication {
	p := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
	p.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	if sel != nil {
		p.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: sel}
	}
	return p
}

func TestMeshWideStrictUsesTheOldestPolicy(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &snapshot{rootNS: "istio-system", systemNS: "istio-system", peerAuths: []*securityv1.PeerAuthentication{
		pa("istio-system", "newer-strict", t0.Add(time.Hour), securityapi.PeerAuthentication_MutualTLS_STRICT, nil),
		pa("istio-system", "older-permissive", t0, securityapi.PeerAuthentication_MutualTLS_PERMISSIVE, nil),
		pa("istio-system", "workload-strict", t0.Add(-time.Hour), securityapi.PeerAuthentication_MutualTLS_STRICT, map[string]string{"app": "x"}),
	}}
	o := checkMeshWideStrict(s)
	if len(o.findings) != 1 || o.findings[0].Name != "older-permissive" || o.findings[0].Value != "PERMISSIVE" {
		t.Fatalf("findings %v: Istio applies the oldest selector-less policy, older-permissive", o.findings)
	}
	if len(o.notes) != 1 || !strings.Contains(o.notes[0], "only the oldest, older-permissive") {
		t.Errorf("notes %v should say which policy Istio applies", o.notes)
	}

	s.peerAuths = []*securityv1.PeerAuthentication{pa("istio-system", "unset", t0, securityapi.PeerAuthentication_MutualTLS_UNSET, nil)}
	if o := checkMeshWideStrict(s); len(o.findings) != 1 || !strings.HasPrefix(o.findings[0].Value, "UNSET") {
		t.Fatalf("UNSET mesh-wide mode is PERMISSIVE in effect; findings %v", o.findings)
	}
}

func TestSidecarRecognisesNativeSidecars(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	mk := func(name string, init []corev1.Container, containers ...string) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}}
		p.Spec.InitContainers = init
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		return p
	}
	s := &snapshot{
		namespaces: []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"istio.io/rev": "canary"}}}},
		pods: []corev1.Pod{
			mk("native", []corev1.Container{{Name: "istio-proxy", RestartPolicy: &always}}, "app"),
			mk("classic", nil, "app", "istio-proxy"),
			mk("init-only-proxy", []corev1.Container{{Name: "istio-proxy"}}, "app"), // not a sidecar: it would exit
		},
	}
	o := checkSidecars(s)
	if len(o.findings) != 1 || o.findings[0].Name != "init-only-proxy" {
		t.Fatalf("findings %v, want only init-only-proxy", o.findings)
	}
}

// POSTURE-004 by either mode: a pod of an ambient namespace is in the mesh when Istio's CNI
// enrolled it (ambient.istio.io/redirection: enabled), whatever sidecar.istio.io/inject says;
// a waypoint (its own istio-proxy, labelled dataplane-mode none) is a proxy; each way of
// staying out is named with its field.
func TestInMeshByEitherMode(t *testing.T) {
	ns := func(name string, labels map[string]string) corev1.Namespace {
		return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	pod := func(ns, name string, mutate ...func(*corev1.Pod)) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{}, Annotations: map[string]string{}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app"}}}}
		for _, m := range mutate {
			m(&p)
		}
		return p
	}
	enrolled := func(p *corev1.Pod) { p.Annotations["ambient.istio.io/redirection"] = "enabled" }
	s := &snapshot{rootNS: "istio-system", systemNS: "istio-system",
		namespaces: []corev1.Namespace{
			ns("amb", map[string]string{"istio.io/dataplane-mode": "ambient"}),
			ns("side", map[string]string{"istio-injection": "enabled"}),
			ns("both", map[string]string{"istio-injection": "enabled", "istio.io/dataplane-mode": "ambient"}),
			ns("plain", nil),
			ns("off", map[string]string{"istio.io/dataplane-mode": "none"}),
		},
		pods: []corev1.Pod{
			pod("amb", "web", enrolled),
			pod("amb", "inject-false", enrolled, func(p *corev1.Pod) { p.Labels["sidecar.istio.io/inject"] = "false" }),
			pod("amb", "waypoint", func(p *corev1.Pod) {
				p.Labels["istio.io/dataplane-mode"] = "none"
				p.Spec.Containers = []corev1.Container{{Name: "istio-proxy"}}
			}),
			pod("amb", "opted-out", func(p *corev1.Pod) { p.Labels["istio.io/dataplane-mode"] = "none" }),
			pod("amb", "host", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			pod("amb", "pending", func(p *corev1.Pod) { p.Annotations["ambient.istio.io/redirection"] = "pending" }),
			pod("amb", "never", func(p *corev1.Pod) { p.Spec.NodeName = "node-7" }),
			pod("side", "sidecar", func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy"})
			}),
			pod("both", "injected", func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy"})
			}),
			pod("both", "ambient-instead", enrolled, func(p *corev1.Pod) { p.Labels["sidecar.istio.io/inject"] = "false" }),
			pod("plain", "outside"),
			pod("off", "outside-too"),
		},
	}
	o := checkSidecars(s)
	var got []string
	for _, f := range o.findings {
		got = append(got, fmt.Sprintf("%s %s=%s", f.Name, f.Field, f.Value))
	}
	want := []string{
		"opted-out metadata.labels['istio.io/dataplane-mode']=none",
		"host spec.hostNetwork=true",
		"pending metadata.annotations['ambient.istio.io/redirection']=pending",
		"never metadata.annotations['ambient.istio.io/redirection']=(absent)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings\n  got  %q\n  want %q", got, want)
	}
	if m := o.findings[3].Message; !strings.Contains(m, "not enrolled in ambient") || !strings.Contains(m, "istio-cni-node running on node node-7") {
		t.Errorf("message %q should say the pod is not enrolled and name its node", m)
	}
	if o.examined != "10 running pod(s) in 3 meshed namespace(s), 1 of them ambient" {
		t.Errorf("examined %q", o.examined)
	}
	if len(o.notes) != 1 || !strings.Contains(o.notes[0], "namespace both is labelled for sidecar injection and istio.io/dataplane-mode=ambient") {
		t.Errorf("notes %q should name the namespace labelled for both modes", o.notes)
	}
	r := evaluate(s, AllowList{})
	if !reflect.DeepEqual(r.MeshedNamespaces, []string{"amb", "both", "side"}) || !reflect.DeepEqual(r.AmbientNamespaces, []string{"amb"}) {
		t.Errorf("meshed %v, ambient %v", r.MeshedNamespaces, r.AmbientNamespaces)
	}
	c, _ := r.Check(SidecarsEverywhere)
	if !strings.Contains(c.Remedy, "restart pods created before injection") || !strings.Contains(c.Remedy, "remove istio.io/dataplane-mode=none from ambient pods") {
		t.Errorf("remedy %q should cover both modes", c.Remedy)
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil || !strings.Contains(b.String(), "meshed namespaces: 3 (amb, both, side; ambient: amb)") {
		t.Errorf("text header should list the meshed namespaces and which are ambient:\n%s", b.String())
	}
}

// An audit that finds no meshed namespace fails POSTURE-004, says so, and no allow-list
// entry covers it: it vouched for no pod.
func TestNoMeshedNamespaceFails(t *testing.T) {
	s := &snapshot{rootNS: "istio-system", systemNS: "istio-system", namespaces: []corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "disabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bank", Labels: map[string]string{"istio.io/dataplane-mode": "none"}}},
	}, pods: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}}}
	allowAll := AllowList{Entries: []AllowEntry{{Selector: "!nothing", Reason: "matches every object"}}}
	r := evaluate(s, allowAll)
	c, _ := r.Check(SidecarsEverywhere)
	if c.Result != Fail || len(c.Findings) != 1 || len(c.Allowed) != 0 {
		t.Fatalf("POSTURE-004 %s with findings %v, allowed %v: want one finding no entry covers", c.Result, c.Findings, c.Allowed)
	}
	if m := c.Findings[0].Message; !strings.HasPrefix(m, "no meshed namespace found: no namespace is labelled istio-injection=enabled, istio.io/rev=<revision> or istio.io/dataplane-mode=ambient") {
		t.Errorf("message %q", m)
	}
	if !strings.Contains(c.Remedy, "label the namespaces that belong in the mesh") || c.Examined != "no pod: no meshed namespace found" {
		t.Errorf("remedy %q, examined %q", c.Remedy, c.Examined)
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil || !strings.Contains(b.String(), "meshed namespaces: 0 (no meshed namespace found: nothing is labelled into the mesh, see POSTURE-004)") {
		t.Errorf("the text header must say no meshed namespace was found:\n%s", b.String())
	}
	if r.ExitCode() != ExitFindings {
		t.Errorf("exit %d, want 1", r.ExitCode())
	}

	s.scope = []string{"shop"}
	if o := checkSidecars(s); len(o.findings) != 1 || !strings.Contains(o.findings[0].Message, "none of the namespaces audited (shop) is labelled") {
		t.Errorf("scoped: %v", o.findings)
	}
}

// POSTURE-005 reads ambient's bypass as Istio's CNI does: a boolean (strconv.ParseBool);
// "false" is no bypass, a value that is not a boolean is ignored by the CNI and noted here.
func TestAmbientBypassInboundCapture(t *testing.T) {
	pod := func(name, v string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "amb", Name: name,
			Annotations: map[string]string{"ambient.istio.io/bypass-inbound-capture": v}}}
	}
	s := &snapshot{pods: []corev1.Pod{pod("ingress", "true"), pod("legacy", "1"), pod("off", "false"), pod("typo", "yes")}}
	o := checkCaptureBypass(s)
	var got []string
	for _, f := range o.findings {
		got = append(got, f.Name+" "+f.Field+"="+f.Value)
	}
	want := []string{"ingress metadata.annotations['ambient.istio.io/bypass-inbound-capture']=true", "legacy metadata.annotations['ambient.istio.io/bypass-inbound-capture']=1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("findings\n  got  %q\n  want %q", got, want)
	}
	if !strings.Contains(o.findings[0].Message, "plaintext reaches the app past ztunnel") {
		t.Errorf("message %q", o.findings[0].Message)
	}
	if len(o.notes) != 1 || !strings.Contains(o.notes[0], `Pod amb/typo has ambient.istio.io/bypass-inbound-capture="yes", not a boolean: Istio's CNI ignores it`) {
		t.Errorf("notes %q", o.notes)
	}
	r := evaluate(s, AllowList{})
	if c, _ := r.Check(NoCaptureBypass); !strings.Contains(c.Remedy, "traffic.sidecar.istio.io/exclude* and ambient.istio.io/bypass-inbound-capture annotations") {
		t.Errorf("remedy %q should name the ambient annotation", c.Remedy)
	}
	s.pods = s.pods[2:]
	if c, _ := evaluate(s, AllowList{}).Check(NoCaptureBypass); c.Result != Pass || strings.Contains(c.Remedy, "ambient") {
		t.Errorf("without a bypass: %s, remedy %q", c.Result, c.Remedy)
	}
}

// sampleReport has one check of each kind: pass, fail with an allowed finding, error.
func sampleReport() Report {
	f := Finding{Kind: "Pod", Namespace: "shop", Name: "web-1", Field: "metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts']",
		Value: "8080", Message: "this traffic bypasses the sidecar"}
	allowed := f
	allowed.Name = "legacy-1"
	allowed.Allowed = &Allowance{Entry: 0, Rule: "namespace=shop", Reason: "legacy <port> & \"quotes\""}
	return Report{
		Context: "kind-test", Server: "https://127.0.0.1:6443", Started: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		RootNamespace: "istio-system", RootNamespaceSource: "ConfigMap istio-system/istio, key mesh, field rootNamespace",
		SystemNamespace: "istio-system", SystemNamespaceSource: "istiod pods (label app=istiod) run there",
		MeshedNamespaces: []string{"shop"},
		Checks: []CheckResult{
			{ID: MeshWideStrict, Title: title(MeshWideStrict), Result: Pass, Findings: []Finding{}, Allowed: []Finding{}, Remedy: "r1"},
			{ID: NoCaptureBypass, Title: title(NoCaptureBypass), Result: Fail, Findings: []Finding{f}, Allowed: []Finding{allowed}, Remedy: "remove the annotations", Examined: "2 pod(s)"},
			{ID: ControlPlaneIsolated, Title: title(ControlPlaneIsolated), Result: Error, Findings: []Finding{}, Allowed: []Finding{}, Error: "networkpolicies is forbidden"},
		},
	}
}

func TestExitCode(t *testing.T) {
	r := sampleReport()
	if got := r.ExitCode(); got != ExitError {
		t.Errorf("an errored check must give exit 2, got %d", got)
	}
	r.Checks = r.Checks[:2]
	if got := r.ExitCode(); got != ExitFindings {
		t.Errorf("findings must give exit 1, got %d", got)
	}
	r.Checks = r.Checks[:1]
	if got := r.ExitCode(); got != ExitPass {
		t.Errorf("all pass must give exit 0, got %d", got)
	}
	r.MissingPermissions = []string{"list pods (cluster-wide)"}
	if got := r.ExitCode(); got != ExitError {
		t.Errorf("missing permissions must give exit 2, got %d", got)
	}
	if got := (Report{}).ExitCode(); got != ExitError {
		t.Errorf("a report with no checks vouches for nothing: want exit 2, got %d", got)
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"context kind-test, server https://127.0.0.1:6443",
		"root namespace:    istio-system (ConfigMap istio-system/istio, key mesh, field rootNamespace)",
		"meshed namespaces: 1 (shop)",
		"CHECK        RESULT  FINDINGS  ALLOWED  TITLE",
		"POSTURE-001  PASS    0         0        mesh-wide STRICT",
		"POSTURE-005  FAIL    1         1        no capture bypass",
		"POSTURE-007  ERROR   0         0        control plane isolated",
		"  - Pod shop/web-1  metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts'] = 8080",
		"  allowed: Pod shop/legacy-1",
		"allow[0] namespace=shop: legacy <port> & \"quotes\"",
		"  remedy: remove the annotations",
		"  error: networkpolicies is forbidden",
		"1 passed, 1 failed, 1 errors: exit 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "POSTURE-001 mesh-wide STRICT: PASS") {
		t.Errorf("a clean pass needs no detail section:\n%s", out)
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse back: %v\n%s", err, b.String())
	}
	// subject is unexported and not serialised; compare what is.
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, r)
	}
	if !strings.Contains(b.String(), `"result": "fail"`) || !strings.Contains(b.String(), `"reason": "legacy <port> & \"quotes\""`) {
		t.Errorf("JSON lacks the expected fields:\n%s", b.String())
	}
}

// parseJUnit reads WriteJUnit's output back (also used by the tier-1 tests).
func parseJUnit(t *testing.T, data []byte) junitTestSuites {
	t.Helper()
	var doc junitTestSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, data)
	}
	return doc
}

func TestWriteJUnitParsesBack(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJUnit(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	doc := parseJUnit(t, b.Bytes())
	if doc.Tests != 3 || doc.Failures != 1 || doc.Errors != 1 || len(doc.Suites) != 1 {
		t.Fatalf("testsuites tests=%d failures=%d errors=%d suites=%d, want 3/1/1/1", doc.Tests, doc.Failures, doc.Errors, len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Timestamp != "2025-06-01T12:00:00Z" || len(s.Cases) != 3 {
		t.Fatalf("suite timestamp %q with %d cases", s.Timestamp, len(s.Cases))
	}
	pass, fail, errc := s.Cases[0], s.Cases[1], s.Cases[2]
	if pass.Name != "POSTURE-001: mesh-wide STRICT" || pass.Failure != nil || pass.Error != nil {
		t.Errorf("passing case: %+v", pass)
	}
	if fail.Failure == nil || !strings.Contains(fail.Failure.Text, "Pod shop/web-1  metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts'] = 8080") ||
		!strings.Contains(fail.Failure.Message, "1 finding(s)") || fail.Failure.Type != NoCaptureBypass {
		t.Errorf("failing case should carry its finding: %+v", fail.Failure)
	}
	if !strings.Contains(fail.SystemOut, `allowed: Pod shop/legacy-1`) || !strings.Contains(fail.SystemOut, `legacy <port> & "quotes"`) {
		t.Errorf("allowed findings belong in system-out with their reason: %q", fail.SystemOut)
	}
	if errc.Error == nil || errc.Error.Message != "networkpolicies is forbidden" {
		t.Errorf("errored case: %+v", errc.Error)
	}
	props := map[string]string{}
	for _, p := range s.Properties {
		props[p.Name] = p.Value
	}
	if props["context"] != "kind-test" || props["rootNamespace"] != "istio-system" {
		t.Errorf("properties %v", props)
	}
}

func TestMainRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "allow.yaml")
	if err := os.WriteFile(bad, []byte("allow:\n- workload: shop/web\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"--nope"}, ExitError, "flag provided but not defined: -nope"},
		{"bad output", []string{"--output", "yaml"}, ExitError, `--output "yaml": use one of text, json, junit`},
		{"positional", []string{"extra"}, ExitError, `unexpected argument "extra"`},
		{"allow list without reason", []string{"--allow-list", bad}, ExitError, "allow[0]: reason is missing"},
		{"missing allow list", []string{"--allow-list", filepath.Join(dir, "absent.yaml")}, ExitError, "no such file"},
		{"missing kubeconfig", []string{"--kubeconfig", filepath.Join(dir, "absent-kubeconfig")}, ExitError, "cannot load the kubeconfig"},
		{"help", []string{"--help"}, ExitPass, "Usage: meshconform posture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("Main(%q) = %d, stderr:\n%s\nwant %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// An unreachable cluster is exit 2 naming the context and the server; JSON still comes out,
// with every check in error, for the CI that parses it.
func TestMainUnreachableClusterNamesContextAndServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + l.Addr().String()
	l.Close() // nothing listens there now: connection refused

	kc := clientcmdapi.NewConfig()
	kc.Clusters["gone"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	kc.AuthInfos["gone"] = &clientcmdapi.AuthInfo{Token: "x"}
	kc.Contexts["gone-context"] = &clientcmdapi.Context{Cluster: "gone", AuthInfo: "gone"}
	kc.Contexts["other"] = &clientcmdapi.Context{Cluster: "gone", AuthInfo: "gone"}
	kc.CurrentContext = "other"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--kubeconfig", path, "--context", "gone-context", "-o", "json", "--junit-file", junit, "--timeout", "20s"}, &stdout, &stderr)
	if code != ExitError {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
	}
	want := fmt.Sprintf(`cannot reach the cluster of context "gone-context" at %s`, server)
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr should contain %q:\n%s", want, stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	if r.Context != "gone-context" || r.Server != server || len(r.Checks) != 7 || r.Checks[0].Result != Error {
		t.Errorf("report %+v", r)
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if doc := parseJUnit(t, data); doc.Errors != 7 {
		t.Errorf("JUnit errors=%d, want 7 (one per check)", doc.Errors)
	}
}
