package mesh

// Tier 1: the Helm plumbing against a real kube-apiserver + etcd + kube-controller-manager
// (internal/apitest), with Istio's real charts from its release branches' source
// (internal/istiosrc). There is no kubelet, no Deployment controller and no istiod: the tests
// stand in for them by writing Deployment status (status subresource) and the webhooks'
// caBundle and failurePolicy, as those would.
//
// The API server has Istio's CRDs from the start (apitest installs istio.io/api's, for every
// test of the package), applied without Helm, as on a cluster where someone ran `kubectl apply`
// on Istio's CRD file. Istio's base chart templates the same CRDs (base/templates/crds.yaml,
// base.enableCRDTemplates: true), and Helm refuses to install over objects no release owns
// ("invalid ownership metadata"). The tests hand them to the istio-base release the way Helm
// documents for adopting existing objects (adoptIstioCRDs), and restore any that an uninstall
// with RemoveCRDs deleted, so the package's other tests keep them.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/internal/apitest"
	"meshconform/internal/istiosrc"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// tier1 is one test's installer setup: unique namespaces, the shared API server, a log
// recorder, and cleanup that leaves nothing cluster-scoped behind for the next test.
type tier1 struct {
	t   *testing.T
	env *apitest.Environment
	ext apiextensions.Interface
	log *recorder
	ns  string // control-plane namespace
	gw  string // gateway namespace
	// revs are the revisions installers were made for: cleanup uninstalls those only (an
	// uninstall of a revision never installed still costs ~5s of checks and waits).
	revs map[string]bool
}

func newTier1(t *testing.T) *tier1 {
	env := apitest.Env(t)
	ext, err := apiextensions.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	s := &tier1{
		t: t, env: env, ext: ext, log: &recorder{},
		ns: ownership.NamespaceName("istio-system", env.RunID, t.Name()),
		gw: ownership.NamespaceName("istio-ingress", env.RunID, t.Name()),
	}
	t.Cleanup(s.cleanup)
	return s
}

func (s *tier1) options(version string, mod func(*Options)) Options {
	o := Options{
		Version: version, Namespace: s.ns, GatewayNamespace: s.gw,
		Kubeconfig: s.env.Kubeconfig, RunID: s.env.RunID, Timeout: 60 * time.Second,
		Logger: slog.New(s.log),
	}
	if mod != nil {
		mod(&o)
	}
	return o
}

func (s *tier1) installer(o Options) *Installer {
	s.t.Helper()
	in, err := New(o)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.revs == nil {
		s.revs = map[string]bool{}
	}
	s.revs[o.Revision] = true
	return in
}

// srcOptions are the options for installing branch b's real charts (see srcHub, srcValues).
func (s *tier1) srcOptions(b istiosrc.Branch, mod func(*Options)) Options {
	return s.options(b.Version, func(o *Options) {
		o.ChartDir = realCharts(s.t, b)
		o.Hub = srcHub
		o.Values = srcValues(b)
		if mod != nil {
			mod(o)
		}
	})
}

// cleanup removes whatever a test left: its releases (each revision it made an installer for) and
// its namespaces. Istio's CRDs stay (the package's other tests use them); any that are missing
// are put back.
func (s *tier1) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, rev := range []string{"canary", ""} {
		if !s.revs[rev] {
			continue
		}
		in, err := New(s.options(istiosrc.Release131.Version, func(o *Options) { o.Revision = rev; o.Timeout = 60 * time.Second }))
		if err == nil {
			err = in.Uninstall(ctx)
		}
		if err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	}
	for _, ns := range []string{s.ns, s.gw} {
		if err := s.env.DeleteNamespace(ctx, ns); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	}
	if err := s.restoreIstioCRDs(ctx); err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
}

// Helm's ownership metadata: an existing object carrying it is adopted by that release
// instead of refused (helm.sh/helm/v4 pkg/action: existingResourceConflict).
const (
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
	helmManagedBy        = "app.kubernetes.io/managed-by"
)

