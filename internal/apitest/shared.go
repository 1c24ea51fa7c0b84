package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"meshconform/framework/ownership"
)

// A test package's own etcd, kube-apiserver and kube-controller-manager cost about 8 CPU
// seconds to start and stop, and make test runs 15 such packages. An orchestrator
// (scripts/gotest) can instead start one environment per worker with StartShared, run that
// worker's tier-1 packages on it one after another, and Reset it between them: each package
// still starts on an API server that holds exactly what a new one holds.
//
// SharedEnv names the file through which the orchestrator hands the running environment to a
// test binary; Env attaches to it instead of starting one.
const SharedEnv = "MESHCONFORM_APITEST_SHARED"

// handoff is the content of the SharedEnv file.
type handoff struct {
	Kubeconfig           string            `json:"kubeconfig"`
	ControllerManagerLog string            `json:"controllerManagerLog"`
	Versions             map[string]string `json:"versions"`
	Timings              Timings           `json:"timings"`
}

// Shared is an environment started for several test packages in turn.
type Shared struct {
	Env *Environment

	file     string
	dyn      dynamic.Interface // the Env's, without the API server's deprecation warnings on stderr
	ext      apiextensions.Interface
	crds     []string
	baseline baseline
	reaper   *reaper
}

// baseline is what a new environment holds: the namespaces (with their labels and
// annotations) and the UIDs of every object in those namespaces and at cluster scope.
type baseline struct {
	namespaces map[string]corev1.Namespace
	uids       map[types.UID]bool
	crds       map[string]string // name: resourceVersion
}

// startMu serializes StartShared: a failed start kills the child process groups that
// appeared during it, which must not be another worker's API server.
var startMu sync.Mutex

// StartShared starts an environment (as Start does, with a reaper) and records its baseline.
// The caller must first have called ReaperMain, which the reaper (a re-run of the caller's
// own binary) needs.
func StartShared(ctx context.Context, assetsDir string) (*Shared, error) {
	// envtest logs through controller-runtime, which prints a stack trace of its own when no
	// logger was ever set; what Reset needs to say, it returns.
	ctrllog.SetLogger(logr.Discard())
	startMu.Lock()
	defer startMu.Unlock()
	crd, err := IstioCRDFile(ctx)
	if err != nil {
		return nil, err
	}
	r, err := startReaper()
	if err != nil {
		return nil, err
	}
	env, err := Start(ctx, Options{AssetsDir: assetsDir, CRDFiles: []string{crd}, reaper: r})
	if err != nil {
		r.release()
		return nil, err
	}
	s := &Shared{Env: env, crds: []string{crd}, reaper: r}
	fail := func(err error) (*Shared, error) {
		_ = s.Stop()
		return nil, err
	}
	quiet := rest.CopyConfig(env.Config)
	quiet.WarningHandler = rest.NoWarnings{}
	if s.ext, err = apiextensions.NewForConfig(quiet); err != nil {
		return fail(err)
	}
	if s.dyn, err = dynamic.NewForConfig(quiet); err != nil {
		return fail(err)
	}
	// The namespace Start made to see the controller manager act is going; wait for it, so the
	// baseline is what every package then gets back.
	if err := s.waitNamespacesGone(ctx, nil); err != nil {
		return fail(err)
	}
	if s.baseline, err = s.snapshot(ctx); err != nil {
		return fail(err)
	}
	h := handoff{
		Kubeconfig: env.Kubeconfig, ControllerManagerLog: env.kcm.logPath,
		Versions: env.Versions, Timings: env.Timings,
	}
	data, err := json.Marshal(h)
	if err != nil {
		return fail(err)
	}
	s.file = filepath.Join(env.workDir, "shared.json")
	if err := os.WriteFile(s.file, data, 0o600); err != nil {
		return fail(fmt.Errorf("apitest: %w", err))
	}
	return s, nil
}

func (s *Shared) quiet() *rest.Config {
	c := rest.CopyConfig(s.Env.Config)
	c.WarningHandler = rest.NoWarnings{}
	return c
}

// File is the path to give test binaries in SharedEnv.
func (s *Shared) File() string { return s.file }

// Stop stops the environment and its reaper.
func (s *Shared) Stop() error {
	err := s.Env.Stop()
	s.reaper.release()
	return err
}

