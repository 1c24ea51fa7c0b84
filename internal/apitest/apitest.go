// Package apitest is the tier-1 test harness: a real etcd, kube-apiserver (with Istio's CRDs
// installed) and kube-controller-manager, started once per test package.
//
//	func TestMain(m *testing.M) { apitest.Main(m) }
//
//	func TestX(t *testing.T) {
//		env := apitest.Env(t) // skips without KUBEBUILDER_ASSETS, unless MESHCONFORM_TIER1=required
//		ns := env.Namespace(t, "x", nil)
//		...
//	}
//
// The binaries come from scripts/envtest-assets.sh:
//
//	KUBEBUILDER_ASSETS=$(scripts/envtest-assets.sh) go test ./...
//
// What the API server enforces is the CRDs' OpenAPI schema and CEL rules; istiod's
// validating webhook is not running, so checks that only istiod makes are out of reach here.
package apitest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"meshconform/framework/ownership"
)

const (
	// AssetsEnv names the directory holding the binaries (envtest's variable).
	AssetsEnv = "KUBEBUILDER_ASSETS"
	// RequiredEnv=required turns "skipped for want of binaries" into a failure (CI).
	RequiredEnv = "MESHCONFORM_TIER1"
)

// Environment is a running tier-1 control plane and clients for it.
type Environment struct {
	Config     *rest.Config
	Kube       kubernetes.Interface
	Istio      istioclient.Interface
	Dynamic    dynamic.Interface
	Kubeconfig string // path of a kubeconfig file (admin) for tools that want one

	// RunID labels what this environment creates (see framework/ownership).
	RunID string
	// Versions holds the first line of each binary's --version.
	Versions map[string]string
	// Timings says how long Start took, by phase.
	Timings Timings

	gwMu        sync.Mutex // InstallGatewayAPI
	gwInstalled bool

	plane   *envtest.ControlPlane
	kcm     *controllerManager
	kcmHint string
	kcmLog  string // the controller manager's log, when another process runs it (attached)
	workDir string
	// attached: the servers are an orchestrator's (SharedEnv); Stop leaves them running.
	attached bool
	logs     []*os.File
	nsCount  atomic.Int64
}

var shared struct {
	mainCalled atomic.Bool
	once       sync.Once
	env        *Environment
	err        error
	reaper     *reaper
}

// Main runs the package's tests and then stops the shared environment, if one was started.
// Call it from TestMain. The environment starts at the first Env call, so a run that selects
// no tier-1 test pays nothing.
func Main(m *testing.M) {
	if os.Getenv(reaperEnv) != "" {
		os.Exit(runReaper(os.Stdin))
	}
	shared.mainCalled.Store(true)
	code := m.Run()
	if shared.env != nil {
		began := time.Now()
		err := shared.env.Stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "apitest: stopping the environment: %v\n", err)
			if code == 0 {
				code = 1
			}
		} else if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "apitest: environment stopped in %s\n", time.Since(began).Round(10*time.Millisecond))
		}
	}
	shared.reaper.release()
	os.Exit(code)
}

// Env returns the package's environment, starting it on first use. Without
// KUBEBUILDER_ASSETS the test is skipped, or fails when MESHCONFORM_TIER1=required; with
// it, any start failure fails the test.
func Env(t testing.TB) *Environment {
	t.Helper()
	dir := os.Getenv(AssetsEnv)
	if strings.TrimSpace(dir) == "" {
		msg := "tier-1 test needs a real kube-apiserver, etcd and kube-controller-manager, and " +
			AssetsEnv + " is unset: run `" + AssetsEnv + "=$(scripts/envtest-assets.sh) go test ./...`"
		if os.Getenv(RequiredEnv) == "required" {
			t.Fatal(msg + " (failing, not skipping, because " + RequiredEnv + "=required)")
		}
		t.Skip(msg)
	}
	if !shared.mainCalled.Load() {
		t.Fatal("apitest.Env needs apitest.Main to stop the environment after the tests: " +
			"add `func TestMain(m *testing.M) { apitest.Main(m) }` to this package")
	}
	shared.once.Do(func() {
		if file := os.Getenv(SharedEnv); file != "" {
			shared.env, shared.err = attach(file)
			if shared.err == nil {
				t.Logf("apitest: attached to the shared environment in %s (started in %s); %s", file, shared.env.Timings, shared.env.Versions["kube-apiserver"])
			}
			return
		}
		r, err := startReaper()
		if err != nil {
			// Not fatal: without it, only a crash of the test binary can leave processes behind.
			t.Logf("apitest: no reaper (%v); a crashed test binary may leave etcd/kube-apiserver running", err)
		}
		shared.reaper = r
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.env, shared.err = Start(ctx, Options{AssetsDir: dir, reaper: r})
		if shared.err == nil {
			t.Logf("apitest: environment up in %s; %s", shared.env.Timings, shared.env.Versions["kube-apiserver"])
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.env
}

// watchChildren tells the reaper about envtest's processes (etcd, kube-apiserver).
func (e *Environment) watchChildren(r *reaper) {
	if r == nil {
		return
	}
	for _, pid := range childGroups() {
		if pid != r.cmd.Process.Pid && (e.kcm == nil || pid != e.kcm.pid()) {
			r.watchGroup(pid)
		}
	}
}

// Namespace creates a namespace named from prefix and the run id, labelled with labels and
// the ownership labels, and deletes it when the test ends (without waiting for it to go).
func (e *Environment) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	name := ownership.NamespaceName(prefix, e.RunID, fmt.Sprint(e.nsCount.Add(1)))
	l := ownership.Labels(e.RunID)
	for k, v := range labels {
		l[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("apitest: creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := e.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("apitest: deleting namespace %s: %v", name, err)
		}
	})
	return name
}

// DeleteNamespace deletes a namespace and waits until it is gone, which takes the
// controller manager's namespace controller: it removes the content, then the finalizer.
// The error says what the namespace still held.
func (e *Environment) DeleteNamespace(ctx context.Context, name string) error {
	err := e.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last *corev1.Namespace
	for {
		ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			last = ns
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still exists: %s\n%s", name, describeTerminating(last),
				e.ControllerManagerLogTail())
		case <-tick.C:
		}
	}
}

func describeTerminating(ns *corev1.Namespace) string {
	if ns == nil {
		return "never read"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s, finalizers %v", ns.Status.Phase, ns.Spec.Finalizers)
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
		}
	}
	return b.String()
}

// ControllerManagerLogTail returns the last lines of kube-controller-manager's output, for
// failure messages about things its controllers should have done.
func (e *Environment) ControllerManagerLogTail() string {
	switch {
	case e.kcm != nil:
		return tailSection("kube-controller-manager", e.kcm.logPath)
	case e.kcmLog != "":
		return tailSection("kube-controller-manager", e.kcmLog)
	}
	return "--- kube-controller-manager: not running ---"
}