// istioCRDs lists the API server's CRDs of Istio's API groups (*.istio.io).
func (s *tier1) istioCRDs(ctx context.Context) []apiextensionsv1.CustomResourceDefinition {
	s.t.Helper()
	list, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().List(ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []apiextensionsv1.CustomResourceDefinition
	for _, crd := range list.Items {
		if strings.HasSuffix(crd.Spec.Group, ".istio.io") {
			out = append(out, crd)
		}
	}
	return out
}

// adoptIstioCRDs marks every Istio CRD as istio-base's in this test's namespace, as a user
// hands existing objects to a Helm release. It returns how many it marked.
func (s *tier1) adoptIstioCRDs(ctx context.Context) int {
	s.t.Helper()
	crds := s.istioCRDs(ctx)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"Helm"},"annotations":{%q:"istio-base",%q:%q}}}`, helmManagedBy, helmReleaseName, helmReleaseNamespace, s.ns)
	for _, crd := range crds {
		if _, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			s.t.Fatalf("adopt CRD %s: %v", crd.Name, err)
		}
	}
	return len(crds)
}

// restoreIstioCRDs creates those of apitest's Istio CRDs that are missing, and waits until
// they are established.
func (s *tier1) restoreIstioCRDs(ctx context.Context) error {
	file, err := apitest.IstioCRDFile(ctx)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var names []string
	for _, doc := range releaseutil.SplitManifests(string(data)) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal([]byte(doc), &crd); err != nil || crd.Kind != "CustomResourceDefinition" {
			continue
		}
		names = append(names, crd.Name)
		_, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("restore CRD %s: %w", crd.Name, err)
		}
	}
	return WaitFor(ctx, time.Until(deadline(ctx, time.Minute)), "Istio's CRDs established", slog.New(slog.DiscardHandler), func(ctx context.Context) string {
		for _, n := range names {
			crd, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
			if err != nil || crd.DeletionTimestamp != nil || !crdEstablished(crd) {
				return fmt.Sprintf("CRD %s: not established (%v)", n, err)
			}
		}
		return ""
	})
}

// eventually polls check (no sleeps) until it returns "", failing the test with its last
// words at ctx's deadline.
func (s *tier1) eventually(ctx context.Context, what string, check func(context.Context) string) {
	s.t.Helper()
	if err := WaitFor(ctx, time.Until(deadline(ctx, 30*time.Second)), what, slog.New(slog.DiscardHandler), check); err != nil {
		s.t.Fatal(err)
	}
}

func deadline(ctx context.Context, def time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(def)
}

// ---- stand-ins for the Deployment controller + kubelet, and for istiod ----

// markRolledOut writes, through the status subresource, the status the Deployment controller
// writes once every replica of the current generation is available.
func markRolledOut(ctx context.Context, k kubernetes.Interface, ns, name string) error {
	d, err := k.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if rolloutGap(d) == "" {
		return nil
	}
	r := int32(1)
	if d.Spec.Replicas != nil {
		r = *d.Spec.Replicas
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	_, err = k.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err
}

// istiodFieldManager is the manager istiod's own writes appear under.
const istiodFieldManager = "pilot-discovery"

// fillCABundle does what istiod's injector webhook patcher does when it starts: write its CA
// into every webhook of the injector's MutatingWebhookConfiguration, with a plain update
// (istio.io/istio pkg/webhooks/webhookpatch.go: patchMutatingWebhookConfig; failurePolicy is
// left as the chart set it, Fail).
func fillCABundle(ctx context.Context, k kubernetes.Interface, name string, ca []byte) error {
	w, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	changed := false
	for i := range w.Webhooks {
		if h := &w.Webhooks[i]; string(h.ClientConfig.CABundle) != string(ca) {
			h.ClientConfig.CABundle = ca
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err = k.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, w, metav1.UpdateOptions{FieldManager: istiodFieldManager})
	return err
}

// fillValidators does what istiod's validation webhook controller does once its webhook
// serves: write the CA into the revision's ValidatingWebhookConfigurations (the istiod chart's
// istio-validator-*, and base's istiod-default-validator for the default revision) and switch
// their failurePolicy from the chart's Ignore to Fail, with a plain update (istio.io/istio
// pkg/webhooks/validation/controller/controller.go: updateValidatingWebhookConfiguration).
func fillValidators(ctx context.Context, k kubernetes.Interface, rev string, ca []byte) error {
	if rev == "" {
		rev = "default"
	}
	list, err := k.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: "istio.io/rev=" + rev})
	if err != nil {
		return err
	}
	fail := admissionv1.Fail
	for _, w := range list.Items {
		changed := false
		for i := range w.Webhooks {
			h := &w.Webhooks[i]
			if string(h.ClientConfig.CABundle) != string(ca) || h.FailurePolicy == nil || *h.FailurePolicy != fail {
				h.ClientConfig.CABundle = ca
				h.FailurePolicy = &fail
				changed = true
			}
		}
		if changed {
			if _, err := k.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, &w, metav1.UpdateOptions{FieldManager: istiodFieldManager}); err != nil {
				return err
			}
		}
	}
	return nil
}

// standIn keeps the Deployments of o rolled out and the injector's caBundle filled, until the
// test ends: a cluster where everything starts.
func (s *tier1) standIn(o Options) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ca := testCA(s.t)
	k := s.env.Kube
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, d := range [][2]string{{o.Namespace, o.IstiodDeploymentName()}, {o.GatewayNamespace, o.GatewayDeploymentName()}} {
				if err := markRolledOut(ctx, k, d[0], d[1]); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
					s.t.Logf("stand-in: %s/%s: %v", d[0], d[1], err)
				}
			}
			if err := fillCABundle(ctx, k, o.InjectorWebhookName(), ca); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				s.t.Logf("stand-in: webhook %s: %v", o.InjectorWebhookName(), err)
			}
			if err := fillValidators(ctx, k, o.Revision, ca); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
				s.t.Logf("stand-in: validating webhooks of revision %q: %v", o.Revision, err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	s.t.Cleanup(func() { cancel(); <-done })
}

// testCA is a self-signed CA certificate in PEM, as istiod puts in caBundle.
func testCA(t testing.TB) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// ---- a slog handler the tests read progress from ----

type record struct {
	msg   string
	attrs map[string]any
}

type recorder struct {
	mu      sync.Mutex
	records []record
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *recorder) WithGroup(string) slog.Handler                { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	a := map[string]any{}
	rec.Attrs(func(at slog.Attr) bool { a[at.Key] = at.Value.Any(); return true })
	r.mu.Lock()
	r.records = append(r.records, record{rec.Message, a})
	r.mu.Unlock()
	return nil
}

// find returns the first record for which match holds.
func (r *recorder) find(match func(record) bool) (record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if match(rec) {
			return rec, true
		}
	}
	return record{}, false
}

// ---- assertions on the cluster ----

// releases lists the deployed Helm releases in ns as "name.vN" (from Helm's Secrets).
func (s *tier1) releases(ctx context.Context, ns string) []string {
	s.t.Helper()
	list, err := s.env.Kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, sec := range list.Items {
		out = append(out, sec.Labels["name"]+".v"+sec.Labels["version"])
	}
	slices.Sort(out)
	return out
}

func (s *tier1) wantReleases(ctx context.Context, ns string, want ...string) {
	s.t.Helper()
	slices.Sort(want)
	if got := s.releases(ctx, ns); !slices.Equal(got, want) {
		s.t.Errorf("deployed Helm releases in %s = %v, want %v", ns, got, want)
	}
}

// wantChartDefaults: the deployed release of chart c holds c's own values.yaml at version as its
// chart's values, exactly.
func (s *tier1) wantChartDefaults(ctx context.Context, in *Installer, c Chart, ns, version string) {
	s.t.Helper()
	cfg, err := in.helmConfig(ns)
	if err != nil {
		s.t.Fatal(err)
	}
	name := in.Options().ReleaseName(c)
	_, deployed, err := releaseState(cfg, name)
	if err != nil || deployed == nil {
		s.t.Fatalf("release %s: %v (deployed: %v)", name, err, deployed != nil)
	}
	// Read afresh from the branch's source: the Installer's chart source caches the charts it
	// loaded, and Helm's ReuseValues writes into the chart it is given.
	b, ok := istiosrc.ByVersion(version)
	if !ok {
		s.t.Fatalf("no pinned branch at %s", version)
	}
	dir, err := istiosrc.ChartDir(ctx, b)
	if err != nil {
		s.t.Fatal(err)
	}
	want, err := loader.LoadDir(filepath.Join(dir, string(c)))
	if err != nil {
		s.t.Fatal(err)
	}
	if deployed.Chart.Metadata.Version != version || !reflect.DeepEqual(deployed.Chart.Values, want.Values) {
		var extra []string
		for k := range deployed.Chart.Values {
			if _, ok := want.Values[k]; !ok {
				extra = append(extra, k)
			}
		}
		s.t.Errorf("release %s (chart %s %s): its chart's values are not %s's values.yaml at %s (top-level keys the chart does not have: %v)",
			name, deployed.Chart.Metadata.Name, deployed.Chart.Metadata.Version, c, version, extra)
	}
}

func (s *tier1) deployment(ctx context.Context, ns, name string) *appsv1.Deployment {
	s.t.Helper()
	d, err := s.env.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func (s *tier1) wantGone(ctx context.Context, what string, get func(context.Context) error) {
	s.t.Helper()
	if err := get(ctx); !apierrors.IsNotFound(err) {
		s.t.Errorf("%s: still there (get: %v)", what, err)
	}
}

func nodePorts(svc *corev1.Service) map[string]int32 {
	out := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		out[p.Name] = p.NodePort
	}
	return out
}

// ---- the tests ----

// TestLifecycle runs Istio's real charts through the installer: install the release-1.30
// branch from a loopback chart repository, upgrade in place to the release-1.31 branch,
// install a canary revision beside it, uninstall the canary, uninstall the default (CRDs
// kept), reinstall, and uninstall with the CRDs.
func TestLifecycle(t *testing.T) {
	began := time.Now()
	defer func() { t.Logf("lifecycle on the real charts took %s", time.Since(began).Round(time.Millisecond)) }()
	old, cur := istiosrc.Release130, istiosrc.Release131
	s := newTier1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	k := s.env.Kube
	r := serveBranches(t, old, cur)
	def := s.srcOptions(old, func(o *Options) { o.ChartDir = ""; o.ChartRepo = r.URL })
	s.standIn(def)
	in := s.installer(def)

	// Istio's CRDs exist, owned by no release: Helm refuses to install base over them.
	err := in.Install(ctx)
	if err == nil || !strings.Contains(err.Error(), "helm install of istio-base") || !strings.Contains(err.Error(), "invalid ownership metadata") {
		t.Fatalf("Install over CRDs that no release owns: %v; want Helm's refusal", err)
	}
	if n := s.adoptIstioCRDs(ctx); n == 0 {
		t.Fatal("the API server has no Istio CRDs: apitest should have installed them")
	}
	// Adopted, they are still apitest's: a plain server-side apply of the chart's version of
	// a CRD conflicts with that field manager. Install must get past that (ForceConflicts).
	base, err := in.Render(ctx, ChartBase)
	if err != nil {
		t.Fatal(err)
	}
	if conflicts := s.plainApplyCRDConflicts(ctx, base); len(conflicts) == 0 {
		t.Error("a plain apply of base's CRDs over apitest's conflicts with nothing: this test proves nothing about ForceConflicts on install")
	} else {
		t.Logf("%d of base's CRDs conflict with a plain apply, e.g. %s", len(conflicts), conflicts[0])
	}

	// Install.
	if err := in.Install(ctx); err != nil {
		t.Fatalf("Install: %v", err)
	}
	s.wantReleases(ctx, s.ns, "istio-base.v1", "istiod.v1")
	s.wantReleases(ctx, s.gw, "istio-ingressgateway.v1")
	for _, ns := range []string{s.ns, s.gw} {
		obj, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || !ownership.Owned(obj.Labels, s.env.RunID) {
			t.Errorf("namespace %s: %v, labels %v: want it created with the run's ownership labels", ns, err, obj.GetLabels())
		}
	}
	if _, err := k.CoreV1().ServiceAccounts(s.ns).Get(ctx, "istio-reader-service-account", metav1.GetOptions{}); err != nil {
		t.Errorf("base's ServiceAccount: %v", err)
	}
	crd, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, watchedCRD, metav1.GetOptions{})
	if err != nil || !crdEstablished(crd) || crd.Labels["helm.sh/chart"] != "base-"+old.Version {
		t.Errorf("base's CRD %s: %v (established: %v, labels %v)", watchedCRD, err, err == nil && crdEstablished(crd), crd.GetLabels())
	}
	cr, err := k.RbacV1().ClusterRoles().Get(ctx, "istiod-clusterrole-"+s.ns, metav1.GetOptions{})
	if err != nil || cr.Labels["app.kubernetes.io/version"] != old.Version {
		t.Errorf("istiod's ClusterRole: %v, labels %v", err, cr.GetLabels())
	}
	d := s.deployment(ctx, s.ns, "istiod")
	if v, img := d.Labels["app.kubernetes.io/version"], d.Spec.Template.Spec.Containers[0].Image; v != old.Version || img != srcHub+"/pilot:"+old.Version {
		t.Errorf("istiod: version label %q, image %q; want %s", v, img, old.Version)
	}
	if got := d.Spec.Template.Spec.Containers[0].Resources.Requests; got.Cpu().String() != "10m" || got.Memory().String() != "100Mi" {
		t.Errorf("istiod requests on the cluster = %v, want 10m/100Mi", got)
	}
	svc, err := k.CoreV1().Services(s.gw).Get(ctx, "istio-ingressgateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np := nodePorts(svc); svc.Spec.Type != corev1.ServiceTypeNodePort || np["http2"] != HTTPNodePort || np["https"] != HTTPSNodePort {
		t.Errorf("gateway Service: type %s, nodePorts %v; want NodePort with http2 %d, https %d", svc.Spec.Type, np, HTTPNodePort, HTTPSNodePort)
	}
	cps, err := Detect(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if got := inNamespace(cps, s.ns); len(got) != 1 || got[0].Version != old.Version || got[0].Revision != "" || got[0].TrustDomain != "cluster.local" || got[0].RootNamespace != s.ns || got[0].MeshConfigMap != "istio" {
		t.Errorf("Detect after Install = %v", got)
	}

	// The stand-in istiod has switched the validating webhooks to Fail, as istiod does once
	// its webhook serves; the chart installed them with Ignore. An upgrade must keep istiod's
	// value: the charts omit failurePolicy on upgrade (istio/istio#59367), and the upgrade's
	// server-side apply must not hand it back to the chart.
	validator := "istio-validator-" + s.ns
	s.eventually(ctx, "istiod's failurePolicy", func(ctx context.Context) string {
		w, err := k.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, validator, metav1.GetOptions{})
		if err != nil || w.Webhooks[0].FailurePolicy == nil || *w.Webhooks[0].FailurePolicy != admissionv1.Fail {
			return fmt.Sprintf("failurePolicy of %s not Fail yet (%v)", validator, err)
		}
		return ""
	})

	// With the real charts istiod's own writes no longer conflict on upgrade (above). Another
	// controller's still do: a policy engine that rewrote the injector's namespaceSelector made
	// Helm 4's upgrade of Istio fail with "Apply failed with 4 conflicts: conflicts with
	// \"admissionsenforcer\" ... namespaceSelector" (istio/istio#60497). The chart is the desired
	// state: Upgrade must force its fields back (ForceConflicts) rather than fail.
	injector := def.InjectorWebhookName()
	mwc, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, injector, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chartSelector := mwc.Webhooks[0].NamespaceSelector.DeepCopy()
	mwc.Webhooks[0].NamespaceSelector.MatchExpressions = append(mwc.Webhooks[0].NamespaceSelector.MatchExpressions,
		metav1.LabelSelectorRequirement{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}})
	if _, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, mwc, metav1.UpdateOptions{FieldManager: "admissionsenforcer"}); err != nil {
		t.Fatal(err)
	}

	// Upgrade in place (an Installer for the newer branch: its image tag is the branch's).
	up := s.installer(s.srcOptions(cur, func(o *Options) { o.ChartDir = ""; o.ChartRepo = r.URL }))
	if err := up.Upgrade(ctx, cur.Version); err != nil {
		t.Fatalf("Upgrade: %v", err)
	}
	if up.Options().Version != cur.Version {
		t.Errorf("Options().Version after Upgrade = %s", up.Options().Version)
	}
	s.wantReleases(ctx, s.ns, "istio-base.v2", "istiod.v2")
	s.wantReleases(ctx, s.gw, "istio-ingressgateway.v2")
	// Each upgraded release runs TO's chart with TO's own defaults: Helm's ReuseValues would
	// store FROM's defaults, coalesced with FROM's values (global.tag among them), as the
	// chart's values instead, and render TO's templates with them.
	for _, rc := range []struct {
		c  Chart
		ns string
	}{{ChartBase, s.ns}, {ChartIstiod, s.ns}, {ChartGateway, s.gw}} {
		s.wantChartDefaults(ctx, up, rc.c, rc.ns, cur.Version)
	}
	d = s.deployment(ctx, s.ns, "istiod")
	if v, img := d.Labels["app.kubernetes.io/version"], d.Spec.Template.Spec.Containers[0].Image; v != cur.Version || img != srcHub+"/pilot:"+cur.Version {
		t.Errorf("istiod after Upgrade: version label %q, image %q", v, img)
	}
	if v := s.deployment(ctx, s.gw, "istio-ingressgateway").Labels["app.kubernetes.io/version"]; v != cur.Version {
		t.Errorf("gateway version label after Upgrade = %q", v)
	}
	if crd, err := s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, watchedCRD, metav1.GetOptions{}); err != nil || crd.Labels["helm.sh/chart"] != "base-"+cur.Version {
		t.Errorf("base's CRD after Upgrade: %v, labels %v", err, crd.GetLabels())
	}
	if w, err := k.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, validator, metav1.GetOptions{}); err != nil || w.Webhooks[0].FailurePolicy == nil || *w.Webhooks[0].FailurePolicy != admissionv1.Fail {
		t.Errorf("%s after Upgrade: %v; want istiod's failurePolicy Fail kept", validator, err)
	}
	if mwc, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, injector, metav1.GetOptions{}); err != nil || !reflect.DeepEqual(mwc.Webhooks[0].NamespaceSelector, chartSelector) || len(mwc.Webhooks[0].ClientConfig.CABundle) == 0 {
		t.Errorf("%s after Upgrade: %v; want the chart's namespaceSelector back and istiod's caBundle kept", injector, err)
	}
	cps, _ = Detect(ctx, k)
	if got := inNamespace(cps, s.ns); len(got) != 1 || got[0].Version != cur.Version {
		t.Errorf("Detect after Upgrade = %v", got)
	}

	// A canary revision beside it.
	canaryOpts := s.srcOptions(cur, func(o *Options) { o.ChartDir = ""; o.ChartRepo = r.URL; o.Revision = "canary" })
	s.standIn(canaryOpts)
	canary := s.installer(canaryOpts)
	if err := canary.Install(ctx); err != nil {
		t.Fatalf("canary Install: %v", err)
	}
	s.wantReleases(ctx, s.ns, "istio-base.v2", "istiod.v2", "istiod-canary.v1")
	s.wantReleases(ctx, s.gw, "istio-ingressgateway.v2", "istio-ingressgateway-canary.v1")
	if _, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, canaryOpts.InjectorWebhookName(), metav1.GetOptions{}); err != nil {
		t.Errorf("canary injector webhook: %v", err)
	}
	csvc, err := k.CoreV1().Services(s.gw).Get(ctx, "istio-ingressgateway-canary", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np := nodePorts(csvc); np["http2"] == HTTPNodePort || np["https"] == HTTPSNodePort || np["http2"] == 0 {
		t.Errorf("canary gateway nodePorts %v: want ones the API server allocated, not the default gateway's", np)
	}
	cps, _ = Detect(ctx, k)
	got := inNamespace(cps, s.ns)
	if len(got) != 2 || got[0].Deployment != "istiod" || got[0].Revision != "" || got[1].Deployment != "istiod-canary" || got[1].Revision != "canary" || got[1].MeshConfigMap != "istio-canary" || got[1].Version != cur.Version {
		t.Errorf("Detect with a canary = %v", got)
	}

	// Uninstall the canary: the default control plane, base and the namespaces stay.
	if err := canary.Uninstall(ctx); err != nil {
		t.Fatalf("canary Uninstall: %v", err)
	}
	s.wantReleases(ctx, s.ns, "istio-base.v2", "istiod.v2")
	s.wantReleases(ctx, s.gw, "istio-ingressgateway.v2")
	s.wantGone(ctx, "Deployment istiod-canary", func(ctx context.Context) error {
		_, err := k.AppsV1().Deployments(s.ns).Get(ctx, "istiod-canary", metav1.GetOptions{})
		return err
	})
	s.wantGone(ctx, "canary injector webhook", func(ctx context.Context) error {
		_, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, canaryOpts.InjectorWebhookName(), metav1.GetOptions{})
		return err
	})
	s.wantGone(ctx, "canary gateway Service", func(ctx context.Context) error {
		_, err := k.CoreV1().Services(s.gw).Get(ctx, "istio-ingressgateway-canary", metav1.GetOptions{})
		return err
	})
	s.deployment(ctx, s.ns, "istiod")

	// Uninstall the default: everything goes but the CRDs; the root certificate ConfigMaps
	// istiod spread go too.
	other := s.env.Namespace(t, "workload", nil)
	rootCert := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-ca-root-cert", Labels: map[string]string{"istio.io/config": "true"}}, Data: map[string]string{"root-cert.pem": string(testCA(t))}}
	if _, err := k.CoreV1().ConfigMaps(other).Create(ctx, rootCert, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := up.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	s.checkAllGone(ctx)
	s.wantGone(ctx, "istio-ca-root-cert in "+other, func(ctx context.Context) error {
		_, err := k.CoreV1().ConfigMaps(other).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		return err
	})
	crd, err = s.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, watchedCRD, metav1.GetOptions{})
	if err != nil || crd.DeletionTimestamp != nil || crd.Annotations[helmReleaseName] != "istio-base" {
		t.Fatalf("CRD after Uninstall without RemoveCRDs: %v (deleting: %v, annotations %v); want it kept, still marked as istio-base's", err, crd.GetDeletionTimestamp(), crd.GetAnnotations())
	}

	// Reinstall over the kept CRDs (no adoption needed), then remove everything, CRDs included.
	again := s.installer(s.srcOptions(cur, func(o *Options) { o.ChartDir = ""; o.ChartRepo = r.URL }))
	if err := again.Install(ctx); err != nil {
		t.Fatalf("Install over kept CRDs: %v", err)
	}
	s.wantReleases(ctx, s.ns, "istio-base.v1", "istiod.v1")
	if err := again.Uninstall(ctx, RemoveCRDs()); err != nil {
		t.Fatalf("Uninstall(RemoveCRDs): %v", err)
	}
	s.checkAllGone(ctx)
	if left := s.istioCRDs(ctx); len(left) > 0 {
		t.Errorf("Istio CRDs left after Uninstall(RemoveCRDs): %d, e.g. %s", len(left), left[0].Name)
	}
}

// watchedCRD is one of the CRDs base's chart templates.
const watchedCRD = "virtualservices.networking.istio.io"

// plainApplyCRDConflicts dry-runs a server-side apply, as FieldManager and without forcing,
// of each CRD in manifest, and returns the conflicts the API server reports.
func (s *tier1) plainApplyCRDConflicts(ctx context.Context, manifest string) []string {
	s.t.Helper()
	var out []string
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil || head.Kind != "CustomResourceDefinition" {
			continue
		}
		body, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			s.t.Fatal(err)
		}
		_, err = s.ext.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, head.Metadata.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
		if apierrors.IsConflict(err) {
			out = append(out, err.Error())
		} else if err != nil {
			s.t.Fatalf("dry-run apply of CRD %s: %v", head.Metadata.Name, err)
		}
	}
	return out
}

// checkAllGone: no release, no object of the charts, no namespace of ours.
func (s *tier1) checkAllGone(ctx context.Context) {
	s.t.Helper()
	k := s.env.Kube
	for _, ns := range []string{s.ns, s.gw} {
		s.wantGone(ctx, "namespace "+ns, func(ctx context.Context) error {
			_, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return err
		})
		if rel := s.releases(ctx, ns); len(rel) > 0 {
			s.t.Errorf("releases left in %s: %v", ns, rel)
		}
	}
	s.wantGone(ctx, "ClusterRole", func(ctx context.Context) error {
		_, err := k.RbacV1().ClusterRoles().Get(ctx, "istio-reader-clusterrole-"+s.ns, metav1.GetOptions{})
		return err
	})
	s.wantGone(ctx, "ClusterRoleBinding", func(ctx context.Context) error {
		_, err := k.RbacV1().ClusterRoleBindings().Get(ctx, "istio-reader-clusterrole-"+s.ns, metav1.GetOptions{})
		return err
	})
	injector := s.options(istiosrc.Release131.Version, nil).InjectorWebhookName()
	s.wantGone(ctx, "injector webhook "+injector, func(ctx context.Context) error {
		_, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, injector, metav1.GetOptions{})
		return err
	})
	for _, v := range []string{"istio-validator-" + s.ns, "istiod-default-validator"} {
		s.wantGone(ctx, "validating webhook "+v, func(ctx context.Context) error {
			_, err := k.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, v, metav1.GetOptions{})
			return err
		})
	}
	cps, err := Detect(ctx, k)
	if err != nil {
		s.t.Fatal(err)
	}
	if got := inNamespace(cps, s.ns); len(got) > 0 {
		s.t.Errorf("Detect after Uninstall = %v", got)
	}
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

func inNamespace(cps []ControlPlane, ns string) []ControlPlane {
	var out []ControlPlane
	for _, c := range cps {
		if c.Namespace == ns {
			out = append(out, c)
		}
	}
	return out
}

// TestInstallWaitsForIstiodAndCABundle: Install returns only once istiod's Deployment is
// rolled out and its injector webhook carries a CA bundle, whichever comes last.
func TestInstallWaitsForIstiodAndCABundle(t *testing.T) {
	s := newTier1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k := s.env.Kube
	o := s.srcOptions(istiosrc.Release131, nil)
	in := s.installer(o)
	s.adoptIstioCRDs(ctx)
	injector := o.InjectorWebhookName()

	var caWritten atomic.Bool // set just before the test writes the caBundle
	type result struct {
		err           error
		afterCABundle bool
	}
	done := make(chan result, 1)
	go func() {
		err := in.Install(ctx)
		done <- result{err, caWritten.Load()}
	}()
	returned := func() bool {
		select {
		case r := <-done:
			done <- r
			return true
		default:
			return false
		}
	}

	// Helm has created istiod; nothing is ready, so Install waits.
	s.eventually(ctx, "istiod Deployment created", func(ctx context.Context) string {
		if returned() {
			return ""
		}
		if _, err := k.AppsV1().Deployments(s.ns).Get(ctx, "istiod", metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
	if returned() {
		r := <-done
		t.Fatalf("Install returned before istiod was ready: %v", r.err)
	}
	if err := markRolledOut(ctx, k, s.ns, "istiod"); err != nil {
		t.Fatal(err)
	}
	// Install sees the Deployment ready and now waits for the caBundle alone.
	s.eventually(ctx, "Install waiting for the caBundle only", func(ctx context.Context) string {
		if returned() {
			return ""
		}
		_, ok := s.log.find(func(r record) bool {
			w, _ := r.attrs["waiting"].([]string)
			return r.msg == "waiting" && r.attrs["for"] == "istiod" && len(w) == 1 && strings.Contains(w[0], "MutatingWebhookConfiguration "+injector+": no caBundle yet on 4/4 webhooks")
		})
		if !ok {
			return "no progress record saying only the caBundle is missing"
		}
		return ""
	})
	if returned() {
		r := <-done
		t.Fatalf("Install returned with istiod's webhook lacking a caBundle: %v", r.err)
	}
	// The caBundle arrives; the gateway follows.
	caWritten.Store(true)
	if err := fillCABundle(ctx, k, injector, testCA(t)); err != nil {
		t.Fatal(err)
	}
	s.eventually(ctx, "gateway Deployment created", func(ctx context.Context) string {
		if err := markRolledOut(ctx, k, s.gw, "istio-ingressgateway"); err != nil {
			return err.Error()
		}
		return ""
	})
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Install: %v", r.err)
		}
		if !r.afterCABundle {
			t.Fatal("Install returned before the test wrote the caBundle")
		}
	case <-ctx.Done():
		t.Fatal("Install did not return once everything was ready")
	}
	if _, ok := s.log.find(func(r record) bool { return r.msg == "ready" && r.attrs["for"] == "gateway" }); !ok {
		t.Error("no readiness record for the gateway")
	}
}

// TestInstallTimesOut: when nothing becomes ready, Install fails at the timeout and names
// what it was waiting for.
func TestInstallTimesOut(t *testing.T) {
	t.Run("nothing starts", func(t *testing.T) {
		s := newTier1(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		o := s.srcOptions(istiosrc.Release131, func(o *Options) { o.Timeout = 3 * time.Second })
		s.adoptIstioCRDs(ctx)
		err := s.installer(o).Install(ctx)
		if err == nil {
			t.Fatal("Install succeeded with nothing ready")
		}
		for _, want := range []string{
			"helm install of istiod",
			"Deployment " + s.ns + "/istiod: ",
			"0/1 replicas available, 0/1 updated",
			"MutatingWebhookConfiguration " + o.InjectorWebhookName() + ": no caBundle yet on 4/4 webhooks (rev.namespace.sidecar-injector.istio.io, rev.object.sidecar-injector.istio.io, namespace.sidecar-injector.istio.io, object.sidecar-injector.istio.io)",
			EnvTimeout,
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	})
	t.Run("no caBundle", func(t *testing.T) {
		s := newTier1(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		o := s.srcOptions(istiosrc.Release131, func(o *Options) { o.Timeout = 3 * time.Second })
		s.adoptIstioCRDs(ctx)
		// Deployments start; istiod never writes its CA.
		standing := make(chan struct{})
		go func() {
			defer close(standing)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for ctx.Err() == nil {
				_ = markRolledOut(ctx, s.env.Kube, s.ns, "istiod")
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		}()
		err := s.installer(o).Install(ctx)
		cancel()
		<-standing
		if err == nil {
			t.Fatal("Install succeeded without a caBundle")
		}
		want := "istiod not ready within 3s: MutatingWebhookConfiguration " + o.InjectorWebhookName() + ": no caBundle yet on 4/4 webhooks"
		if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Deployment "+s.ns+"/istiod") {
			t.Errorf("error should say istiod's wait ran out on the caBundle alone (%q):\n%v", want, err)
		}
	})
}

// TestDetect reads objects shaped like an istiod Deployment and its mesh ConfigMap.
func TestDetect(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := env.Kube
	ns := env.Namespace(t, "detect", nil)
	// Gone before the next test lists istiods cluster-wide.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.DeleteNamespace(ctx, ns); err != nil {
			t.Error(err)
		}
	})
	mk := func(name string, labels map[string]string, image string) {
		t.Helper()
		sel := map[string]string{"app": "istiod", "x": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: image}}},
				},
			},
		}
		if _, err := k.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A revisioned istiod with a distroless image and a custom trust domain.
	mk("istiod-prod", map[string]string{"app": "istiod", istionames.RevisionLabel: "prod"}, "registry.example.com/istio/pilot:1.30.5-distroless")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-prod", Namespace: ns},
		Data: map[string]string{"mesh": "accessLogFile: /dev/stdout\ntrustDomain: example.org\nrootNamespace: mesh-root\ndefaultConfig:\n  discoveryAddress: istiod-prod.x.svc:15012\n"}}
	if _, err := k.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The default revision pinned by digest: the version comes from Helm's chart label; no
	// mesh ConfigMap: Istio's defaults.
	mk("istiod", map[string]string{"app": "istiod", istionames.RevisionLabel: "default", "helm.sh/chart": "istiod-1.31.1"}, "docker.io/istio/pilot@sha256:"+strings.Repeat("ab", 32))
	// Not istiod.
	mk("istio-ingressgateway", map[string]string{"app": "istio-ingressgateway"}, "auto")

	cps, err := Detect(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	got := inNamespace(cps, ns)
	want := []ControlPlane{
		{Namespace: ns, Deployment: "istiod", Revision: "", Version: "1.31.1", VersionFrom: "label helm.sh/chart",
			Image: "docker.io/istio/pilot@sha256:" + strings.Repeat("ab", 32), TrustDomain: "cluster.local", RootNamespace: "istio-system"},
		{Namespace: ns, Deployment: "istiod-prod", Revision: "prod", Version: "1.30.5", VersionFrom: "image",
			Image: "registry.example.com/istio/pilot:1.30.5-distroless", MeshConfigMap: "istio-prod", TrustDomain: "example.org", RootNamespace: "mesh-root"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Detect =\n%v\nwant\n%v", got, want)
	}

	// A malformed mesh config is an error naming the ConfigMap, not a silent default.
	cm.Data["mesh"] = "trustDomain: [unclosed"
	if _, err := k.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Detect(ctx, k); err == nil || !strings.Contains(err.Error(), ns+"/istio-prod") {
		t.Errorf("Detect with a malformed mesh config: %v", err)
	}
}

// TestUninstallWhenNothingInstalled: Uninstall on a cluster without releases does nothing and
// succeeds (it runs after failed installs and on interrupts).
func TestUninstallWhenNothingInstalled(t *testing.T) {
	s := newTier1(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.installer(s.options("1.31.1", nil)).Uninstall(ctx, RemoveCRDs()); err != nil {
		t.Fatalf("Uninstall with nothing installed: %v", err)
	}
}

// TestDetectWithNamespacedRights: a user who may read Deployments only in istio-system (no
// cluster-wide list) still gets istiod detected there.
func TestDetectWithNamespacedRights(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := env.Kube
	if _, err := k.CoreV1().Namespaces().Get(ctx, DefaultNamespace, metav1.GetOptions{}); err == nil {
		t.Skipf("namespace %s exists already in this API server; this test needs it to itself", DefaultNamespace)
	}
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace, Labels: ownership.Labels(env.RunID)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.DeleteNamespace(ctx, DefaultNamespace); err != nil {
			t.Error(err)
		}
	})
	sel := map[string]string{"app": "istiod"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: DefaultNamespace, Labels: map[string]string{"app": "istiod", istionames.RevisionLabel: "default"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.30.5"}}}},
		},
	}
	if _, err := k.AppsV1().Deployments(DefaultNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	user := "meshconform-reader-" + env.RunID
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read-istiod", Namespace: DefaultNamespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps", ""}, Resources: []string{"deployments", "configmaps"}, Verbs: []string{"get", "list"}}}}
	if _, err := k.RbacV1().Roles(DefaultNamespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "read-istiod", Namespace: DefaultNamespace},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-istiod"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}
	if _, err := k.RbacV1().RoleBindings(DefaultNamespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cfg.QPS = -1 // no client-side throttling: the poll's last round must reach the server
	reader, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC bindings take effect asynchronously in the authorizer's cache: poll.
	var got []ControlPlane
	check := func(ctx context.Context) string {
		if _, err := reader.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			return fmt.Sprintf("cluster-wide list not forbidden for %s (%v): the test would prove nothing", user, err)
		}
		got, err = Detect(ctx, reader)
		if err != nil {
			return err.Error()
		}
		if len(got) != 1 || got[0].Namespace != DefaultNamespace || got[0].Version != "1.30.5" {
			return fmt.Sprintf("Detect = %v", got)
		}
		return ""
	}
	if err := WaitFor(ctx, 30*time.Second, "Detect with namespaced rights", slog.New(slog.DiscardHandler), check); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeNeedsAnInstall: Upgrade does not quietly install.
func TestUpgradeNeedsAnInstall(t *testing.T) {
	s := newTier1(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := s.installer(s.options("1.30.5", func(o *Options) { o.ChartDir = chartDir(t, allCharts("1.30.5", "1.31.1")) }))
	err := in.Upgrade(ctx, "1.31.1")
	if err == nil || !strings.Contains(err.Error(), "nothing to upgrade: no deployed Helm release istiod in namespace "+s.ns) {
		t.Errorf("Upgrade with nothing installed: %v", err)
	}
	if rel := s.releases(ctx, s.ns); len(rel) > 0 {
		t.Errorf("Upgrade installed %v", rel)
	}
	// A version without charts fails before anything else, naming the alternatives.
	if err := in.Upgrade(ctx, "1.31.4"); !IsVersionError(err) || !strings.Contains(err.Error(), "nearest versions that exist: 1.31.1, 1.30.5") {
		t.Errorf("Upgrade to a version without charts: %v", err)
	}
}
