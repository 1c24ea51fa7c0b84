//go:build !e2e

package upgrade

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/baseline"
	"meshconform/framework/catalog"
	"meshconform/framework/gate"
	"meshconform/framework/istionames"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/suitebin"
	"meshconform/framework/workload"
	"meshconform/internal/istiosrc"
)

func pod(ns, name string, containers, inits []corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{Containers: containers, InitContainers: inits}}
}

var always = corev1.ContainerRestartPolicyAlways

func TestProxyOf(t *testing.T) {
	app := corev1.Container{Name: "curl", Image: "docker.io/curlimages/curl:8.11.1"}
	for _, c := range []struct {
		name         string
		pod          *corev1.Pod
		native       bool
		tag, version string
		err          string
	}{
		{name: "sidecar container", pod: pod("ns", "p", []corev1.Container{app, {Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.30.5"}}, nil),
			tag: "1.30.5", version: "1.30.5"},
		{name: "native sidecar", pod: pod("ns", "p", []corev1.Container{app}, []corev1.Container{
			{Name: "istio-init", Image: "docker.io/istio/proxyv2:1.31.1"},
			{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.31.1", RestartPolicy: &always}}),
			native: true, tag: "1.31.1", version: "1.31.1"},
		{name: "distroless from a mirror with a port and a digest", pod: pod("ns", "p", []corev1.Container{app,
			{Name: "istio-proxy", Image: "registry.local:5000/istio/proxyv2:1.32.0-beta.0-distroless@sha256:0123"}}, nil),
			tag: "1.32.0-beta.0-distroless", version: "1.32.0-beta.0"},
		{name: "an istio-proxy init container that is not a sidecar", pod: pod("ns", "p", []corev1.Container{app},
			[]corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.31.1"}}),
			err: "pod ns/p has no istio-proxy container (containers curl; init containers istio-proxy): was it injected?"},
		{name: "plain pod", pod: pod("ns", "plain", []corev1.Container{app}, nil),
			err: "pod ns/plain has no istio-proxy container (containers curl; init containers none)"},
		{name: "digest only", pod: pod("ns", "p", []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2@sha256:0123"}}, nil),
			err: `proxy image "docker.io/istio/proxyv2@sha256:0123" names no Istio release in its tag`},
		{name: "latest", pod: pod("ns", "p", []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:latest"}}, nil),
			tag: "latest", err: "names no Istio release"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ProxyOf(c.pod)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				if p.Tag != c.tag {
					t.Errorf("tag %q", p.Tag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Container != "istio-proxy" || p.Native != c.native || p.Tag != c.tag || p.Version != c.version {
				t.Errorf("%+v", p)
			}
			if !p.Is(c.version) || p.Is("1.29.0") {
				t.Errorf("Is: %+v", p)
			}
		})
	}
	if (Proxy{}).Is("") || (Proxy{}).Is("1.31.1") {
		t.Error("a proxy of unknown version matched")
	}
}

func TestInjectedRevision(t *testing.T) {
	p := pod("ns", "p", nil, nil)
	if rev, from := InjectedRevision(p); rev != "" || from != "" {
		t.Errorf("none: %q %q", rev, from)
	}
	p.Annotations = map[string]string{istionames.StatusAnnotation: `{"initContainers":["istio-init"],"containers":["istio-proxy"],"revision":"canary"}`}
	if rev, from := InjectedRevision(p); rev != "canary" || from != "annotation sidecar.istio.io/status" {
		t.Errorf("status annotation: %q %q", rev, from)
	}
	p.Annotations["istio.io/rev"] = "canary-2"
	if rev, from := InjectedRevision(p); rev != "canary-2" || from != "annotation istio.io/rev" {
		t.Errorf("istio.io/rev annotation wins: %q %q", rev, from)
	}
	p.Labels, p.Annotations = nil, map[string]string{istionames.StatusAnnotation: "not json"}
	if rev, _ := InjectedRevision(p); rev != "" {
		t.Errorf("garbage annotation: %q", rev)
	}
}

// TestInjectedRevisionOfIstiosGoldenPod: Istio's injector writes istio.io/rev as an
// annotation, never as a label (no golden injected spec has the label). A label istio.io/rev
// on the pod is the user's request, e.g. a revision tag, and says nothing of who injected it.
func TestInjectedRevisionOfIstiosGoldenPod(t *testing.T) {
	p := goldenPod(t, "apps", "hello.yaml.injected")
	if got := p.Annotations["istio.io/rev"]; got != "default" {
		t.Fatalf("Istio's golden pod has annotation istio.io/rev=%q; this test stands on \"default\"", got)
	}
	if _, ok := p.Labels["istio.io/rev"]; ok {
		t.Fatalf("Istio's golden pod carries a label istio.io/rev: %v", p.Labels)
	}
	p.Labels["istio.io/rev"] = "prod-stable" // the user's template selected the injector by tag
	if rev, from := InjectedRevision(&p); rev != "default" || from != "annotation istio.io/rev" {
		t.Errorf("golden pod with a user's tag label: injected by %q (%s), want default (annotation istio.io/rev)", rev, from)
	}
}

// goldenPod is the pod Istio's release-1.31 injector produced for golden file name
// (istiosrc.GoldenPod), in namespace ns.
func goldenPod(t testing.TB, ns, name string) corev1.Pod {
	t.Helper()
	p, err := istiosrc.GoldenPod(context.Background(), istiosrc.Release131, name)
	if err != nil {
		t.Fatal(err)
	}
	p.Namespace = ns
	return *p
}

func TestRefOf(t *testing.T) {
	r, err := RefOf(workload.Httpbin)
	if err != nil {
		t.Fatal(err)
	}
	if r.Deployment != "httpbin" || r.App != "httpbin" || r.Service != "httpbin" || r.Port != 8000 || r.URL("ns1", "") != "http://httpbin.ns1:8000" || r.Selector() != "app=httpbin" {
		t.Errorf("httpbin: %+v %s", r, r.URL("ns1", ""))
	}
	r, err = RefOf(workload.Sleep)
	if err != nil || r.Deployment != "sleep" || r.Container != "curl" || r.Service != "" || r.URL("ns", "/") != "" {
		t.Errorf("sleep: %+v %v", r, err)
	}
	for _, role := range []Role{Server, Client, NewServer} {
		if len(SamplesOf(role)) == 0 {
			t.Errorf("role %s deploys nothing", role)
		}
	}
	if SamplesOf(Client)[1] != workload.PlainClient {
		t.Error("the client namespace must hold the plain client")
	}
}

func TestRequireNamesThePhase(t *testing.T) {
	n := Namespaces{Server: "upgrade-server-x"}
	if err := n.Require("run1", Server); err != nil {
		t.Error(err)
	}
	err := n.Require("run1", Server, Client, NewServer)
	if err == nil || !strings.Contains(err.Error(), "no namespace labelled meshconform.io/upgrade-role for role client (made by phase before), new-server (made by phase after-inplace) in run run1") {
		t.Errorf("%v", err)
	}
}

// deployment builds a Deployment in the state a restart left it.
func deployment(stamp string, gen, observed int64, replicas, updated, available int32) *appsv1.Deployment {
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sleep", Generation: gen},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
			Annotations: map[string]string{RestartedAtAnnotation: stamp}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated, AvailableReplicas: available},
	}
}

func podAt(name, stamp string, phase corev1.PodPhase, ready bool, deleting bool) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Status: corev1.PodStatus{Phase: phase}}
	if stamp != "" {
		p.Annotations = map[string]string{RestartedAtAnnotation: stamp}
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func TestRestartReasons(t *testing.T) {
	const stamp = "2026-01-02T03:04:05.123456789Z"
	old := podAt("sleep-old", "", corev1.PodRunning, true, false)
	fresh := podAt("sleep-new", stamp, corev1.PodRunning, true, false)
	for _, c := range []struct {
		name string
		d    *appsv1.Deployment
		pods []corev1.Pod
		want []string // substrings, in order; none: done
	}{
		{name: "done", d: deployment(stamp, 2, 2, 1, 1, 1), pods: []corev1.Pod{fresh}},
		{name: "the old pod is on its way out", d: deployment(stamp, 2, 2, 1, 1, 1), pods: []corev1.Pod{podAt("sleep-old", "", corev1.PodRunning, true, true), fresh}},
		{name: "not yet observed", d: deployment(stamp, 2, 1, 1, 0, 1), pods: []corev1.Pod{old},
			want: []string{"generation 2 not yet observed (observed 1)", "0 of 1 replicas updated", "pod sleep-old: from the old template", "no pod from the restarted template yet"}},
		{name: "surge: new pod ready, old one still running (the moment a plain readiness wait would pass)",
			d: deployment(stamp, 2, 2, 2, 1, 2), pods: []corev1.Pod{old, fresh},
			want: []string{"1 old replica(s) still running", `pod sleep-old: from the old template (kubectl.kubernetes.io/restartedAt="")`}},
		{name: "new pod not ready", d: deployment(stamp, 2, 2, 1, 1, 0), pods: []corev1.Pod{podAt("sleep-new", stamp, corev1.PodPending, false, false)},
			want: []string{"0 of 1 replicas available", "pod sleep-new: from the new template, phase Pending, Ready false"}},
		{name: "restarted again by someone else", d: deployment("later", 3, 3, 1, 1, 1), pods: []corev1.Pod{podAt("sleep-x", "later", corev1.PodRunning, true, false)},
			want: []string{`template says kubectl.kubernetes.io/restartedAt="later", not this restart's`, "pod sleep-x: from the old template", "no pod from the restarted template yet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := RestartReasons(c.d, c.pods, stamp)
			if len(c.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("not done: %v", got)
				}
				return
			}
			joined := strings.Join(got, "\n")
			for _, w := range c.want {
				if !strings.Contains(joined, w) {
					t.Errorf("reasons lack %q:\n%s", w, joined)
				}
			}
		})
	}
	p := newest([]corev1.Pod{old, fresh, podAt("sleep-gone", stamp, corev1.PodRunning, true, true)}, stamp)
	if p == nil || p.Name != "sleep-new" {
		t.Errorf("newest: %v", p)
	}
}

func TestAdmittedReasons(t *testing.T) {
	const stamp = "2026-01-02T03:04:05.123456789Z"
	old := podAt("sleep-old", "", corev1.PodRunning, true, false)
	pending := podAt("sleep-new", stamp, corev1.PodPending, false, false)
	for _, c := range []struct {
		name string
		d    *appsv1.Deployment
		pods []corev1.Pod
		want []string // substrings; none: done
	}{
		{name: "a pod of the new template admitted beside the old one (never Ready without a proxy)", d: deployment(stamp, 2, 2, 2, 1, 1), pods: []corev1.Pod{old, pending}},
		{name: "not yet observed", d: deployment(stamp, 2, 1, 1, 0, 1), pods: []corev1.Pod{old},
			want: []string{"generation 2 not yet observed (observed 1)", "no pod from the restarted template yet"}},
		{name: "the new pod is being deleted", d: deployment(stamp, 2, 2, 2, 1, 1), pods: []corev1.Pod{old, podAt("sleep-new", stamp, corev1.PodPending, false, true)},
			want: []string{"no pod from the restarted template yet"}},
		{name: "restarted again by someone else", d: deployment("later", 3, 3, 1, 1, 1), pods: []corev1.Pod{podAt("sleep-x", "later", corev1.PodPending, false, false)},
			want: []string{`not this restart's`, "no pod from the restarted template yet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(AdmittedReasons(c.d, c.pods, stamp), "\n")
			if len(c.want) == 0 && got != "" {
				t.Fatalf("not done: %s", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("reasons lack %q:\n%s", w, got)
				}
			}
		})
	}
}

// The suite in Ginkgo's dry-run mode (no cluster): every phase's specs are declared, each
// carries the label upgrade, a behaviour ID of the catalog and its area; with a phase named,
// only that phase's specs are; and a real run without the driver's environment stops before
// anything, with the fix.
func TestSuiteDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the e2e suite")
	}
	dir := t.TempDir()
	// The binary the gate runs, from the same cache (linked once per source).
	b, err := suitebin.Suite{Root: "../..", Package: "./suites/upgrade", Tags: []string{"e2e"}}.Binary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bin := b.Path
	dry := func(t *testing.T, phase string) []types.SpecReport {
		t.Helper()
		out := filepath.Join(dir, "dry-"+phase+".json")
		cmd := exec.Command(bin, "-ginkgo.dry-run", "-ginkgo.no-color", "-ginkgo.json-report="+out)
		cmd.Env = append(cleanEnv(), gate.SuitePhaseEnv+"="+phase)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dry run (phase %q) failed: %v\n%s", phase, err, b)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var reports []types.Report
		if err := json.Unmarshal(data, &reports); err != nil {
			t.Fatal(err)
		}
		// The cluster baseline (e2e.Bootstrap registers it in every suite) runs before each
		// phase's behaviours; it is counted apart from them, once per run.
		var its []types.SpecReport
		baselines := 0
		for _, r := range reports {
			for _, s := range r.SpecReports {
				switch {
				case s.LeafNodeType != types.NodeTypeIt:
				case slices.Contains(s.Labels(), baseline.Label):
					baselines++
				default:
					its = append(its, s)
				}
			}
		}
		if baselines != 1 {
			t.Errorf("dry run (phase %q) declares %d baseline specs, want 1 before the behaviours", phase, baselines)
		}
		return its
	}

	its := dry(t, "")
	byPhase, noDataPlane := map[gate.Phase][]string{}, map[gate.Phase][]string{}
	ids := map[string]bool{}
	for _, s := range its {
		labels := s.Labels()
		if !slices.Contains(labels, "upgrade") {
			t.Errorf("spec %q lacks the label upgrade: %v", s.FullText(), labels)
		}
		found := report.BehaviorIDs(labels)
		if len(found) == 0 {
			t.Errorf("spec %q carries no behaviour ID: %v", s.FullText(), labels)
		}
		for _, id := range found {
			b, ok := catalog.Lookup(id)
			if !ok {
				t.Errorf("spec %q: %s is not in the catalog", s.FullText(), id)
				continue
			}
			if !slices.Contains(labels, string(b.Area)) {
				t.Errorf("spec %q: lacks its area label %s", s.FullText(), b.Area)
			}
			if !strings.Contains(s.LeafNodeText, id) {
				t.Errorf("spec %q is labelled %s but does not name it", s.LeafNodeText, id)
			}
			ids[id] = true
		}
		for _, p := range gate.Phases() {
			if strings.Contains(s.FullText(), "phase "+string(p)+" ") {
				byPhase[p] = append(byPhase[p], s.LeafNodeText)
				if !slices.Contains(labels, catalog.LabelDataPlane) {
					noDataPlane[p] = append(noDataPlane[p], s.LeafNodeText)
				}
			}
		}
	}
	for _, p := range gate.Phases() {
		if len(byPhase[p]) != 3 {
			t.Errorf("phase %s declares %d specs, want MTLS-004, its injected spec and MTLS-002: %v", p, len(byPhase[p]), byPhase[p])
		}
		// A run without a data plane (DATAPLANE=0) judges the injected spec alone.
		if len(noDataPlane[p]) != 1 || !strings.Contains(noDataPlane[p][0], "MTLS-004 injected spec") {
			t.Errorf("phase %s: specs without the %s label %v; want MTLS-004's injected spec alone", p, catalog.LabelDataPlane, noDataPlane[p])
		}
	}
	if !ids["MTLS-004"] || !ids["MTLS-002"] {
		t.Errorf("behaviours re-checked: %v", ids)
	}

	one := dry(t, string(gate.AfterInPlace))
	if len(one) != 3 {
		t.Fatalf("phase after-inplace declares %d specs", len(one))
	}
	for _, s := range one {
		if !strings.Contains(s.FullText(), "phase after-inplace ") {
			t.Errorf("phase after-inplace run declares %q", s.FullText())
		}
	}

	// Not a dry run, no driver: it must stop at once, saying what to run, before any cluster.
	cmd := exec.Command(bin, "-ginkgo.no-color")
	cmd.Env = cleanEnv()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ran without the driver's environment:\n%s", out)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("took %s to refuse", time.Since(start))
	}
	for _, want := range []string{"MESHCONFORM_UPGRADE_PHASE is not set", "MESHCONFORM_STATE is not set", "make e2e-upgrade"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "preflight") {
		t.Errorf("went on to bring up a run:\n%s", out)
	}
}

// cleanEnv is the environment without the driver's variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == gate.SuitePhaseEnv || k == gate.SuiteFromEnv || k == gate.SuiteToEnv || k == provision.StateEnv {
			continue
		}
		out = append(out, kv)
	}
	return out
}
