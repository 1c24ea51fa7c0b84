package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/e2e-framework/klient"
	"sigs.k8s.io/e2e-framework/support"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"meshconform/framework/wait"
)

// Kind is a kind cluster driven through kind's Go library (no kind binary needed; kind itself
// drives the docker CLI). It implements e2e-framework's cluster provider interfaces, so it also
// composes with e2e-framework's envfuncs.
type Kind struct {
	name           string
	nodeImage      string
	config         KindConfig
	configSet      bool
	kubeconfigPath string
	reuse          bool
	waitReady      time.Duration
	log            io.Writer
	preloader      Preloader
	optErr         error

	provider *kindcluster.Provider
	rc       *rest.Config
	created  bool
}

var (
	_ support.E2EClusterProvider                = (*Kind)(nil)
	_ support.E2EClusterProviderWithImageLoader = (*Kind)(nil)
)

// Option configures a Kind. Options are e2e-framework ClusterOpts, so they work both with
// NewKind and with (*Kind).WithOpts through envfuncs.CreateClusterWithOpts.
type Option = support.ClusterOpts

func kindOpt(f func(*Kind)) Option {
	return func(c support.E2EClusterProvider) {
		if k, ok := c.(*Kind); ok {
			f(k)
		}
	}
}

// WithNodeImage sets the node image of every node (K8S_NODE_IMAGE).
func WithNodeImage(image string) Option { return kindOpt(func(k *Kind) { k.nodeImage = image }) }

// WithConfig sets the kind config (default: the embedded single-node config).
func WithConfig(c KindConfig) Option {
	return kindOpt(func(k *Kind) { k.config, k.configSet = c, true })
}

// WithKubeconfigPath sets the file kind writes the cluster's kubeconfig to (default: a file in
// the temp dir). The user's ~/.kube/config is never touched.
func WithKubeconfigPath(path string) Option {
	return kindOpt(func(k *Kind) { k.kubeconfigPath = path })
}

// WithReuse makes Create use an existing cluster of the same name instead of failing.
func WithReuse(reuse bool) Option { return kindOpt(func(k *Kind) { k.reuse = reuse }) }

// WithLog sends kind's progress and the image loader's lines to w.
func WithLog(w io.Writer) Option { return kindOpt(func(k *Kind) { k.log = w }) }

// WithWaitReady bounds how long creation waits for the control plane (default 5 minutes).
func WithWaitReady(d time.Duration) Option { return kindOpt(func(k *Kind) { k.waitReady = d }) }

// WithPreloader sets how LoadImage pulls, saves and loads images (archive dir, retries).
func WithPreloader(p Preloader) Option { return kindOpt(func(k *Kind) { k.preloader = p }) }

// NewKind returns a kind cluster called name; nothing happens until Create.
func NewKind(name string, opts ...Option) *Kind {
	k := &Kind{name: name}
	k.SetDefaults()
	k.WithOpts(opts...)
	return k
}

// SetDefaults fills what was not set. It is e2e-framework's first call on a provider.
func (k *Kind) SetDefaults() support.E2EClusterProvider {
	if k.name == "" {
		k.name = DefaultName
	}
	if k.waitReady == 0 {
		k.waitReady = 5 * time.Minute
	}
	if k.log == nil {
		k.log = io.Discard
	}
	return k
}

// WithName sets the cluster name.
func (k *Kind) WithName(name string) support.E2EClusterProvider { k.name = name; return k }

// WithVersion picks the node image of a Kubernetes version listed in versions.yaml. An
// unlisted version makes Create fail with the versions that are listed.
func (k *Kind) WithVersion(version string) support.E2EClusterProvider {
	img, err := NodeImageFor(version)
	if err != nil {
		k.optErr = err
		return k
	}
	k.nodeImage = img
	return k
}

// WithPath is accepted for the interface and ignored: kind's library needs no kind binary.
func (k *Kind) WithPath(string) support.E2EClusterProvider { return k }

// WithOpts applies options.
func (k *Kind) WithOpts(opts ...support.ClusterOpts) support.E2EClusterProvider {
	for _, o := range opts {
		o(k)
	}
	return k
}

// Name is the cluster name.
func (k *Kind) Name() string { return k.name }

// Created reports whether Create made the cluster (false when it reused one).
func (k *Kind) Created() bool { return k.created }

