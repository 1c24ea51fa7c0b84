package provision

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/ownership"
	"meshconform/framework/report"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// attachSettings are the settings of a run on the harness's API server through KUBE_CONTEXT.
func attachEnv(t *testing.T, env *apitest.Environment, extra map[string]string) map[string]string {
	t.Helper()
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{"KUBECONFIG": env.Kubeconfig, "KUBE_CONTEXT": raw.CurrentContext}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// With KUBE_CONTEXT on a cluster without Istio, Up attaches, finds no istiod and says what
// to do; nothing at cluster level is created or removed.
func TestTier1UpAttachesAndFindsNoIstio(t *testing.T) {
	env := apitest.Env(t)
	s := load(t, attachEnv(t, env, nil))
	var log strings.Builder
	start := time.Now()
	st, err := Up(context.Background(), s, &log)
	t.Logf("Up took %s:\n%s", time.Since(start), log.String())
	want := "istio: no istiod found in istio-system; install Istio or unset KUBE_CONTEXT to let the suite create a kind cluster (or set ISTIO_INSTALL=yes to install Istio " + s.IstioVersion + " on context " + s.KubeContext + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if !st.Existing || st.Context != s.KubeContext || st.Server != env.Config.Host || st.KubernetesVersion == "" || st.ClusterName != "" {
		t.Errorf("state: %+v", st)
	}
	for _, line := range []string{
		"preflight ok   context", // the context check ran, and no docker check
		"meshconform: cluster done in",
		"attached to context " + s.KubeContext,
		"meshconform: istio failed after",
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}
	for _, line := range []string{"preflight ok   docker", "preflight FAIL docker", "charts", "deleting kind cluster"} {
		if strings.Contains(log.String(), line) {
			t.Errorf("log has %q: an existing cluster needs no Docker, no charts (nothing to install) and loses nothing", line)
		}
	}
}

// With ISTIO_INSTALL=none the same cluster without Istio is a run: nothing of Istio is
// looked for or waited on, no chart is read, and the state says there is no mesh.
func TestTier1UpWithoutIstio(t *testing.T) {
	env := apitest.Env(t)
	s := load(t, attachEnv(t, env, map[string]string{"ISTIO_INSTALL": "none"}))
	var log strings.Builder
	st, err := Up(context.Background(), s, &log)
	t.Logf("Up:\n%s", log.String())
	if err != nil {
		t.Fatalf("Up with ISTIO_INSTALL=none: %v", err)
	}
	if !st.Settings.NoMesh() || st.Istio != (Istio{}) || st.KubernetesVersion == "" {
		t.Errorf("state: %+v", st)
	}
	if want := "no Istio (ISTIO_INSTALL=none)"; !strings.Contains(st.Summary(), want) {
		t.Errorf("summary %q lacks %q", st.Summary(), want)
	}
	for _, line := range []string{"istio: none (ISTIO_INSTALL=none)", "every behaviour is left out"} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}
	for _, line := range []string{"charts", "meshconform: istio done", "meshconform: istio failed", "no istiod"} {
		if strings.Contains(log.String(), line) {
			t.Errorf("log has %q: a run without Istio reads no chart and looks for no istiod", line)
		}
	}
}

