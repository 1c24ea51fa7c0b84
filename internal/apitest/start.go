package apitest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"meshconform/framework/ownership"
)

// Binaries are the programs a tier-1 environment runs, all from one assets directory.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

// Fix is the remedy for missing binaries, named in every such error.
const Fix = "get the binaries with `KUBEBUILDER_ASSETS=$(scripts/envtest-assets.sh) go test ./...` " +
	"(downloads kube-apiserver and etcd where it can, builds what is missing from the Go module proxy; ~8 min cold, cached after)"

// rebuildHint ends errors about binaries that exist but do not work.
func rebuildHint(dir string) string {
	return "if the binaries are broken or stale, rebuild them: rm -r " + dir + " && scripts/envtest-assets.sh"
}

// Options configure Start. The zero value needs only AssetsDir.
type Options struct {
	// AssetsDir holds etcd, kube-apiserver and kube-controller-manager (KUBEBUILDER_ASSETS).
	AssetsDir string
	// CRDFiles are installed before Start returns; nil means Istio's CRDs (IstioCRDFile).
	CRDFiles []string
	// ComponentTimeout bounds the start of each of etcd, kube-apiserver and
	// kube-controller-manager, and the CRD installation (default 60s, or
	// KUBEBUILDER_CONTROLPLANE_START_TIMEOUT).
	ComponentTimeout time.Duration
	// ControllerManagerTimeout bounds the wait for kube-controller-manager to act (default
	// ComponentTimeout).
	ControllerManagerTimeout time.Duration
	// Reaper, when set, is told about every process group and directory, so they are removed
	// even when this process dies without calling Stop.
	reaper *reaper
}

// Timings records how long the phases of Start took.
type Timings struct {
	ControlPlane, CRDs, ControllerManager, Total time.Duration
	// GatewayAPI is how long InstallGatewayAPI took (after Start, and only when a test asked).
	GatewayAPI time.Duration
}

func (t Timings) String() string {
	return fmt.Sprintf("%s (etcd+kube-apiserver %s, CRDs %s, kube-controller-manager ready %s)",
		t.Total.Round(10*time.Millisecond), t.ControlPlane.Round(10*time.Millisecond),
		t.CRDs.Round(10*time.Millisecond), t.ControllerManager.Round(10*time.Millisecond))
}