// ReaperMain makes a program that calls StartShared able to serve as its own reaper: call
// it first thing in main. In a reaper it does not return.
func ReaperMain() {
	if os.Getenv(reaperEnv) != "" {
		os.Exit(runReaper(os.Stdin))
	}
}

// attach builds the environment a test binary uses from the SharedEnv file: the
// orchestrator's API server, this package's own run id. Stop leaves the servers running.
func attach(file string) (*Environment, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("apitest: %s=%s: %w (unset it to start an environment of this package's own)", SharedEnv, file, err)
	}
	var h handoff
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("apitest: %s=%s: %w", SharedEnv, file, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", h.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("apitest: %s=%s: the kubeconfig: %w", SharedEnv, file, err)
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = 1000, 2000, 30*time.Second
	e := &Environment{
		Config: cfg, Kubeconfig: h.Kubeconfig, RunID: ownership.NewRunID(),
		Versions: h.Versions, Timings: h.Timings, kcmLog: h.ControllerManagerLog, attached: true,
	}
	if err := e.newClients(); err != nil {
		return nil, err
	}
	return e, nil
}

// skipped are resources Reset leaves alone: namespaces are handled on their own, events
// are only history, and the API server itself keeps the APIServices of the groups it serves.
var skipped = map[schema.GroupResource]bool{
	{Resource: "namespaces"}:                                   true,
	{Resource: "events"}:                                       true,
	{Group: "events.k8s.io", Resource: "events"}:               true,
	{Group: "apiregistration.k8s.io", Resource: "apiservices"}: true,
}

type resource struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// resources lists what can be listed and deleted, in each group's preferred version.
func (s *Shared) resources() ([]resource, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(s.quiet())
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		return nil, fmt.Errorf("apitest: discovery: %w", err)
	}
	var out []resource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || skipped[gv.WithResource(r.Name).GroupResource()] ||
				!slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			out = append(out, resource{gvr: gv.WithResource(r.Name), namespaced: r.Namespaced})
		}
	}
	return out, nil
}

func (s *Shared) snapshot(ctx context.Context) (baseline, error) {
	b := baseline{namespaces: map[string]corev1.Namespace{}, uids: map[types.UID]bool{}, crds: map[string]string{}}
	nss, err := s.Env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return b, fmt.Errorf("apitest: listing namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		b.namespaces[ns.Name] = ns
	}
	rs, err := s.resources()
	if err != nil {
		return b, err
	}
	for _, r := range rs {
		list, err := s.dyn.Resource(r.gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return b, fmt.Errorf("apitest: listing %s: %w", r.gvr, err)
		}
		for _, obj := range list.Items {
			b.uids[obj.GetUID()] = true
			if r.gvr.GroupResource() == crdResource {
				b.crds[obj.GetName()] = obj.GetResourceVersion()
			}
		}
	}
	return b, nil
}

var crdResource = schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}