func (k *Kind) providerOrNew() *kindcluster.Provider {
	if k.provider == nil {
		k.provider = kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(writerLogger{k.log}))
	}
	return k.provider
}

// Create creates the cluster, or reuses it when it exists and reuse is on, and returns the
// kubeconfig file. args may be "--image X" and "--config F" (kind CLI's spelling).
func (k *Kind) Create(ctx context.Context, args ...string) (string, error) {
	if err := k.applyArgs(args); err != nil {
		return "", err
	}
	if k.optErr != nil {
		return "", k.optErr
	}
	if err := ValidateName(k.name); err != nil {
		return "", err
	}
	if !k.configSet {
		c, err := LoadKindConfig("")
		if err != nil {
			return "", err
		}
		k.config, k.configSet = c, true
	}
	if k.kubeconfigPath == "" {
		k.kubeconfigPath = filepath.Join(os.TempDir(), "meshconform-"+k.name+".kubeconfig")
	}
	if err := os.MkdirAll(filepath.Dir(k.kubeconfigPath), 0o700); err != nil {
		return "", fmt.Errorf("kubeconfig directory: %w", err)
	}
	p := k.providerOrNew()
	existing, err := p.List()
	if err != nil {
		return "", fmt.Errorf("list kind clusters: %w", err)
	}
	if err := ExistingDecision(k.name, slices.Contains(existing, k.name), k.reuse); err != nil {
		return "", err
	}
	if slices.Contains(existing, k.name) {
		fmt.Fprintf(k.log, "reusing kind cluster %q\n", k.name)
		return k.kubeconfigPath, k.writeKubeconfig()
	}
	opts := []kindcluster.CreateOption{
		kindcluster.CreateWithRawConfig(k.config.Raw),
		kindcluster.CreateWithKubeconfigPath(k.kubeconfigPath),
		kindcluster.CreateWithWaitForReady(k.waitReady),
		kindcluster.CreateWithDisplayUsage(false),
		kindcluster.CreateWithDisplaySalutation(false),
	}
	if k.nodeImage != "" {
		opts = append(opts, kindcluster.CreateWithNodeImage(k.nodeImage))
	}
	// From here on a cluster may exist that this run made: Destroy must remove it.
	k.created = true
	err = Interruptible(ctx,
		func() error { return p.Create(k.name, opts...) },
		func() error { return p.Delete(k.name, k.kubeconfigPath) },
		10*time.Minute)
	if err != nil {
		return "", fmt.Errorf("create kind cluster %q: %w", k.name, err)
	}
	return k.kubeconfigPath, k.loadRESTConfig()
}

func (k *Kind) applyArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		flag, val, hasVal := strings.Cut(arg, "=")
		if !hasVal && i+1 < len(args) {
			val, i = args[i+1], i+1
		}
		switch flag {
		case "--image":
			k.nodeImage = val
		case "--config":
			c, err := LoadKindConfig(val)
			if err != nil {
				return err
			}
			k.config, k.configSet = c, true
		default:
			return fmt.Errorf("kind create: argument %q not supported: use --image or --config, or options", arg)
		}
	}
	return nil
}

// ExistingDecision is the rule for a cluster name that is taken: reuse it only when asked.
func ExistingDecision(name string, exists, reuse bool) error {
	if exists && !reuse {
		return fmt.Errorf("kind cluster %q already exists: set REUSE_CLUSTER=1 to use it, or remove it with: %s", name, DeleteCommand(name))
	}
	return nil
}

// DeleteCommand is a command that deletes the kind cluster name on this machine: the kind
// CLI when it is on PATH, else kind run through go (Go is all meshconform needs).
func DeleteCommand(name string) string {
	if _, err := exec.LookPath("kind"); err == nil {
		return "kind delete cluster --name " + name
	}
	return fmt.Sprintf("go run sigs.k8s.io/kind@%s delete cluster --name %s", KindVersion(), name)
}

// KindVersion is the version of kind's library built into this binary.
func KindVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kind" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "v0.33.0" // go.mod's pin; build info lacks deps only in odd builds
}