// With an istiod there (a Deployment, its mesh config and its injector webhook, written by
// the test: Istio itself cannot run in tier 1), Up detects version, revision, trust domain
// and root namespace, waits for the rollout and the CA bundle, and returns the State.
func TestTier1UpAttachesToAnInstalledIstio(t *testing.T) {
	env := apitest.Env(t)
	ctx := context.Background()
	kube := env.Kube
	const ns = "istio-system"
	labels := ownership.Labels(env.RunID)

	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.DeleteNamespace(context.Background(), ns) })
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "istio", Labels: labels},
		Data:       map[string]string{"mesh": "trustDomain: example.org\nrootNamespace: istio-config\n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	podLabels := map[string]string{"app": "istiod", "istio.io/rev": "default"}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Labels: map[string]string{"app": "istiod", "istio.io/rev": "default", ownership.RunIDKey: env.RunID}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.30.5"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The injector webhook with a CA bundle; it selects no object, so it never intercepts
	// anything on this API server.
	none := admissionv1.Ignore
	sideEffects := admissionv1.SideEffectClassNone
	svcPath := "/inject"
	wh, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Labels: labels},
		Webhooks: []admissionv1.MutatingWebhook{{
			Name:                    "rev.namespace.sidecar-injector.istio.io",
			ClientConfig:            admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{Namespace: ns, Name: "istiod", Path: &svcPath}, CABundle: []byte("-----BEGIN CERTIFICATE-----\n")},
			FailurePolicy:           &none,
			SideEffects:             &sideEffects,
			AdmissionReviewVersions: []string{"v1"},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"meshconform.io/never": env.RunID}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), wh.Name, metav1.DeleteOptions{})
	})
	// Tier 1 runs no deployment controller and no kubelet: the test writes the rolled-out
	// status they would.
	markRolledOut(t, kube, ns, "istiod")

	s := load(t, attachEnv(t, env, map[string]string{"ALLOW_DISRUPTIVE": "auto"}))
	var log strings.Builder
	st, err := Up(ctx, s, &log, WithReadyTimeout(time.Minute))
	t.Logf("log:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	want := Istio{Version: "1.30.5", Namespace: ns, TrustDomain: "example.org", RootNamespace: "istio-config", DataplaneMode: "sidecar"}
	if st.Istio != want {
		t.Errorf("istio %+v\n want %+v", st.Istio, want)
	}
	if st.DisruptiveAllowed || st.CreatedCluster || !st.Existing {
		t.Errorf("on an existing cluster nothing is created and disruptive specs stay off: %+v", st)
	}
	// Another process rebuilds clients from the marshalled state.
	data, _ := st.Marshal()
	back, err := UnmarshalState(data)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := back.RESTConfig()
	if err != nil || rc.Host != env.Config.Host {
		t.Fatalf("RESTConfig from state: %v, %v", rc, err)
	}

	// A found istiod whose injector has no caBundle is not ready: the wait for it is bounded by
	// ISTIO_INSTALL_TIMEOUT and names what is missing.
	wh, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, wh.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := wh.Webhooks[0].ClientConfig.CABundle
	wh.Webhooks[0].ClientConfig.CABundle = nil
	if wh, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, wh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s = load(t, attachEnv(t, env, map[string]string{"ISTIO_INSTALL_TIMEOUT": "2s"}))
	began := time.Now()
	_, err = Up(ctx, s, nil)
	if err == nil || !strings.Contains(err.Error(), "istiod not ready within 2s") || !strings.Contains(err.Error(), "no caBundle yet on 1/1 webhooks") || time.Since(began) > 30*time.Second {
		t.Fatalf("found istiod without a caBundle: %v after %s; want it refused within ISTIO_INSTALL_TIMEOUT, naming the webhook", err, time.Since(began))
	}
	wh.Webhooks[0].ClientConfig.CABundle = bundle
	if _, err = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(ctx, wh, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Asking for another version than the one found is an error, not a silent test of it.
	s = load(t, attachEnv(t, env, map[string]string{"ISTIO_VERSION": "1.31.1"}))
	_, err = Up(ctx, s, nil)
	if err == nil || !strings.Contains(err.Error(), "the cluster runs Istio 1.30.5") || !strings.Contains(err.Error(), "ISTIO_VERSION=1.31.1") {
		t.Fatalf("version mismatch: %v", err)
	}

	// Asking for ambient of this sidecar mesh is an error naming what was found.
	s = load(t, attachEnv(t, env, map[string]string{"DATAPLANE_MODE": "ambient"}))
	if _, err = Up(ctx, s, nil); err == nil || !strings.Contains(err.Error(), "runs the sidecar data plane") || !strings.Contains(err.Error(), "DATAPLANE_MODE=ambient") {
		t.Fatalf("ambient asked of a sidecar mesh: %v", err)
	}

	// A ztunnel DaemonSet beside istiod and an enrolled namespace: the mesh is ambient, detected
	// without DATAPLANE_MODE, waited for (its DaemonSet rolled out) and recorded in the state.
	enrolled := env.Namespace(t, "shop", map[string]string{"istio.io/dataplane-mode": "ambient"})
	zsel := map[string]string{"app": "ztunnel"}
	if _, err := kube.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ztunnel", Labels: labels},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: zsel}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: zsel},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/ztunnel:1.30.5-distroless"}}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Not yet rolled out (no DaemonSet controller here): the wait names it.
	s = load(t, attachEnv(t, env, map[string]string{"ISTIO_INSTALL_TIMEOUT": "2s"}))
	if _, err = Up(ctx, s, nil); err == nil || !strings.Contains(err.Error(), "istiod and ztunnel not ready within 2s") || !strings.Contains(err.Error(), "DaemonSet "+ns+"/ztunnel:") {
		t.Fatalf("found ztunnel not rolled out: %v", err)
	}
	ds, err := kube.AppsV1().DaemonSets(ns).Get(ctx, "ztunnel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1, UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1}
	if _, err := kube.AppsV1().DaemonSets(ns).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	st, err = Up(ctx, load(t, attachEnv(t, env, nil)), &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if st.Mode() != "ambient" || !strings.Contains(log.String(), "found data plane ambient (DaemonSet "+ns+"/ztunnel") || !strings.Contains(log.String(), enrolled) {
		t.Errorf("mode %q; log:\n%s", st.Mode(), log.String())
	}
	// Given and agreeing: fine; given and disagreeing: an error, no run of the other mode.
	if st, err = Up(ctx, load(t, attachEnv(t, env, map[string]string{"DATAPLANE_MODE": "ambient"})), nil); err != nil || st.Mode() != "ambient" {
		t.Errorf("DATAPLANE_MODE=ambient on an ambient mesh: %q, %v", st.Mode(), err)
	}
	_, err = Up(ctx, load(t, attachEnv(t, env, map[string]string{"DATAPLANE_MODE": "sidecar"})), nil)
	if err == nil || !strings.Contains(err.Error(), "runs the ambient data plane") || !strings.Contains(err.Error(), "but DATAPLANE_MODE=sidecar") {
		t.Fatalf("sidecar asked of an ambient mesh: %v", err)
	}
}

// markRolledOut writes the status a deployment controller writes once every replica is
// updated and available.
func markRolledOut(t *testing.T, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	if _, err := kube.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write status of Deployment %s/%s: %v", ns, name, err)
	}
}

