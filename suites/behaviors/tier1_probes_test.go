package behaviors

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/internal/apitest"
	"meshconform/internal/istiosrc"
)

// podState is what a test writes through the status subresource, as kubelet would.
type podState struct {
	ready    bool
	running  bool // false: the app waits in ImagePullBackOff
	restarts int32
}

func createProbePod(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name, app string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "docker.io/mccutchen/go-httpbin:v2.15.0"},
			{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.26.4"},
		}}}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setState(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name string, s podState) {
	t.Helper()
	p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	cond := corev1.ConditionFalse
	if s.ready {
		cond = corev1.ConditionTrue
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: cond, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: cond, LastTransitionTime: now},
		}}
	for _, c := range p.Spec.Containers {
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Ready: s.ready || c.Name == "istio-proxy",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
		if c.Name == "app" {
			st.RestartCount = s.restarts
			if s.restarts > 0 {
				st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2, FinishedAt: now}
			}
			if !s.running {
				st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "docker.io/mccutchen/go-httpbin:v2.15.0"`}}
			}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
	}
	if s.ready {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("writing pod %s status: %v", name, err)
	}
}

// TestTier1SoakReady polls real pods whose status the test writes between observations
// (counted at the API): it passes only after the whole window, and fails at the exact
// observation where a pod restarts, goes unready, is replaced or was never ready.
func TestTier1SoakReady(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	healthy := podState{ready: true, running: true}
	const poll = 50 * time.Millisecond

	t.Run("ready all along", func(t *testing.T) {
		ns := env.Namespace(t, "soak", nil)
		createProbePod(t, ctx, env.Kube, ns, "probe-server-1", "probe-server")
		createProbePod(t, ctx, env.Kube, ns, "probe-server-2", "probe-server")
		setState(t, ctx, env.Kube, ns, "probe-server-1", healthy)
		setState(t, ctx, env.Kube, ns, "probe-server-2", healthy)
		kube, lists := apitest.CountingPodLists(t, env.Config, ns, func(int64) {})
		begin := time.Now()
		if err := SoakReady(ctx, kube, ns, "app=probe-server", 600*time.Millisecond, poll); err != nil {
			t.Fatalf("SoakReady: %v", err)
		}
		if took := time.Since(begin); took < 600*time.Millisecond {
			t.Errorf("SoakReady passed after %v, before its 600ms window ended", took)
		}
		if lists.Load() < 5 {
			t.Errorf("only %d observations in a 600ms window polled every %v", lists.Load(), poll)
		}
	})

	cases := []struct {
		name  string
		at    int64
		event func(t *testing.T, ns string)
		errs  []string
	}{
		{name: "a restart", at: 3,
			event: func(t *testing.T, ns string) {
				setState(t, ctx, env.Kube, ns, "probe-server-1", podState{ready: true, running: true, restarts: 1})
			},
			errs: []string{"container app of pod probe-server-1 restarted (restarts 0 → 1) (observation 3 at", "last terminated: Error exit 2"}},
		{name: "not ready for a moment", at: 4,
			event: func(t *testing.T, ns string) {
				setState(t, ctx, env.Kube, ns, "probe-server-1", podState{running: true})
			},
			errs: []string{"pod probe-server-1 is not Ready (observation 4 at", "condition Ready=False"}},
		{name: "replaced", at: 2,
			event: func(t *testing.T, ns string) {
				if err := env.Kube.CoreV1().Pods(ns).Delete(ctx, "probe-server-1", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
					t.Fatal(err)
				}
				createProbePod(t, ctx, env.Kube, ns, "probe-server-9", "probe-server")
				setState(t, ctx, env.Kube, ns, "probe-server-9", podState{ready: true, running: true})
			},
			errs: []string{"pod probe-server-9 appeared during the soak (a replaced pod?) (observation 2"}},
		{name: "not ready at the start", at: 1,
			event: func(t *testing.T, ns string) {
				setState(t, ctx, env.Kube, ns, "probe-server-1", podState{running: true})
			},
			errs: []string{"pod probe-server-1 is not Ready (observation 1 at"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := env.Namespace(t, "soak", nil)
			createProbePod(t, ctx, env.Kube, ns, "probe-server-1", "probe-server")
			setState(t, ctx, env.Kube, ns, "probe-server-1", healthy)
			kube, lists := apitest.CountingPodLists(t, env.Config, ns, func(n int64) {
				if n == c.at {
					c.event(t, ns)
				}
			})
			err := SoakReady(ctx, kube, ns, "app=probe-server", time.Minute, poll)
			if err == nil {
				t.Fatal("want a failure, got pass")
			}
			if lists.Load() != c.at {
				t.Errorf("failed after %d observations, want at observation %d: %v", lists.Load(), c.at, err)
			}
			for _, w := range c.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}

	t.Run("no pods, and an interrupted soak", func(t *testing.T) {
		ns := env.Namespace(t, "soak", nil)
		if err := SoakReady(ctx, env.Kube, ns, "app=probe-server", time.Second, poll); err == nil || !strings.Contains(err.Error(), "no pod matches app=probe-server") {
			t.Errorf("no pods: %v", err)
		}
		createProbePod(t, ctx, env.Kube, ns, "probe-server-1", "probe-server")
		setState(t, ctx, env.Kube, ns, "probe-server-1", healthy)
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := SoakReady(short, env.Kube, ns, "app=probe-server", time.Minute, poll)
		if err == nil || !strings.Contains(err.Error(), "interrupted after") || !strings.Contains(err.Error(), "all Ready") {
			t.Errorf("a soak cut short by its context must not pass: %v", err)
		}
	})
}

// TestTier1NeverReady: running but never Ready passes; Ready once fails at once; never
// running (an image that cannot be pulled) proves nothing and fails.
func TestTier1NeverReady(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	const window, poll = 500 * time.Millisecond, 50 * time.Millisecond

	ns := env.Namespace(t, "never", nil)
	createProbePod(t, ctx, env.Kube, ns, "probe-norewrite-1", "probe-norewrite")
	setState(t, ctx, env.Kube, ns, "probe-norewrite-1", podState{running: true})
	begin := time.Now()
	if err := NeverReady(ctx, env.Kube, ns, "app=probe-norewrite", window, poll); err != nil {
		t.Fatalf("running, never ready: %v", err)
	}
	if time.Since(begin) < window {
		t.Errorf("NeverReady passed before its window ended")
	}

	kube, lists := apitest.CountingPodLists(t, env.Config, ns, func(n int64) {
		if n == 3 {
			setState(t, ctx, env.Kube, ns, "probe-norewrite-1", podState{ready: true, running: true})
		}
	})
	err := NeverReady(ctx, kube, ns, "app=probe-norewrite", time.Minute, poll)
	if err == nil || lists.Load() != 3 || !strings.Contains(err.Error(), "pod probe-norewrite-1 became Ready (observation 3") {
		t.Errorf("ready at observation 3: %v after %d observations", err, lists.Load())
	}

	ns2 := env.Namespace(t, "never", nil)
	createProbePod(t, ctx, env.Kube, ns2, "probe-norewrite-1", "probe-norewrite")
	setState(t, ctx, env.Kube, ns2, "probe-norewrite-1", podState{running: false})
	err = NeverReady(ctx, env.Kube, ns2, "app=probe-norewrite", window, poll)
	if err == nil || !strings.Contains(err.Error(), "containers were never all running") || !strings.Contains(err.Error(), "ImagePullBackOff") {
		t.Errorf("never running: %v", err)
	}
	if err := NeverReady(ctx, env.Kube, ns2, "app=nothing", window, poll); err == nil || !strings.Contains(err.Error(), "an absent pod proves nothing") {
		t.Errorf("no pods: %v", err)
	}
}

// TestTier1ReadinessProbeFailed finds kubelet's Unhealthy event (core/v1, as kubelet
// records it, and events.k8s.io/v1), ignores other pods' events, and says what events
// there were when none matches.
func TestTier1ReadinessProbeFailed(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	ns := env.Namespace(t, "events", nil)
	createProbePod(t, ctx, env.Kube, ns, "probe-norewrite-1", "probe-norewrite")
	createProbePod(t, ctx, env.Kube, ns, "probe-server-1", "probe-server")
	pod := func(name string) corev1.ObjectReference {
		p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, UID: p.UID, APIVersion: "v1", FieldPath: "spec.containers{app}"}
	}
	now := metav1.Now()
	coreEvent := func(name string, ref corev1.ObjectReference, typ, reason, msg string, count int32) {
		t.Helper()
		_, err := env.Kube.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name},
			InvolvedObject: ref, Type: typ, Reason: reason, Message: msg, Count: count,
			Source: corev1.EventSource{Component: "kubelet", Host: "kind-control-plane"}, FirstTimestamp: now, LastTimestamp: now}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	coreEvent("probe-norewrite-1.scheduled", pod("probe-norewrite-1"), corev1.EventTypeNormal, "Scheduled", "Successfully assigned "+ns+"/probe-norewrite-1 to kind-control-plane", 1)
	coreEvent("probe-norewrite-1.started", pod("probe-norewrite-1"), corev1.EventTypeNormal, "Started", "Started container app", 1)
	// Another pod's failure is not this pod's.
	coreEvent("probe-server-1.unhealthy", pod("probe-server-1"), corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", 1)

	_, err := ReadinessProbeFailed(ctx, env.Kube, ns, "app=probe-norewrite")
	if err == nil {
		t.Fatal("no readiness event yet, but passed")
	}
	for _, w := range []string{"PROBE-002", `no event about pods probe-norewrite-1 in ` + ns + ` says "Readiness probe failed"`, "Scheduled: Successfully assigned", "Started container app"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "statuscode: 503") {
		t.Errorf("another pod's event is in the evidence:\n%v", err)
	}

	// kubelet's event under STRICT without rewrite: the plaintext probe is reset by the proxy.
	msg := `Readiness probe failed: Get "http://10.244.0.12:8080/status/200": read tcp 10.244.0.1:45678->10.244.0.12:8080: read: connection reset by peer`
	coreEvent("probe-norewrite-1.unhealthy", pod("probe-norewrite-1"), corev1.EventTypeWarning, "Unhealthy", msg, 12)
	got, err := ReadinessProbeFailed(ctx, env.Kube, ns, "app=probe-norewrite")
	if err != nil || len(got) != 1 || !strings.Contains(got[0], msg) || !strings.Contains(got[0], "(×12)") {
		t.Fatalf("got %q, %v; want kubelet's event with its count", got, err)
	}

	// The same through events.k8s.io/v1 (what newer recorders write) reads as a core event.
	ns2 := env.Namespace(t, "events", nil)
	createProbePod(t, ctx, env.Kube, ns2, "probe-norewrite-1", "probe-norewrite")
	p, err := env.Kube.CoreV1().Pods(ns2).Get(ctx, "probe-norewrite-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Kube.EventsV1().Events(ns2).Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "probe-norewrite-1.unhealthy"},
		EventTime: metav1.NowMicro(), ReportingController: "kubelet", ReportingInstance: "kubelet-kind-control-plane",
		Action: "Probe", Reason: "Unhealthy", Type: corev1.EventTypeWarning, Note: "Readiness probe failed: HTTP probe failed with statuscode: 503",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: ns2, Name: p.Name, UID: p.UID, APIVersion: "v1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadinessProbeFailed(ctx, env.Kube, ns2, "app=probe-norewrite"); err != nil || len(got) != 1 {
		t.Errorf("events.k8s.io/v1 event: %q, %v", got, err)
	}
}

// TestTier1RewriteChecksOnStoredPods stores Istio's injected golden pods in the API server and
// checks what it gives back: defaulting and round-tripping must not change the verdicts.
func TestTier1RewriteChecksOnStoredPods(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, time.Minute)
	ns := env.Namespace(t, "rewrite", nil)
	b := istiosrc.Release131
	store := func(file, name string) *corev1.Pod {
		p := goldenPod(t, b, file)
		p.Name, p.Namespace = name, ns
		// The golden is a Deployment's pod template, without a service account; on a cluster
		// the ServiceAccount admission plugin names "default", and the API server then accepts
		// the injected projected token volume. envtest's API server runs without that plugin.
		p.Spec.ServiceAccountName = "default"
		got, err := env.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("storing %s: %v", file, err)
		}
		return got
	}
	rewritten, untouched := store(goldenRewritten+".injected", "rewritten"), store(goldenNoRewrite+".injected", "untouched")
	if err := CheckProbeRewritten(rewritten, goldenContainer); err != nil {
		t.Errorf("stored rewritten pod: %v", err)
	}
	if err := CheckNotRewritten(untouched, goldenContainer); err != nil {
		t.Errorf("stored rewrite-off pod: %v", err)
	}
	if err := CheckProbeRewritten(untouched, goldenContainer); err == nil {
		t.Error("stored rewrite-off pod passed CheckProbeRewritten")
	}
	if err := CheckNotRewritten(rewritten, goldenContainer); err == nil {
		t.Error("stored rewritten pod passed CheckNotRewritten")
	}
}