// Interruptible runs run, which cannot be interrupted (kind's create takes no context). If ctx
// ends first, abort undoes it under run (deleting the node containers makes kind fail fast),
// then Interruptible waits up to grace for run to return and aborts once more, so that nothing
// run made survives.
func Interruptible(ctx context.Context, run, abort func() error, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- run() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	var errs []error
	if err := abort(); err != nil {
		errs = append(errs, fmt.Errorf("first cleanup: %w", err))
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		errs = append(errs, fmt.Errorf("still running %s after the interrupt", grace))
	}
	if err := abort(); err != nil {
		errs = append(errs, fmt.Errorf("cleanup: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("interrupted (%v); cleanup incomplete: %w", context.Cause(ctx), errors.Join(errs...))
	}
	return fmt.Errorf("interrupted (%v); removed what was created", context.Cause(ctx))
}

func (k *Kind) writeKubeconfig() error {
	cfg, err := k.providerOrNew().KubeConfig(k.name, false)
	if err != nil {
		return fmt.Errorf("kubeconfig of kind cluster %q: %w", k.name, err)
	}
	if err := os.WriteFile(k.kubeconfigPath, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return k.loadRESTConfig()
}

func (k *Kind) loadRESTConfig() error {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: k.kubeconfigPath},
		&clientcmd.ConfigOverrides{CurrentContext: KubeContext(k.name)})
	rc, err := cc.ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %s, context %s: %w", k.kubeconfigPath, KubeContext(k.name), err)
	}
	k.rc = rc
	return nil
}

// CreateWithConfig creates the cluster from a kind config file (or embedded config name).
func (k *Kind) CreateWithConfig(ctx context.Context, configFile string) (string, error) {
	if configFile == "" {
		return k.Create(ctx)
	}
	return k.Create(ctx, "--config", configFile)
}

// GetKubeconfig is the kubeconfig file written by Create.
func (k *Kind) GetKubeconfig() string { return k.kubeconfigPath }

// GenerateKubeconfig writes the kubeconfig again (e.g. after the file was removed). With
// "--internal" it writes the in-docker-network variant next to it and returns that path.
func (k *Kind) GenerateKubeconfig(args ...string) (string, error) {
	internal := slices.Contains(args, "--internal")
	cfg, err := k.providerOrNew().KubeConfig(k.name, internal)
	if err != nil {
		return "", err
	}
	path := k.kubeconfigPath
	if internal {
		path += ".internal"
	}
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// GetKubectlContext is the context kind names for the cluster.
func (k *Kind) GetKubectlContext() string { return KubeContext(k.name) }

// ExportLogs writes kind's node logs (kubelet, containerd, pods) to dest.
func (k *Kind) ExportLogs(ctx context.Context, dest string) error {
	return k.providerOrNew().CollectLogs(k.name, dest)
}

// Destroy deletes the cluster and its kubeconfig entry.
func (k *Kind) Destroy(ctx context.Context) error {
	if err := k.providerOrNew().Delete(k.name, k.kubeconfigPath); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w (remove it by hand with: %s)", k.name, err, DeleteCommand(k.name))
	}
	return nil
}

// KubernetesRestConfig is the cluster's rest.Config after Create.
func (k *Kind) KubernetesRestConfig() *rest.Config { return k.rc }

// WaitForControlPlane waits until every node is Ready and CoreDNS serves (e2e-framework calls
// it after Create).
func (k *Kind) WaitForControlPlane(ctx context.Context, client klient.Client) error {
	kube, err := kubernetes.NewForConfig(client.RESTConfig())
	if err != nil {
		return err
	}
	return WaitReady(ctx, kube, k.waitReady)
}

// Nodes lists the cluster's nodes (for image loading).
func (k *Kind) Nodes() ([]Node, error) {
	ns, err := k.providerOrNew().ListInternalNodes(k.name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of kind cluster %q: %w", k.name, err)
	}
	out := make([]Node, 0, len(ns))
	for _, n := range ns {
		out = append(out, n)
	}
	return out, nil
}

// LoadImage pulls image on the host when missing and loads it into every node lacking it.
func (k *Kind) LoadImage(ctx context.Context, image string, _ ...string) error {
	_, err := k.Preload(ctx, image)
	return err
}

// Preload is LoadImage for many images at once.
func (k *Kind) Preload(ctx context.Context, images ...string) (PreloadResult, error) {
	return k.PreloadSome(ctx, images, nil)
}