// A whole Session on a real API server (KUBE_CONTEXT, ISTIO_INSTALL=none): the body runs on
// the run Up attached to, with its state saved; its exit code is the Session's, and the end
// removes nothing from a cluster the run did not create.
func TestTier1Session(t *testing.T) {
	env := apitest.Env(t)
	s := load(t, attachEnv(t, env, map[string]string{"ISTIO_INSTALL": "none"}))
	var log strings.Builder
	ran := false
	code := Session(context.Background(), s, &log, func(ctx context.Context, st State) int {
		ran = true
		saved, err := LoadState(StatePath(st.RunDir))
		if err != nil || saved.RunID != st.RunID || saved.Server != env.Config.Host {
			t.Errorf("saved state: run %q server %q, %v; want run %q on %s", saved.RunID, saved.Server, err, st.RunID, env.Config.Host)
		}
		return 3
	}, AfterDown(func(e Ended) {
		if e.Outcome != Failed {
			t.Errorf("outcome %s, want failed", e.Outcome)
		}
		// Up's phases on an existing cluster without Istio: no images, no istio.
		var names []string
		for _, p := range e.State.Phases {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, []string{report.PhasePreflight, report.PhaseCluster}) || e.Cleanup.Name != report.PhaseCleanup || e.Total <= 0 {
			t.Errorf("phases %q, cleanup %+v, total %v: want preflight and cluster, the cleanup, a total", names, e.Cleanup, e.Total)
		}
	}))
	t.Logf("log:\n%s", log.String())
	if code != 3 || !ran {
		t.Fatalf("exit %d (body ran: %v), want the body's 3", code, ran)
	}
	i := strings.Index(log.String(), "meshconform: up in")
	if i < 0 {
		t.Fatal("no up line")
	}
	if after := log.String()[i:]; strings.Count(after, "\n") != 1 {
		t.Errorf("after up, the end said more than nothing on an existing cluster:\n%s", after)
	}
}

// On a reused kind cluster the run installed Istio on, Down with WithUninstallFromReused leaves
// the cluster as found: startRunNamespacesDeletion and waitRunNamespaces remove what the run's suites kept (here two
// namespaces of the run) and waits until they are gone; a namespace of another run stays.
func TestTier1DeleteRunNamespaces(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kept := []string{env.Namespace(t, "upgrade-client", nil), env.Namespace(t, "upgrade-server", nil)}
	other := ownership.NamespaceName("other", ownership.NewRunID(), "1")
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other, Labels: ownership.Labels("zzother1")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.DeleteNamespace(context.Background(), other) })
	st := State{RunID: env.RunID, ClusterName: "mc", Kubeconfig: env.Kubeconfig, Context: raw.CurrentContext}
	st.Istio.Namespace = env.Namespace(t, "istio-system", nil) // the install's: Uninstall removes it
	var log strings.Builder
	started, err := startRunNamespacesDeletion(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitRunNamespaces(ctx, st, started, &log); err != nil {
		t.Fatal(err)
	}
	if ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, st.Istio.Namespace, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("Istio's namespace %s: %v; want it left to the uninstall", st.Istio.Namespace, err)
	}
	for _, ns := range kept {
		if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			t.Errorf("namespace %s of the run is still there after the wait", ns)
		}
		if !strings.Contains(log.String(), ns) {
			t.Errorf("log does not name %s: %q", ns, log.String())
		}
	}
	if _, err := env.Kube.CoreV1().Namespaces().Get(ctx, other, metav1.GetOptions{}); err != nil {
		t.Errorf("another run's namespace %s: %v; want it left alone", other, err)
	}
}