// Start brings up etcd, kube-apiserver (with opts.CRDFiles installed) and
// kube-controller-manager, and returns once the controller manager acts on the API server.
// Every failure is one error that says what is missing and how to get it; every wait has a
// deadline. On error nothing is left running.
func Start(ctx context.Context, opts Options) (env *Environment, err error) {
	began := time.Now()
	if opts.ComponentTimeout == 0 {
		opts.ComponentTimeout = 60 * time.Second
		if v := os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT"); v != "" {
			if d, perr := time.ParseDuration(v); perr == nil && d > 0 {
				opts.ComponentTimeout = d
			}
		}
	}
	if opts.ControllerManagerTimeout == 0 {
		opts.ControllerManagerTimeout = opts.ComponentTimeout
	}
	if err := CheckAssets(opts.AssetsDir); err != nil {
		return nil, err
	}
	versions, err := binaryVersions(ctx, opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	crds := opts.CRDFiles
	if crds == nil {
		f, err := IstioCRDFile(ctx)
		if err != nil {
			return nil, err
		}
		crds = []string{f}
	}

	work, err := os.MkdirTemp("", "meshconform-apitest-")
	if err != nil {
		return nil, fmt.Errorf("apitest: cannot create a work directory: %w", err)
	}
	opts.reaper.watchDir(work)
	e := &Environment{workDir: work, Versions: versions, RunID: ownership.NewRunID()}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()

	// The service-account key pair: the API server verifies and signs with it, and the
	// controller manager's token controller signs legacy tokens with the same private key.
	saKey, saPub, err := writeServiceAccountKeys(work)
	if err != nil {
		return nil, err
	}

	etcdLog, err := os.Create(filepath.Join(work, "etcd.log"))
	if err != nil {
		return nil, fmt.Errorf("apitest: %w", err)
	}
	apiLog, err := os.Create(filepath.Join(work, "kube-apiserver.log"))
	if err != nil {
		return nil, fmt.Errorf("apitest: %w", err)
	}
	e.logs = append(e.logs, etcdLog, apiLog)

	newPlane := func() *envtest.ControlPlane {
		cp := &envtest.ControlPlane{
			Etcd: &envtest.Etcd{
				Path: filepath.Join(opts.AssetsDir, "etcd"), Out: etcdLog, Err: etcdLog,
				StartTimeout: opts.ComponentTimeout, StopTimeout: 20 * time.Second,
			},
			APIServer: &envtest.APIServer{
				Path: filepath.Join(opts.AssetsDir, "kube-apiserver"), Out: apiLog, Err: apiLog,
				StartTimeout: opts.ComponentTimeout, StopTimeout: 20 * time.Second,
			},
		}
		// --watch-cache=false: reads go to etcd. With the watch cache, a CRD deleted soon after
		// it was created can stay Terminating for minutes: the API server's own finalizer
		// lists its instances through a cache that is still initializing and is refused
		// (KEP-4568; k8s.io/apiserver v0.37.2 pkg/storage/cacher/cacher.go:768-772). Seen in a
		// cold `make test`: listenersets and tlsroutes still Terminating after 2 minutes with
		// "InstanceDeletionFailed: could not list instances: storage is (re)initializing".
		cp.APIServer.Configure().
			Set("service-account-key-file", saPub).
			Set("service-account-signing-key-file", saKey).
			Set("watch-cache", "false")
		return cp
	}

	t0 := time.Now()
	// envtest picks free ports by probing, which can race with other processes; one retry
	// covers that, more would only hide a binary that cannot start. Each attempt gets a
	// fresh ControlPlane (new ports and directories).
	var cp *envtest.ControlPlane
	for attempt := 1; ; attempt++ {
		before := childGroups()
		cp = newPlane()
		e.plane = cp
		err = cp.Start()
		e.watchChildren(opts.reaper)
		if err == nil {
			break
		}
		stopFailedPlane(cp, before)
		e.plane = nil
		if attempt == 2 || ctx.Err() != nil {
			return nil, fmt.Errorf("apitest: etcd and kube-apiserver from %s did not start (%d attempts, %s each): %w\n%s%s%s",
				opts.AssetsDir, attempt, opts.ComponentTimeout, err, tailSection("kube-apiserver", apiLog.Name()), tailSection("etcd", etcdLog.Name()), rebuildHint(opts.AssetsDir))
		}
	}
	opts.reaper.watchDir(cp.Etcd.DataDir)
	opts.reaper.watchDir(cp.APIServer.CertDir)
	e.Timings.ControlPlane = time.Since(t0)

	admin, err := cp.AddUser(envtest.User{Name: "meshconform-admin", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 1000, Burst: 2000, Timeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("apitest: cannot provision an admin user on the API server: %w", err)
	}
	e.Config = admin.Config()
	if e.Kubeconfig, err = writeKubeconfig(filepath.Join(work, "admin.kubeconfig"), e.Config); err != nil {
		return nil, err
	}
	if err := e.newClients(); err != nil {
		return nil, err
	}

	t0 = time.Now()
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths: crds, ErrorIfPathMissing: true, MaxTime: opts.ComponentTimeout,
	}); err != nil {
		return nil, fmt.Errorf("apitest: installing CRDs from %s: %w\n%s",
			strings.Join(crds, ", "), err, tailSection("kube-apiserver", apiLog.Name()))
	}
	e.Timings.CRDs = time.Since(t0)

	t0 = time.Now()
	kcmUser, err := cp.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 200, Burst: 400})
	if err != nil {
		return nil, fmt.Errorf("apitest: cannot provision the controller manager's user: %w", err)
	}
	kcmConfig, err := writeKubeconfig(filepath.Join(work, "kube-controller-manager.kubeconfig"), kcmUser.Config())
	if err != nil {
		return nil, err
	}
	e.kcm, err = startControllerManager(filepath.Join(opts.AssetsDir, "kube-controller-manager"), kcmConfig, saKey, work)
	e.kcmHint = rebuildHint(opts.AssetsDir)
	if err != nil {
		return nil, err
	}
	opts.reaper.watchGroup(e.kcm.pid())
	ready, cancel := context.WithTimeout(ctx, opts.ControllerManagerTimeout)
	defer cancel()
	if err := e.waitControllerManager(ready); err != nil {
		return nil, err
	}
	e.Timings.ControllerManager = time.Since(t0)
	e.Timings.Total = time.Since(began)
	return e, nil
}

// stopFailedPlane stops what a failed envtest start left running. At its start timeout
// envtest only sends kube-apiserver one SIGTERM, which an API server still starting can sit
// on (a second one makes it exit); Stop sends another and waits. Any child process group
// that appeared during the attempt and is still there after that is killed.
func stopFailedPlane(cp *envtest.ControlPlane, before []int) {
	_ = cp.Stop()
	old := map[int]bool{}
	for _, pid := range before {
		old[pid] = true
	}
	for _, pid := range childGroups() {
		if !old[pid] {
			killGroup(pid, 5*time.Second)
		}
	}
}

