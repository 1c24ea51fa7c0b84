package diag

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1"
	securityapi "istio.io/api/security/v1"
	typeapi "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// The literal credentials the fixture puts where a careless dump would copy them.
const (
	literalPassword = "s3cr3t-literal-password"
	secretToken     = "opaque-token-value-0123456789abcdef"
)

// TestDumpAgainstAPIServer dumps a namespace as a failed spec would leave it (pods that
// never started, events, policies, a Secret holding a real private key, a ConfigMap) and
// checks what was written, what was recorded as not collected, and that no trace of any
// key is anywhere in the dump.
func TestDumpAgainstAPIServer(t *testing.T) {
	env := apitest.Env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := env.Namespace(t, "diag", nil)
	istioNS := env.Namespace(t, "diag-istio", nil)
	waitDefaultServiceAccount(ctx, t, env, ns, istioNS)

	keys := genKeys(t)
	secretKey, configMapKey, proxyKey := keys[1], keys[0], keys[2]
	cert := genCert(t)
	kube := env.Kube

	mustCreate(t, "secret", func() error {
		_, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "httpbin-tls"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": []byte(certFor(t, secretKey.Signer)), "tls.key": []byte(secretKey.PEM)},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "api-creds"},
			StringData: map[string]string{"token": secretToken},
		}, metav1.CreateOptions{})
		return err
	})
	// A ConfigMap that should never have held a key, but does: the redactor is the backstop.
	mustCreate(t, "configmap", func() error {
		_, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
			Data:       map[string]string{"greeting": "hello from app-config", "leaked.pem": configMapKey.PEM},
		}, metav1.CreateOptions{})
		return err
	})

	always := corev1.ContainerRestartPolicyAlways
	proxy := corev1.Container{Name: istionames.ProxyContainerName, Image: "docker.io/istio/proxyv2:1.31.1",
		Args: []string{"proxy", "sidecar"}}
	// web: a regular sidecar, literal and referenced credentials in its env; stays Pending.
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "docker.io/mccutchen/go-httpbin:v2.15.0", Env: []corev1.EnvVar{
				{Name: "DB_PASSWORD", Value: literalPassword},
				{Name: "API_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "api-creds"}, Key: "token"}}},
				{Name: "LOG_LEVEL", Value: "debug"},
			}},
			proxy,
		}},
	}
	// client: a native sidecar (init container, restartPolicy Always), reported running so
	// that its config dump is fetched.
	nativeProxy := proxy
	nativeProxy.RestartPolicy = &always
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Labels: map[string]string{"app": "client"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{nativeProxy},
			Containers:     []corev1.Container{{Name: "curl", Image: "docker.io/curlimages/curl:8.11.1", Command: []string{"sleep", "infinity"}}},
		},
	}
	// gone: bound to a node that does not exist, so asking for its log is an API error.
	gone := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gone"},
		Spec: corev1.PodSpec{NodeName: "node-that-is-gone",
			Containers: []corev1.Container{{Name: "app", Image: "docker.io/mccutchen/go-httpbin:v2.15.0"}}},
	}
	for _, p := range []*corev1.Pod{web, client, gone} {
		mustCreate(t, "pod "+p.Name, func() error {
			_, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	}
	markRunning(ctx, t, env, ns, "client")

	// Events, created out of time order; the dump must show them in it.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for i, e := range []struct {
		reason, typ, pod, msg string
		at                    time.Duration
	}{
		{"ThirdThing", "Warning", "web", "Readiness probe failed: HTTP probe failed with statuscode: 503", 3 * time.Minute},
		{"FirstThing", "Normal", "client", "Scheduled (pretend)", time.Minute},
		{"SecondThing", "Normal", "web", "Pulling image \"docker.io/istio/proxyv2:1.31.1\"", 2 * time.Minute},
	} {
		ts := metav1.NewTime(base.Add(e.at))
		mustCreate(t, "event "+e.reason, func() error {
			_, err := kube.CoreV1().Events(ns).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "ev-" + string(rune('a'+i))},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.pod, APIVersion: "v1"},
				Reason:         e.reason, Message: e.msg, Type: e.typ,
				FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
				Source: corev1.EventSource{Component: "diag-test"},
			}, metav1.CreateOptions{})
			return err
		})
	}

	// Istio policies.
	sel := &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": "web"}}
	mustCreate(t, "PeerAuthentication", func() error {
		_, err := env.Istio.SecurityV1().PeerAuthentications(ns).Create(ctx, &securityv1.PeerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "strict"},
			Spec: securityapi.PeerAuthentication{Selector: sel,
				Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "DestinationRule", func() error {
		_, err := env.Istio.NetworkingV1().DestinationRules(ns).Create(ctx, &networkingv1.DestinationRule{
			ObjectMeta: metav1.ObjectMeta{Name: "web-mtls"},
			Spec: networkingapi.DestinationRule{Host: "web." + ns + ".svc.cluster.local",
				TrafficPolicy: &networkingapi.TrafficPolicy{Tls: &networkingapi.ClientTLSSettings{Mode: networkingapi.ClientTLSSettings_ISTIO_MUTUAL}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "AuthorizationPolicy", func() error {
		_, err := env.Istio.SecurityV1().AuthorizationPolicies(ns).Create(ctx, &securityv1.AuthorizationPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "deny-delete"},
			Spec: securityapi.AuthorizationPolicy{Selector: sel, Action: securityapi.AuthorizationPolicy_DENY,
				Rules: []*securityapi.Rule{{To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{Methods: []string{"DELETE"}}}}}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "Gateway", func() error {
		_, err := env.Istio.NetworkingV1().Gateways(ns).Create(ctx, &networkingv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "web-gw"},
			Spec: networkingapi.Gateway{Selector: map[string]string{"istio": "ingressgateway"},
				Servers: []*networkingapi.Server{{Port: &networkingapi.Port{Number: 443, Name: "https", Protocol: "HTTPS"},
					Hosts: []string{"web.example.com"},
					Tls:   &networkingapi.ServerTLSSettings{Mode: networkingapi.ServerTLSSettings_SIMPLE, CredentialName: "httpbin-tls"}}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "VirtualService", func() error {
		_, err := env.Istio.NetworkingV1().VirtualServices(ns).Create(ctx, &networkingv1.VirtualService{
			ObjectMeta: metav1.ObjectMeta{Name: "web-vs"},
			Spec: networkingapi.VirtualService{Hosts: []string{"web.example.com"}, Gateways: []string{"web-gw"},
				Http: []*networkingapi.HTTPRoute{{Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "web"}}}}}},
		}, metav1.CreateOptions{})
		return err
	})

	// The Istio namespace: an istiod that never started, and the mesh config.
	mustCreate(t, "istiod pod", func() error {
		_, err := kube.CoreV1().Pods(istioNS).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-5d4f8b9c7-abcde", Labels: map[string]string{"app": "istiod"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.31.1"}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, "mesh configmap", func() error {
		_, err := kube.CoreV1().ConfigMaps(istioNS).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "istio"},
			Data:       map[string]string{"mesh": "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\ntrustDomain: cluster.local\n", "meshNetworks": "networks: {}"},
		}, metav1.CreateOptions{})
		return err
	})

	// The proxy's config dump comes from a real local command printing a real-shaped dump
	// that holds a private key.
	fixture := filepath.Join(t.TempDir(), "config_dump.json")
	if err := os.WriteFile(fixture, []byte(configDumpFixture(t, proxyKey, proxyKey, cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		execs []string
	)
	proxyExec := func(ens, pod, container string) probe.Executor {
		mu.Lock()
		defer mu.Unlock()
		execs = append(execs, ens+"/"+pod+"/"+container)
		return scriptedExec{script: map[string][]string{"pilot-agent": {"cat", fixture}}}
	}

	reports := t.TempDir()
	dir := filepath.Join(reports, "diag", Slug("[MTLS-002] diag test"))
	began := time.Now()
	sum, err := Dump(ctx, DumpOptions{
		Kube: kube, Istio: env.Istio, RestConfig: env.Config,
		Namespaces: []string{ns}, IstioNamespace: istioNS,
		Dir: dir, ReportsDir: reports, ProxyExec: proxyExec,
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	t.Logf("Dump took %s:\n%s", time.Since(began).Round(time.Millisecond), sum)

	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("%s: %v (files written: %v)", rel, err, sum.Files)
		}
		return string(b)
	}
	contains := func(rel string, wants ...string) {
		t.Helper()
		text := read(rel)
		for _, w := range wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q; it holds:\n%s", rel, w, text)
			}
		}
	}

	contains(ns+"/pods.yaml", "# pods in "+ns+" (all): 3", "name: web", "name: client", "phase: Pending",
		"name: DB_PASSWORD\n      value: '"+redactedValue+"'", "secretKeyRef:", "name: api-creds", "value: debug")
	if strings.Contains(read(ns+"/pods.yaml"), "managedFields") {
		t.Errorf("pods.yaml carries managedFields")
	}

	events := read(ns + "/events.txt")
	if a, b, c := strings.Index(events, "FirstThing"), strings.Index(events, "SecondThing"), strings.Index(events, "ThirdThing"); a < 0 || !(a < b && b < c) {
		t.Errorf("events.txt not in time order:\n%s", events)
	}
	contains(ns+"/events.txt", "pod/web", "Readiness probe failed: HTTP probe failed with statuscode: 503", base.Add(3*time.Minute).UTC().Format(time.RFC3339))

	contains(ns+"/policies.yaml",
		"# PeerAuthentication (security.istio.io/v1): 1", "kind: PeerAuthentication", "name: strict", "mode: STRICT",
		"# DestinationRule (networking.istio.io/v1): 1", "mode: ISTIO_MUTUAL",
		"# AuthorizationPolicy (security.istio.io/v1): 1", "action: DENY", "- DELETE",
		"# VirtualService (networking.istio.io/v1): 1", "name: web-vs",
		"# Gateway (networking.istio.io/v1): 1", "credentialName: httpbin-tls",
		"# RequestAuthentication (security.istio.io/v1): 0")
	contains(ns+"/secrets.txt", "httpbin-tls\tkubernetes.io/tls", "api-creds\tOpaque")
	contains(ns+"/configmaps.yaml", "greeting: hello from app-config", "name: app-config")
	contains(ns+"/services.yaml", "# services in "+ns+": 0")

	// The running native sidecar's config dump: fetched once, written, redacted, still JSON.
	if len(execs) != 1 || execs[0] != ns+"/client/istio-proxy" {
		t.Errorf("ProxyExec called for %v, want only %s/client/istio-proxy", execs, ns)
	}
	dump := read(ns + "/proxy/client.config_dump.json")
	if !json.Valid([]byte(dump)) || !strings.Contains(dump, base64.StdEncoding.EncodeToString([]byte(cert))) {
		t.Errorf("config dump is not the fixture, redacted: valid JSON %t, %d bytes", json.Valid([]byte(dump)), len(dump))
	}

	// istiod: its pod, its mesh config; its log (never started) is an error, not an abort.
	contains(istioNS+"/istiod-pods.yaml", "name: istiod-5d4f8b9c7-abcde")
	contains(istioNS+"/mesh-config.yaml", "trustDomain: cluster.local", "name: istio")

	// What could not be collected: every container of the pods that never started.
	errs := read(ErrorsFile)
	t.Logf("%s:\n%s", ErrorsFile, errs)
	for _, want := range []string{
		"log of " + ns + "/web container app:",
		"log of " + ns + "/web container istio-proxy:",
		"log of " + ns + "/client container curl:",
		"log of " + ns + "/client container istio-proxy:",
		"log of " + istioNS + "/istiod-5d4f8b9c7-abcde container discovery:",
		"log of " + ns + "/gone container app: ",
		"config_dump of " + ns + "/web: skipped, istio-proxy is not running (pod Pending, not scheduled",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors.txt lacks %q; it holds:\n%s", want, errs)
		}
	}
	if len(sum.Errors) != strings.Count(errs, "\n") {
		t.Errorf("summary has %d errors, errors.txt %d lines", len(sum.Errors), strings.Count(errs, "\n"))
	}
	for _, f := range sum.Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("summary lists %s: %v", f, err)
		}
	}
	if s := sum.String(); !strings.Contains(s, "diagnostics in diag/mtls-002-diag-test: ") || !strings.Contains(s, ns+"/: ") {
		t.Errorf("summary text:\n%s", s)
	}

	// Nothing anywhere in the dump betrays a key or a credential.
	var files int
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		assertNoKey(t, rel, string(b), secretKey, configMapKey, proxyKey)
		for _, cred := range []string{literalPassword, secretToken, base64.StdEncoding.EncodeToString([]byte(secretToken)), "hunter2-do-not-print"} {
			if strings.Contains(string(b), cred) {
				t.Errorf("%s holds the credential %q", rel, cred)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != len(sum.Files) {
		t.Errorf("%d files under %s, summary lists %d: %v", files, dir, len(sum.Files), sum.Files)
	}

	// The same namespace on a run without Istio (ISTIO_INSTALL=none, a failed baseline): the
	// namespace is dumped, and neither Istio's policies nor istiod are asked for or noted.
	noMesh := filepath.Join(reports, "diag", "baseline")
	sum, err = Dump(ctx, DumpOptions{Kube: kube, RestConfig: env.Config, Namespaces: []string{ns}, NoMesh: true,
		Dir: noMesh, ReportsDir: reports})
	if err != nil {
		t.Fatalf("Dump without a mesh: %v", err)
	}
	for _, f := range sum.Files {
		if strings.Contains(f, "policies") || strings.Contains(f, "istiod") || strings.Contains(f, "mesh-config") {
			t.Errorf("a dump without a mesh wrote %s", f)
		}
	}
	for _, e := range sum.Errors {
		if l := strings.ToLower(e); strings.Contains(l, "istiod") || strings.Contains(l, "peerauthentication") || strings.Contains(l, "istio client") || strings.Contains(l, "istio policies") {
			t.Errorf("a dump without a mesh notes %q", e)
		}
	}
	if !slices.Contains(sum.Files, ns+"/pods.yaml") {
		t.Errorf("a dump without a mesh lacks the namespace's pods: %v", sum.Files)
	}
}

func mustCreate(t *testing.T, what string, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatalf("creating %s: %v", what, err)
	}
}

// waitDefaultServiceAccount polls until the serviceaccount controller has given each
// namespace its "default" ServiceAccount: pods cannot be created before.
func waitDefaultServiceAccount(ctx context.Context, t *testing.T, env *apitest.Environment, namespaces ...string) {
	t.Helper()
	for _, ns := range namespaces {
		for {
			_, err := env.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsNotFound(err) {
				t.Fatalf("ServiceAccount default in %s: %v", ns, err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no ServiceAccount default in %s before the deadline:\n%s", ns, env.ControllerManagerLogTail())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// markRunning writes the status a kubelet would: pod Running, every container running.
// There is no kubelet here, so nothing overwrites it.
func markRunning(ctx context.Context, t *testing.T, env *apitest.Environment, ns, name string) {
	t.Helper()
	pod, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	running := func(c corev1.Container) corev1.ContainerStatus {
		ready, started := true, true
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image, Ready: ready, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses = nil, nil
	for _, c := range pod.Spec.InitContainers {
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, running(c))
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, running(c))
	}
	if _, err := env.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("marking %s/%s running: %v", ns, name, err)
	}
}
