package mesh

// Tier 1 of DATAPLANE_MODE=ambient's install: Istio's real charts (release-1.31's source) with
// profile=ambient, installed through Install and removed through Uninstall on a real API
// server. No kubelet and no DaemonSet controller run here, so the test writes the DaemonSets'
// status as their controller would (markDaemonSet), as markRolledOut does for Deployments.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/ownership"
	"meshconform/internal/istiosrc"
)

// markDaemonSet writes, through the status subresource, the status the DaemonSet controller
// writes when n nodes want a pod and each runs a ready, updated one of the current generation
// (n = 0: no node scheduled one, which Helm's kstatus wait takes as current).
func markDaemonSet(ctx context.Context, k kubernetes.Interface, ns, name string, n int32) error {
	d, err := k.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	d.Status = appsv1.DaemonSetStatus{
		ObservedGeneration:     d.Generation,
		DesiredNumberScheduled: n, CurrentNumberScheduled: n, UpdatedNumberScheduled: n,
		NumberReady: n, NumberAvailable: n,
	}
	_, err = k.AppsV1().DaemonSets(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// TestAmbientInstallAndUninstall: with Ambient, Install installs base → istiod → istio-cni →
// ztunnel in istiod's namespace, ztunnel named ztunnel; it waits for each node agent's
// DaemonSet beyond Helm's own wait (a DaemonSet no node runs is "current" to Helm, not ready to
// meshconform), and installs ztunnel only once istio-cni is ready. Uninstall then removes
// ztunnel, istio-cni, istiod and base in that order, and the DaemonSets are gone.
func TestAmbientInstallAndUninstall(t *testing.T) {
	s := newTier1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	k := s.env.Kube
	// Each step gets 2 minutes, not tier 1's usual 60s: the API server deletes the Gateway API's
	// ten CRDs one after another, and on a loaded 2-core machine two of them were still
	// Terminating after 60s (seen twice under a concurrent go test ./... and live run; 73s for
	// the whole test alone).
	o := s.srcOptions(istiosrc.Release131, func(o *Options) { o.Ambient = true; o.NoGateway = true; o.Timeout = 2 * time.Minute })
	in := s.installer(o)
	s.adoptIstioCRDs(ctx)
	s.standIn(o) // istiod rolled out, its webhooks' CA bundles written
	gw := gatewayapi.Clients{Kube: k, Ext: s.ext}
	hadGatewayAPI, _, err := gatewayapi.Present(ctx, gw)
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- in.Install(ctx) }()
	returned := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	notReturned := func(when string) {
		t.Helper()
		if returned() {
			t.Fatalf("Install returned %s: %v", when, <-done)
		}
	}
	waitingFor := func(what, saw string) func(context.Context) string {
		return func(context.Context) string {
			if returned() {
				return ""
			}
			if _, ok := s.log.find(func(r record) bool {
				w, _ := r.attrs["waiting"].([]string)
				return r.msg == "waiting" && r.attrs["for"] == what && len(w) == 1 && strings.Contains(w[0], saw)
			}); !ok {
				return "no progress record for " + what + " saying " + saw
			}
			return ""
		}
	}

	// istio-cni's DaemonSet appears; no node wants a pod yet: Helm is satisfied, the waiter
	// is not, and ztunnel is not installed.
	s.eventually(ctx, "istio-cni-node DaemonSet created", func(ctx context.Context) string {
		if returned() {
			return ""
		}
		if err := markDaemonSet(ctx, k, s.ns, CNIDaemonSet, 0); err != nil {
			return err.Error()
		}
		return ""
	})
	s.eventually(ctx, "Install waiting for istio-cni-node", waitingFor("cni", "DaemonSet "+s.ns+"/istio-cni-node: no node scheduled a pod"))
	notReturned("with istio-cni-node on no node")
	if _, err := k.AppsV1().DaemonSets(s.ns).Get(ctx, ZtunnelDaemonSet, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ztunnel's DaemonSet exists before istio-cni is ready (%v): the order is istiod → cni → ztunnel", err)
	}
	if err := markDaemonSet(ctx, k, s.ns, CNIDaemonSet, 1); err != nil {
		t.Fatal(err)
	}

	// ztunnel: its DaemonSet, named ztunnel in istiod's namespace, on no node at first.
	s.eventually(ctx, "ztunnel DaemonSet created", func(ctx context.Context) string {
		if returned() {
			return ""
		}
		if err := markDaemonSet(ctx, k, s.ns, ZtunnelDaemonSet, 0); err != nil {
			return err.Error()
		}
		return ""
	})
	s.eventually(ctx, "Install waiting for ztunnel", waitingFor("ztunnel", "DaemonSet "+s.ns+"/ztunnel: no node scheduled a pod"))
	notReturned("with ztunnel on no node")
	if err := markDaemonSet(ctx, k, s.ns, ZtunnelDaemonSet, 2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Install: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Install did not return once everything was ready")
	}
	s.wantReleases(ctx, s.ns, "istio-base.v1", "istiod.v1", "istio-cni.v1", "ztunnel.v1")
	if got := s.order("helm install"); !slices.Equal(got, []string{"istio-base", "istiod", "istio-cni", "ztunnel"}) {
		t.Errorf("installed %v, want istio-base, istiod, istio-cni, ztunnel", got)
	}
	for _, c := range []Chart{ChartCNI, ChartZtunnel} {
		if _, ok := s.log.find(func(r record) bool { return r.msg == "ready" && r.attrs["for"] == string(c) }); !ok {
			t.Errorf("no readiness record for %s", c)
		}
	}
	// The Gateway API: created (labelled as the run's) and served before istiod was installed,
	// or, when the environment had it, left as it was.
	crd, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, gatewayapi.ProbeCRD, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after an ambient Install: %v", err)
	}
	created := s.log.index("Gateway API CRDs created")
	if hadGatewayAPI {
		if created >= 0 || s.log.index("Gateway API already installed; left as it is") < 0 {
			t.Errorf("the environment had the Gateway API: Install should leave it (records %d)", created)
		}
	} else {
		served := s.log.indexFor("ready", "gateway-api")
		istiod := s.log.indexRelease("helm install", "istiod")
		if created < 0 || served < created || istiod < served {
			t.Errorf("Gateway API CRDs created at record %d, served at %d, istiod installed at %d: want created, served, then istiod", created, served, istiod)
		}
		if crd.Annotations[gatewayapi.BundleVersionAnnotation] != gatewayapi.Version || !ownership.Owned(crd.Labels, s.env.RunID) {
			t.Errorf("CRD %s: bundle %q, labels %v; want %s, the run's", crd.Name, crd.Annotations[gatewayapi.BundleVersionAnnotation], crd.Labels, gatewayapi.Version)
		}
	}

	if err := in.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	if got := s.order("helm release uninstalled"); !slices.Equal(got, []string{"ztunnel", "istio-cni", "istiod", "istio-base"}) {
		t.Errorf("uninstalled %v, want ztunnel, istio-cni, istiod, istio-base (reverse of the install)", got)
	}
	for _, name := range []string{CNIDaemonSet, ZtunnelDaemonSet} {
		if _, err := k.AppsV1().DaemonSets(s.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("DaemonSet %s/%s after Uninstall: %v", s.ns, name, err)
		}
	}
	// The Gateway API Install created is removed with the last control plane; one the cluster
	// had stays.
	if present, _, err := gatewayapi.Present(ctx, gw); err != nil || present != hadGatewayAPI {
		t.Errorf("Gateway API after Uninstall: present %v (%v); it was present before Install: %v", present, err, hadGatewayAPI)
	}
}

// index is the position of the first record with message msg, -1 when none.
func (r *recorder) index(msg string) int {
	return r.indexWhere(func(rec record) bool { return rec.msg == msg })
}

// indexFor is the first record with message msg whose "for" attribute is what.
func (r *recorder) indexFor(msg, what string) int {
	return r.indexWhere(func(rec record) bool { return rec.msg == msg && rec.attrs["for"] == what })
}

// indexRelease is the first record with message msg whose "release" attribute is name.
func (r *recorder) indexRelease(msg, name string) int {
	return r.indexWhere(func(rec record) bool { return rec.msg == msg && rec.attrs["release"] == name })
}

func (r *recorder) indexWhere(f func(record) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, rec := range r.records {
		if f(rec) {
			return n
		}
	}
	return -1
}

// order lists the "release" attribute of every record with message msg, in order.
func (s *tier1) order(msg string) []string {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	var out []string
	for _, r := range s.log.records {
		if r.msg == msg {
			out = append(out, r.attrs["release"].(string))
		}
	}
	return out
}
