package cluster

import (
	"context"
	"errors"
	"meshconform/internal/kindtest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform"
)

func TestInterruptibleReturnsRunResult(t *testing.T) {
	want := errors.New("kind failed")
	var aborts atomic.Int32
	err := Interruptible(context.Background(), func() error { return want }, func() error { aborts.Add(1); return nil }, time.Second)
	if !errors.Is(err, want) || aborts.Load() != 0 {
		t.Fatalf("err=%v aborts=%d", err, aborts.Load())
	}
}

// On interrupt, what run made is removed under it, run is waited for, and removed again (it
// may have made more after the first removal).
func TestInterruptibleCleansUpAfterInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var aborts atomic.Int32
	var finished atomic.Bool
	run := func() error {
		<-release
		finished.Store(true)
		return errors.New("node containers vanished")
	}
	abort := func() error {
		if aborts.Add(1) == 1 {
			close(release) // deleting the nodes makes kind's create fail
		} else if !finished.Load() {
			t.Error("second cleanup ran before run returned")
		}
		return nil
	}
	cancel()
	err := Interruptible(ctx, run, abort, time.Minute)
	if aborts.Load() != 2 || err == nil || !strings.Contains(err.Error(), "interrupted (context canceled); removed what was created") {
		t.Fatalf("aborts=%d err=%v", aborts.Load(), err)
	}
}

func TestInterruptibleBoundsTheWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	err := Interruptible(ctx, func() error { <-block; return nil }, func() error { return errors.New("docker gone") }, 50*time.Millisecond)
	if time.Since(start) > 5*time.Second {
		t.Fatal("waited past the grace period")
	}
	for _, want := range []string{"cleanup incomplete", "first cleanup: docker gone", "still running 50ms after the interrupt"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestExistingDecisionAndDeleteCommand(t *testing.T) {
	if err := ExistingDecision("mc", true, true); err != nil {
		t.Errorf("reuse of an existing cluster refused: %v", err)
	}
	if err := ExistingDecision("mc", false, false); err != nil {
		t.Errorf("a free name refused: %v", err)
	}
	t.Setenv("PATH", t.TempDir()) // no kind binary
	err := ExistingDecision("mc", true, false)
	want := `kind cluster "mc" already exists: set REUSE_CLUSTER=1 to use it, or remove it with: go run sigs.k8s.io/kind@v0.33.0 delete cluster --name mc`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kind"), []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("PATH", dir)
	if got := DeleteCommand("mc"); got != "kind delete cluster --name mc" {
		t.Errorf("with kind on PATH: %q", got)
	}
}

func TestNodeImageFor(t *testing.T) {
	v := meshconform.SupportedVersions().DefaultNodeImage()
	for _, in := range []string{v.Version, "v" + v.Version} {
		if img, err := NodeImageFor(in); err != nil || img != v.Image {
			t.Errorf("NodeImageFor(%q) = %q, %v", in, img, err)
		}
	}
	_, err := NodeImageFor("1.20.0")
	if err == nil || !strings.Contains(err.Error(), v.Version) || !strings.Contains(err.Error(), "K8S_NODE_IMAGE") {
		t.Fatalf("unknown version: %v", err)
	}
	// Through the e2e-framework interface the error surfaces at Create, before any work.
	k := NewKind("mc")
	k.WithVersion("1.20.0")
	if _, err := k.Create(context.Background()); err == nil || !strings.Contains(err.Error(), `"1.20.0"`) {
		t.Fatalf("Create after WithVersion(1.20.0): %v", err)
	}
}

func TestCreateRejectsBadInputsBeforeDocker(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no docker: these must fail on their own merits
	if _, err := NewKind("Bad_Name").Create(context.Background()); err == nil || !strings.Contains(err.Error(), "not a kind cluster name") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := NewKind("mc").Create(context.Background(), "--wait", "5m"); err == nil || !strings.Contains(err.Error(), `"--wait" not supported`) {
		t.Errorf("unknown arg: %v", err)
	}
	if _, err := NewKind("mc").CreateWithConfig(context.Background(), "/nonexistent.yaml"); err == nil || !strings.Contains(err.Error(), "/nonexistent.yaml") {
		t.Errorf("missing config: %v", err)
	}
}

// With the real docker CLI and no engine (DOCKER_HOST names a missing socket), Create fails within seconds and says
// why; nothing is created.
func TestCreateWithoutDockerEngineFailsFast(t *testing.T) {
	kindtest.NoEngine(t)
	k := NewKind("meshconform-test", WithKubeconfigPath(filepath.Join(t.TempDir(), "kubeconfig")))
	start := time.Now()
	_, err := k.Create(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "list kind clusters") {
		t.Fatalf("err = %v", err)
	}
	if took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
	if k.Created() {
		t.Error("reports a created cluster")
	}
	if _, err := os.Stat(k.GetKubeconfig()); err == nil {
		t.Error("wrote a kubeconfig for a cluster that does not exist")
	}
}

// A taken name is refused unless reuse is on, through kind's own listing (docker ps by label).
func TestCreateRefusesATakenName(t *testing.T) {
	docker := newFakeDocker(t, 0)
	os.WriteFile(filepath.Join(docker.dir, "kind-clusters"), []byte("other\nmc\n"), 0o644)
	t.Setenv("PATH", docker.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	_, err := NewKind("mc", WithKubeconfigPath(filepath.Join(t.TempDir(), "kc"))).Create(context.Background())
	if err == nil || !strings.Contains(err.Error(), `kind cluster "mc" already exists: set REUSE_CLUSTER=1`) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(docker.read("calls"), "label=io.x-k8s.kind.cluster") {
		t.Errorf("kind did not list clusters through docker: %s", docker.read("calls"))
	}
}

func TestControlPlaneReady(t *testing.T) {
	node := func(name string, ready corev1.ConditionStatus) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
	}
	pod := func(ready corev1.ConditionStatus) corev1.Pod {
		return corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
	}
	tests := []struct {
		nodes []corev1.Node
		dns   []corev1.Pod
		ok    bool
		why   string
	}{
		{nil, nil, false, "no nodes registered"},
		{[]corev1.Node{node("cp", corev1.ConditionTrue), node("w", corev1.ConditionFalse)}, []corev1.Pod{pod(corev1.ConditionTrue)}, false, "node w is not Ready"},
		{[]corev1.Node{node("cp", corev1.ConditionTrue)}, []corev1.Pod{pod(corev1.ConditionFalse)}, false, "no ready CoreDNS pod (k8s-app=kube-dns) among 1"},
		{[]corev1.Node{node("cp", corev1.ConditionTrue)}, []corev1.Pod{pod(corev1.ConditionFalse), pod(corev1.ConditionTrue)}, true, ""},
	}
	for i, tc := range tests {
		ok, why := ControlPlaneReady(tc.nodes, tc.dns)
		if ok != tc.ok || why != tc.why {
			t.Errorf("case %d: got %v %q, want %v %q", i, ok, why, tc.ok, tc.why)
		}
	}
}