// PreloadSome preloads required and optional images; an optional one that is neither on the
// host nor pullable is a warning (PreloadResult.Unavailable), a required one an error.
func (k *Kind) PreloadSome(ctx context.Context, required, optional []string) (PreloadResult, error) {
	nodes, err := k.Nodes()
	if err != nil {
		return PreloadResult{}, err
	}
	p := k.preloader
	if p.Dir == "" {
		p.Dir = filepath.Join(filepath.Dir(k.kubeconfigPath), "images")
	}
	if p.Log == nil {
		p.Log = k.log
	}
	p.Optional = append(slices.Clone(p.Optional), optional...)
	return p.Preload(ctx, nodes, append(slices.Clone(required), optional...))
}

// LoadImageArchive loads an image archive into every node, with retries.
func (k *Kind) LoadImageArchive(ctx context.Context, archivePath string, _ ...string) error {
	nodes, err := k.Nodes()
	if err != nil {
		return err
	}
	p := k.preloader
	for _, n := range nodes {
		err := Retry(ctx, p.backoff(), fmt.Sprintf("load %s into node %s", archivePath, n), func(context.Context) error {
			return p.loadInto(n, archivePath)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// WaitReady polls until every node is Ready and CoreDNS has a ready pod, or timeout.
func WaitReady(ctx context.Context, kube kubernetes.Interface, timeout time.Duration) error {
	res, err := wait.Until(ctx, wait.Config{Timeout: timeout, Poll: time.Second, Consecutive: 1},
		func(ctx context.Context) (string, error) {
			nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return "", err
			}
			pods, err := kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
			if err != nil {
				return "", err
			}
			_, missing := ControlPlaneReady(nodes.Items, pods.Items) // "" when ready
			return missing, nil
		}, func(missing string) bool { return missing == "" })
	if err == nil {
		return nil
	}
	last := "not checked yet"
	if l := res.Last(); l.Err != nil {
		last = l.Err.Error()
	} else if l.N > 0 {
		last = l.Value
	}
	return fmt.Errorf("cluster not ready after %s: %s", timeout, last)
}

// ControlPlaneReady decides readiness from nodes and the CoreDNS pods; when not ready it says
// what is missing.
func ControlPlaneReady(nodes []corev1.Node, dns []corev1.Pod) (bool, string) {
	if len(nodes) == 0 {
		return false, "no nodes registered"
	}
	for _, n := range nodes {
		if !conditionTrue(n.Status.Conditions, corev1.NodeReady) {
			return false, fmt.Sprintf("node %s is not Ready", n.Name)
		}
	}
	for _, p := range dns {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, ""
			}
		}
	}
	return false, fmt.Sprintf("no ready CoreDNS pod (k8s-app=kube-dns) among %d", len(dns))
}

func conditionTrue(cs []corev1.NodeCondition, t corev1.NodeConditionType) bool {
	for _, c := range cs {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// writerLogger prints kind's user-facing messages (V(0), warnings, errors) to a writer.
type writerLogger struct{ w io.Writer }

func (l writerLogger) Warn(m string)                        { fmt.Fprintln(l.w, "kind: warning:", m) }
func (l writerLogger) Warnf(f string, a ...any)             { l.Warn(fmt.Sprintf(f, a...)) }
func (l writerLogger) Error(m string)                       { fmt.Fprintln(l.w, "kind: error:", m) }
func (l writerLogger) Errorf(f string, a ...any)            { l.Error(fmt.Sprintf(f, a...)) }
func (l writerLogger) V(v kindlog.Level) kindlog.InfoLogger { return infoLogger{l.w, v == 0} }

type infoLogger struct {
	w  io.Writer
	on bool
}

func (l infoLogger) Info(m string) {
	if l.on {
		fmt.Fprintln(l.w, "kind:", strings.TrimRight(m, "\n"))
	}
}
func (l infoLogger) Infof(f string, a ...any) { l.Info(fmt.Sprintf(f, a...)) }
func (l infoLogger) Enabled() bool            { return l.on }

// KindClusterExists reports whether docker runs nodes of a kind cluster called name.
func KindClusterExists(name string) (bool, error) {
	names, err := kindcluster.NewProvider(kindcluster.ProviderWithDocker()).List()
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}