// CheckAssets reports, in one error, which of the Binaries dir lacks.
func CheckAssets(dir string) error {
	if dir == "" {
		return fmt.Errorf("apitest: KUBEBUILDER_ASSETS is not set: %s", Fix)
	}
	var missing []string
	for _, b := range Binaries {
		p := filepath.Join(dir, b)
		st, err := os.Stat(p)
		switch {
		case err != nil:
			missing = append(missing, b)
		case st.IsDir() || st.Mode()&0o111 == 0:
			missing = append(missing, b+" (not an executable file)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("apitest: the assets directory %s lacks %s (tier-1 tests need %s): %s",
			dir, strings.Join(missing, ", "), strings.Join(Binaries, ", "), Fix)
	}
	return nil
}

// binaryVersions runs each binary with --version: a wrong-architecture or truncated binary
// fails here in a second, with its own words, rather than as a start timeout.
func binaryVersions(ctx context.Context, dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, b := range Binaries {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(c, filepath.Join(dir, b), "--version")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		cancel()
		text := strings.TrimSpace(buf.String())
		if err != nil {
			return nil, fmt.Errorf("apitest: %s --version failed (%v): %s\n%s", filepath.Join(dir, b), err, lastLines(text, 10), rebuildHint(dir))
		}
		first, _, _ := strings.Cut(text, "\n")
		out[b] = first
	}
	return out, nil
}

func writeServiceAccountKeys(dir string) (keyPath, pubPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("apitest: generating the service-account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("apitest: encoding the service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("apitest: encoding the service-account public key: %w", err)
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("apitest: %w", err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return "", "", fmt.Errorf("apitest: %w", err)
	}
	return keyPath, pubPath, nil
}

// writeKubeconfig writes cfg (client certificate auth, as envtest provisions it) to path.
func writeKubeconfig(path string, cfg *rest.Config) (string, error) {
	const name = "meshconform-apitest"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: metav1.NamespaceDefault}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("apitest: writing kubeconfig %s: %w", path, err)
	}
	return path, nil
}

func (e *Environment) newClients() error {
	var err error
	if e.Kube, err = kubernetes.NewForConfig(e.Config); err != nil {
		return fmt.Errorf("apitest: kubernetes client: %w", err)
	}
	if e.Istio, err = istioclient.NewForConfig(e.Config); err != nil {
		return fmt.Errorf("apitest: istio client: %w", err)
	}
	if e.Dynamic, err = dynamic.NewForConfig(e.Config); err != nil {
		return fmt.Errorf("apitest: dynamic client: %w", err)
	}
	return nil
}

// waitControllerManager proves the controller manager acts on this API server: its
// serviceaccount controller gives a new namespace its "default" ServiceAccount. (Its
// secure port is off, so there is no /healthz to ask; an effect is the better proof anyway.)
func (e *Environment) waitControllerManager(ctx context.Context) error {
	name := ownership.NamespaceName("apitest-ready", e.RunID, "")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ownership.Labels(e.RunID)}}
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("apitest: creating namespace %s: %w", name, err)
	}
	defer func() {
		_ = e.Kube.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		_, err := e.Kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			last = err
		}
		if exited, why := e.kcm.exited(); exited {
			return fmt.Errorf("apitest: kube-controller-manager exited during start (%s)\n%s%s",
				why, tailSection("kube-controller-manager", e.kcm.logPath), e.kcmHint)
		}
		select {
		case <-ctx.Done():
			detail := "no ServiceAccount \"default\" appeared in namespace " + name
			if last != nil {
				detail += " (last error: " + last.Error() + ")"
			}
			return fmt.Errorf("apitest: kube-controller-manager did not act on the API server in time: %s\n%s%s",
				detail, tailSection("kube-controller-manager", e.kcm.logPath), e.kcmHint)
		case <-tick.C:
		}
	}
}

// Stop stops the controller manager, then kube-apiserver and etcd, and removes every file
// the environment made. It is safe to call more than once and on a half-started environment.
func (e *Environment) Stop() error {
	if e == nil {
		return nil
	}
	var errs []error
	if e.kcm != nil {
		if err := e.kcm.stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
		e.kcm = nil
	}
	if e.plane != nil {
		if err := e.plane.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("apitest: stopping etcd and kube-apiserver: %w", err))
		}
		e.plane = nil
	}
	for _, f := range e.logs {
		_ = f.Close()
	}
	e.logs = nil
	if e.workDir != "" {
		if err := os.RemoveAll(e.workDir); err != nil {
			errs = append(errs, err)
		}
		e.workDir = ""
	}
	return errors.Join(errs...)
}

// tailSection is the last lines of a log, headed by its name, for error messages.
func tailSection(name, path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return fmt.Sprintf("--- %s: no output ---\n", name)
	}
	return fmt.Sprintf("--- %s, last lines ---\n%s\n", name, lastLines(string(b), 15))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
