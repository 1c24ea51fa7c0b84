package behaviors

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/internal/apitest"
)

// kubelet stands in for the node agent behind the API server's pods/log subresource: the
// API server resolves the pod's node, dials its kubelet endpoint and streams
// /containerLogs/<ns>/<pod>/<container>. The tier-1 API server has no kubelet, so this
// serves the logs a test puts in it and records what the API server asked for. It is the
// kubelet's HTTP surface only; the logs are istiod's, in the shapes istiod prints.
type kubelet struct {
	srv  *httptest.Server
	mu   sync.Mutex
	logs map[string]string // ns/pod/container[/previous] → text
	fail map[string]bool
	reqs []string
	// hook, when set, runs before the n-th request (counting from 1) is answered.
	hook func(n int)
}

func newKubelet(t *testing.T) *kubelet {
	k := &kubelet{logs: map[string]string{}, fail: map[string]bool{}}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *kubelet) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/containerLogs/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	key := rest
	if r.URL.Query().Get("previous") == "true" {
		key += "/previous"
	}
	k.mu.Lock()
	k.reqs = append(k.reqs, key+"?"+r.URL.RawQuery)
	n, hook := len(k.reqs), k.hook
	k.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	k.mu.Lock()
	text, found := k.logs[key]
	fail := k.fail[key]
	k.mu.Unlock()
	switch {
	case fail:
		http.Error(w, "container runtime unavailable", http.StatusInternalServerError)
	case !found:
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod not found", key), http.StatusBadRequest)
	default:
		_, _ = w.Write([]byte(text))
	}
}

func (k *kubelet) requests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.reqs...)
}

// node registers the kubelet as a Node the API server can dial.
func (k *kubelet) node(t *testing.T, env *apitest.Environment) string {
	t.Helper()
	ctx := apitest.Context(t, 30*time.Second)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(k.srv.URL, "https://"))
	p, _ := strconv.Atoi(port)
	name := "meshconform-kubelet-" + env.RunID + "-" + port
	n, err := env.Kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Nodes().Delete(apitest.Context(t, 30*time.Second), name, metav1.DeleteOptions{})
	})
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	if _, err := env.Kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// istiodPod creates a pod shaped like the chart's istiod on node, with restarts.
func istiodPod(t *testing.T, env *apitest.Environment, ns, name, node string, labels map[string]string, restarts int32) {
	t.Helper()
	ctx := apitest.Context(t, 30*time.Second)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "default",
			Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.27.1"}}}}
	p, err := env.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "discovery", Image: "docker.io/istio/pilot:1.27.1", Ready: true, RestartCount: restarts,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}}
	if _, err := env.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestTier1IstiodLogs reads istiod's logs through the real API server's pods/log: every