// Reset brings the environment back to its baseline: every namespace and object made since
// is deleted and waited for, the first namespaces' labels and annotations are put back, and
// Istio's CRDs are reinstalled when one was changed or removed. An error means the
// environment cannot be trusted to be as new; the caller should Stop it.
//
// Reset empties the new namespaces itself and then finalizes them, as the namespace
// controller would: that controller first waits 5 s after a namespace's deletion, and 16 s
// more while a pod with the default 30 s grace period is there (k8s.io/kubernetes v1.37.2
// pkg/controller/namespace/namespace_controller.go:135,159), and no kubelet ends pods here.
func (s *Shared) Reset(ctx context.Context) error {
	nss, err := s.Env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("apitest: reset: listing namespaces: %w", err)
	}
	doomed := map[string]bool{}
	for _, ns := range nss.Items {
		if kept(s.baseline.namespaces, ns) {
			continue
		}
		doomed[ns.Name] = true
		if ns.DeletionTimestamp == nil {
			err := s.Env.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("apitest: reset: deleting namespace %s: %w", ns.Name, err)
			}
		}
	}
	rs, err := s.resources()
	if err != nil {
		return err
	}
	type object struct {
		r        resource
		ns, name string
	}
	var gone []object
	background := metav1.DeletePropagationBackground
	var now int64 // no kubelet here to end a pod gracefully
	for _, r := range rs {
		list, err := s.dyn.Resource(r.gvr).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			continue // a CRD going away under the listing
		}
		if err != nil {
			return fmt.Errorf("apitest: reset: listing %s: %w", r.gvr, err)
		}
		for _, obj := range list.Items {
			if s.baseline.uids[obj.GetUID()] {
				continue
			}
			ns := obj.GetNamespace()
			gone = append(gone, object{r, ns, obj.GetName()})
			err := s.dyn.Resource(r.gvr).Namespace(ns).Delete(ctx, obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &background, GracePeriodSeconds: &now})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("apitest: reset: deleting %s %s/%s: %w", r.gvr.Resource, ns, obj.GetName(), err)
			}
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, o := range gone {
		var last metav1.Object
		for {
			obj, err := s.dyn.Resource(o.r.gvr).Namespace(o.ns).Get(ctx, o.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && s.baseline.uids[obj.GetUID()]) {
				break
			}
			if err == nil {
				last = obj
			}
			if ctx.Err() != nil {
				detail := fmt.Sprint(err)
				if last != nil {
					detail = "finalizers: " + strings.Join(last.GetFinalizers(), ", ")
				}
				return fmt.Errorf("apitest: reset: %s %s/%s is still there (%s)", o.r.gvr.Resource, o.ns, o.name, detail)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	// Empty now: finalize them, as the namespace controller does once it has found them empty.
	for name := range doomed {
		ns, err := s.Env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("apitest: reset: namespace %s: %w", name, err)
		}
		ns.Spec.Finalizers = nil
		if _, err := s.Env.Kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("apitest: reset: finalizing namespace %s: %w", name, err)
		}
	}
	if err := s.waitNamespacesGone(ctx, s.baseline.namespaces); err != nil {
		return err
	}
	for name, want := range s.baseline.namespaces {
		ns, err := s.Env.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("apitest: reset: namespace %s: %w", name, err)
		}
		if maps.Equal(ns.Labels, want.Labels) && maps.Equal(ns.Annotations, want.Annotations) {
			continue
		}
		ns.Labels, ns.Annotations = want.Labels, want.Annotations
		if _, err := s.Env.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("apitest: reset: putting back namespace %s's labels: %w", name, err)
		}
	}
	return s.restoreCRDs(ctx)
}

// restoreCRDs reinstalls Istio's CRDs when one is missing or is not as installed.
func (s *Shared) restoreCRDs(ctx context.Context) error {
	same := true
	for name, rv := range s.baseline.crds {
		crd, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil || crd.ResourceVersion != rv {
			same = false
			break
		}
	}
	if same && len(s.baseline.crds) > 0 {
		return nil
	}
	crds, err := envtest.InstallCRDs(s.quiet(), envtest.CRDInstallOptions{Paths: s.crds, ErrorIfPathMissing: true, MaxTime: time.Minute})
	if err != nil {
		return fmt.Errorf("apitest: reset: reinstalling CRDs: %w", err)
	}
	s.baseline.crds = map[string]string{}
	for _, c := range crds {
		got, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, c.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("apitest: reset: reading CRD %s back: %w", c.Name, err)
		}
		s.baseline.uids[got.UID] = true // a CRD put back has a new UID: it is part of the baseline now
		s.baseline.crds[c.Name] = got.ResourceVersion
	}
	return nil
}

// waitNamespacesGone waits until only the namespaces in keep (by name and UID) are left.
func (s *Shared) waitNamespacesGone(ctx context.Context, keep map[string]corev1.Namespace) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		nss, err := s.Env.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		var left []string
		if err == nil {
			for _, ns := range nss.Items {
				if !kept(keep, ns) {
					left = append(left, ns.Name+" ("+describeTerminating(&ns)+")")
				}
			}
			if len(left) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("apitest: reset: listing namespaces: %w", err)
			}
			sort.Strings(left)
			return fmt.Errorf("apitest: reset: namespaces still there: %s\n%s", strings.Join(left, "; "), s.Env.ControllerManagerLogTail())
		case <-tick.C:
		}
	}
}

// kept says whether ns stays: it is in keep (same name and UID), or, with no keep, it is one
// of the namespaces the API server makes itself.
func kept(keep map[string]corev1.Namespace, ns corev1.Namespace) bool {
	if keep == nil {
		return ns.Name == metav1.NamespaceDefault || strings.HasPrefix(ns.Name, "kube-")
	}
	k, ok := keep[ns.Name]
	return ok && k.UID == ns.UID
}