// istiod pod (and only istiod's), the revision's only when asked, the previous instance
// of a restarted container, sinceTime passed on, and a failing pod named while the others'
// logs still come back.
func TestTier1IstiodLogs(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	k := newKubelet(t)
	node := k.node(t, env)
	ns := env.Namespace(t, "istio", nil)

	istiodPod(t, env, ns, "istiod-6d9f8b7c4-aaaaa", node, map[string]string{"app": "istiod", "istio.io/rev": "default"}, 1)
	istiodPod(t, env, ns, "istiod-6d9f8b7c4-bbbbb", node, map[string]string{"app": "istiod", "istio.io/rev": "default"}, 0)
	istiodPod(t, env, ns, "istiod-canary-5c8d7-ccccc", node, map[string]string{"app": "istiod", "istio.io/rev": "canary"}, 0)
	istiodPod(t, env, ns, "istio-ingressgateway-7f-ddddd", node, map[string]string{"app": "istio-ingressgateway"}, 0)

	k.mu.Lock()
	k.logs[ns+"/istiod-6d9f8b7c4-aaaaa/discovery/previous"] = logText([]string{logCannotList})
	k.logs[ns+"/istiod-6d9f8b7c4-aaaaa/discovery"] = logText([]string{logInfo}, tlsBad(3))
	k.logs[ns+"/istiod-6d9f8b7c4-bbbbb/discovery"] = logText([]string{logCA, logCAModern}) // no final newline is added below
	k.logs[ns+"/istiod-6d9f8b7c4-bbbbb/discovery"] = strings.TrimSuffix(k.logs[ns+"/istiod-6d9f8b7c4-bbbbb/discovery"], "\n")
	k.logs[ns+"/istiod-canary-5c8d7-ccccc/discovery"] = logText(tlsBad(1))
	k.logs[ns+"/istio-ingressgateway-7f-ddddd/discovery"] = logText(tlsBad(50))
	k.mu.Unlock()

	since := time.Date(2024, 5, 1, 9, 59, 0, 0, time.UTC)
	text, err := IstiodLogs(ctx, env.Kube, ns, "", since)
	if err != nil {
		t.Fatalf("IstiodLogs: %v\nkubelet saw %q", err, k.requests())
	}
	for _, want := range []string{
		"==> " + ns + "/istiod-6d9f8b7c4-aaaaa discovery (previous) <==\n" + logCannotList + "\n",
		"==> " + ns + "/istiod-6d9f8b7c4-aaaaa discovery <==\n" + logInfo + "\n",
		"==> " + ns + "/istiod-6d9f8b7c4-bbbbb discovery <==\n" + logCA + "\n" + logCAModern + "\n==> " + ns + "/istiod-canary",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("logs lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "ingressgateway") {
		t.Errorf("logs include a pod that is not istiod:\n%s", text)
	}
	f := ScanIstiodLog(text)
	if f.TLSBadCertificate.Count != 4 || f.CannotList.Count != 1 || f.CAAuthFailed.Count != 1 {
		t.Errorf("scan of every istiod's logs: %s; want CP-001 4 (3 default + 1 canary), CP-002 1 (previous instance), CP-003 1", f)
	}
	wantSince := "sinceTime=" + strings.ReplaceAll(since.Format(time.RFC3339), ":", "%3A")
	for _, r := range k.requests() {
		if !strings.Contains(r, wantSince) {
			t.Errorf("kubelet request %q lacks %s", r, wantSince)
		}
	}

	// A revision reads its own istiod only; zero since asks for everything.
	before := len(k.requests())
	text, err = IstiodLogs(ctx, env.Kube, ns, "canary", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if f := ScanIstiodLog(text); f.TLSBadCertificate.Count != 1 || strings.Contains(text, "istiod-6d9f8b7c4") {
		t.Errorf("revision canary: %s\n%s", f, text)
	}
	for _, r := range k.requests()[before:] {
		if strings.Contains(r, "sinceTime") {
			t.Errorf("zero since sent %q", r)
		}
	}

	// One pod's log fails: the error names it, the rest still comes back.
	k.mu.Lock()
	k.fail[ns+"/istiod-6d9f8b7c4-bbbbb/discovery"] = true
	k.mu.Unlock()
	text, err = IstiodLogs(ctx, env.Kube, ns, "default", since)
	if err == nil || !strings.Contains(err.Error(), "logs of "+ns+"/istiod-6d9f8b7c4-bbbbb container discovery") {
		t.Errorf("a failing pod's log: err %v", err)
	}
	if f := ScanIstiodLog(text); f.TLSBadCertificate.Count != 3 {
		t.Errorf("the other pod's logs were not returned with the error: %s\n%s", f, text)
	}

	// No istiod: an error that says why, and which selector was used.
	_, err = IstiodLogs(ctx, env.Kube, ns, "stable", since)
	if !errors.Is(err, errNoIstiodPods) || !strings.Contains(err.Error(), "app=istiod,istio.io/rev=stable") {
		t.Errorf("no istiod of revision stable: %v", err)
	}
}

func (k *kubelet) set(key, text string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.logs[key] = text
}

// TestTier1TLSErrorsSettle runs CP-001's window over live logs: transient errors seen
// before the window pass; errors that keep coming fail at the scan that sees them.
func TestTier1TLSErrorsSettle(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	k := newKubelet(t)
	node := k.node(t, env)
	ns := env.Namespace(t, "istio", nil)
	istiodPod(t, env, ns, "istiod-6d9f8b7c4-aaaaa", node, map[string]string{"app": "istiod"}, 0)
	key := ns + "/istiod-6d9f8b7c4-aaaaa/discovery"

	// Warm-up errors, then quiet: passes, after the window.
	k.set(key, logText(tlsBad(3), []string{logInfo}))
	begin := time.Now()
	f, err := TLSErrorsSettle(ctx, env.Kube, ns, "", time.Time{}, 500*time.Millisecond, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("transient errors: %v", err)
	}
	if time.Since(begin) < 500*time.Millisecond || f.TLSBadCertificate.Count != 3 || len(k.requests()) < 5 {
		t.Errorf("passed after %v and %d scans with %s; want the whole 500ms window, polled", time.Since(begin), len(k.requests()), f)
	}

	// Errors keep coming: the scan after they grow fails, naming the counts and the line.
	k.mu.Lock()
	k.reqs, k.hook = nil, func(n int) {
		if n == 3 {
			k.set(key, logText(tlsBad(5)))
		}
	}
	k.mu.Unlock()
	f, err = TLSErrorsSettle(ctx, env.Kube, ns, "", time.Time{}, time.Minute, 50*time.Millisecond)
	if err == nil {
		t.Fatal("growing TLS errors passed")
	}
	for _, w := range []string{"grew from 3 to 5", "(scan 3 at", fmt.Sprintf(logTLSBad, 4, 50004)} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if f.TLSBadCertificate.Count != 5 || len(k.requests()) != 3 {
		t.Errorf("returned %s after %d scans; want the growing scan, the 3rd", f, len(k.requests()))
	}

	// Logs that cannot be read fail the window.
	k.mu.Lock()
	k.hook, k.fail[key] = nil, true
	k.mu.Unlock()
	if _, err := TLSErrorsSettle(ctx, env.Kube, ns, "", time.Time{}, time.Minute, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "reading istiod's logs (scan 1") {
		t.Errorf("unreadable logs: %v", err)
	}
}
