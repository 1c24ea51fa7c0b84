package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/gatewayapi"
	"meshconform/framework/ownership"
)

// Installer installs, upgrades and uninstalls one Istio control plane (a revision) and its
// ingress gateway. Make one with New; it talks to the cluster only when a method needs it.
type Installer struct {
	opts Options
	src  chartSource
	log  *slog.Logger

	mu   sync.Mutex
	kube kubernetes.Interface
	ext  apiextensions.Interface
}

// FieldManager owns the fields Helm applies (server-side apply). Helm's default is the
// program's file name, which differs between the suite binaries and the CLI: an upgrade from
// another binary would then fight the first one's fields.
const FieldManager = "meshconform"

var setFieldManager sync.Once

// New checks o (no network, no cluster) and returns an Installer for it.
func New(o Options) (*Installer, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	setFieldManager.Do(func() {
		if kube.ManagedFieldsManager == "" {
			kube.ManagedFieldsManager = FieldManager
		}
	})
	return &Installer{opts: o, src: newChartSource(o), log: o.Logger}, nil
}

// Options returns the options in effect (defaults filled in; Version follows Upgrade).
func (i *Installer) Options() Options {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.opts
}

// CheckVersion confirms that the chart source holds base, istiod and gateway at version (and
// cni and ztunnel with Ambient). A
// malformed version fails before any network access; a missing one fails with a *VersionError
// that lists the nearest versions that exist.
func (i *Installer) CheckVersion(ctx context.Context, version string) error {
	_, err := checkVersion(ctx, i.src, version, i.Options().allCharts()...)
	return err
}

// Source names the chart source in messages: "chart repository https://…", "OCI chart
// repository oci://…" or "chart directory …".
func (i *Installer) Source() string { return i.src.String() }

// AvailableVersions lists the versions at which the source holds all three charts, newest first.
func (i *Installer) AvailableVersions(ctx context.Context) ([]Version, error) {
	counts := map[Version]int{}
	for _, c := range Charts {
		vs, err := i.src.versions(ctx, c)
		if err != nil {
			return nil, err
		}
		seen := map[Version]bool{}
		for _, v := range vs {
			if !seen[v] {
				seen[v] = true
				counts[v]++
			}
		}
	}
	var out []Version
	for v, n := range counts {
		if n == len(Charts) {
			out = append(out, v)
		}
	}
	sortDesc(out)
	return out, nil
}

// LoadChart returns chart c at version from the source.
func (i *Installer) LoadChart(ctx context.Context, c Chart, version string) (*chart.Chart, error) {
	v, err := ParseVersion(version)
	if err != nil {
		return nil, err
	}
	return i.src.load(ctx, c, v)
}

// Render returns the manifests chart c renders with ChartValues at the Installer's version,
// without a cluster (Helm's client-side dry run), for review and for tests.
func (i *Installer) Render(ctx context.Context, c Chart) (string, error) {
	o := i.Options()
	ch, err := i.LoadChart(ctx, c, o.Version)
	if err != nil {
		return "", err
	}
	vals, err := o.ChartValues(c)
	if err != nil {
		return "", err
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(i.log.Handler()))
	in := action.NewInstall(cfg)
	in.DryRunStrategy = action.DryRunClient
	in.ReleaseName = o.ReleaseName(c)
	in.Namespace = o.ReleaseNamespace(c)
	in.Replace = true
	in.WaitStrategy = kube.HookOnlyStrategy
	rel, err := in.RunWithContext(ctx, ch, vals)
	if err != nil {
		return "", fmt.Errorf("render chart %s %s: %w", c, o.Version, err)
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return "", fmt.Errorf("render chart %s: unexpected release type %T", c, rel)
	}
	return r.Manifest, nil
}

// Install installs base, the Gateway API's CRDs when the mesh needs them (Ambient or
// GatewayAPI; a cluster that has the Gateway API keeps its own), istiod, with Ambient istio-cni
// and ztunnel (unless NoNodeAgents), and the gateway, in that order, each as a Helm release in its
// namespace, and returns when each is ready: Helm's wait (kstatus: Deployments available,
// CRDs established), then istiod's Deployment rolled out and the sidecar injector's
// MutatingWebhookConfiguration carrying a CA bundle on every webhook, then the gateway's
// Deployment rolled out. A release that already exists is upgraded to Options.Version instead;
// with a Revision an existing istio-base is left alone unless it is older (its CRDs must be
// at least as new as the newest control plane).
func (i *Installer) Install(ctx context.Context) error {
	o := i.Options()
	start := time.Now()
	charts, err := i.loadAll(ctx, o, o.Version)
	if err != nil {
		return err
	}
	// The Gateway API's files are found before anything touches the cluster.
	var gwDir string
	if o.wantsGatewayAPI() {
		if gwDir, err = gatewayapi.Dir(ctx); err != nil {
			return err
		}
	}
	if err := i.ensureNamespaces(ctx, o.Namespace, o.GatewayNamespace); err != nil {
		return err
	}
	if err := i.applyBase(ctx, o, charts[ChartBase], false); err != nil {
		return err
	}
	if err := i.installGatewayAPI(ctx, o, gwDir); err != nil {
		return err
	}
	for _, c := range o.controlCharts() {
		vals, err := o.ChartValues(c)
		if err != nil {
			return err
		}
		if o.Revision != "" && (c == ChartCNI || c == ChartZtunnel) {
			// One istio-cni and one ztunnel serve every revision of the node (they are
			// never suffixed, see ReleaseName): a canary leaves existing ones alone, their
			// in-place move being Upgrade's, and installs them only where none exists.
			if exists, err := i.releaseExists(o, c); err != nil {
				return err
			} else if exists {
				i.log.Info("left as it is: shared by every revision", "release", o.ReleaseName(c), "namespace", o.ReleaseNamespace(c))
				continue
			}
		}
		if err := i.installOrUpgrade(ctx, o, c, charts[c], vals, false); err != nil {
			return err
		}
		if err := i.waitReady(ctx, o, c); err != nil {
			return err
		}
	}
	i.log.Info("istio installed", "version", o.Version, "revision", o.Revision, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// Upgrade moves the installed releases in place to version: base first (keeping its values,
// such as defaultRevision), then istiod and the gateway, each waited for as in Install. For
// a canary upgrade instead, Install a new Installer with a Revision beside this one.
func (i *Installer) Upgrade(ctx context.Context, version string) error {
	o := i.Options()
	o.Version = version
	start := time.Now()
	charts, err := i.loadAll(ctx, o, version)
	if err != nil {
		return err
	}
	cfg, err := i.helmConfig(o.Namespace)
	if err != nil {
		return err
	}
	if _, deployed, err := releaseState(cfg, o.ReleaseName(ChartIstiod)); err != nil {
		return err
	} else if deployed == nil {
		return fmt.Errorf("nothing to upgrade: no deployed Helm release %s in namespace %s; Install first (or, for an Istio that Helm did not install, remove it and Install)", o.ReleaseName(ChartIstiod), o.Namespace)
	}
	var gwDir string
	if o.wantsGatewayAPI() {
		if gwDir, err = gatewayapi.Dir(ctx); err != nil {
			return err
		}
	}
	if err := i.applyBase(ctx, o, charts[ChartBase], true); err != nil {
		return err
	}
	// An ambient mesh upgraded in place keeps the Gateway API it has; one that has none gets it.
	if err := i.installGatewayAPI(ctx, o, gwDir); err != nil {
		return err
	}
	for _, c := range o.controlCharts() {
		vals, err := o.ChartValues(c)
		if err != nil {
			return err
		}
		// Not keepConfig: istiod and the gateway take TO's chart defaults under the values we
		// give, as Istio's in-place upgrade does (`helm upgrade istiod istio/istiod`).
		if err := i.installOrUpgrade(ctx, o, c, charts[c], vals, false); err != nil {
			return err
		}
		if err := i.waitReady(ctx, o, c); err != nil {
			return err
		}
	}
	i.mu.Lock()
	i.opts.Version = version
	i.mu.Unlock()
	i.log.Info("istio upgraded", "version", version, "revision", o.Revision, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// controlCharts are the charts Install and Upgrade apply after base: istiod, with Ambient the
// node agents istio-cni and ztunnel in Istio's documented order (istio.io
// docs/ambient/install/helm: base → istiod → cni → ztunnel, all with profile=ambient; the same
// four in Istio's manifests/sample-charts/ambient/Chart.yaml), then the gateway unless NoGateway.
// The order matters: ztunnel turns ready only once istiod has served its config and the node's
// CNI agent has connected (research/ambient.md §1.1, readiness).
func (o Options) controlCharts() []Chart {
	out := []Chart{ChartIstiod}
	if o.nodeAgents() {
		out = append(out, ChartCNI, ChartZtunnel)
	}
	if !o.NoGateway {
		out = append(out, ChartGateway)
	}
	return out
}

// allCharts are the charts an install with o loads: Charts, and cni and ztunnel with Ambient.
func (o Options) allCharts() []Chart {
	if o.nodeAgents() {
		return append(slices.Clone(Charts), ChartCNI, ChartZtunnel)
	}
	return Charts
}

// nodeAgents says whether istio-cni and ztunnel are installed: Ambient without NoNodeAgents.
func (o Options) nodeAgents() bool { return o.Ambient && !o.NoNodeAgents }

// wantsGatewayAPI says whether Install puts the Gateway API's CRDs in (Ambient or GatewayAPI).
func (o Options) wantsGatewayAPI() bool { return o.Ambient || o.GatewayAPI }

// loadAll checks the version and loads every chart of o (o.allCharts) before anything touches
// the cluster.
func (i *Installer) loadAll(ctx context.Context, o Options, version string) (map[Chart]*chart.Chart, error) {
	v, err := checkVersion(ctx, i.src, version, o.allCharts()...)
	if err != nil {
		return nil, err
	}
	out := map[Chart]*chart.Chart{}
	for _, c := range o.allCharts() {
		ch, err := i.src.load(ctx, c, v)
		if err != nil {
			return nil, err
		}
		out[c] = ch
	}
	return out, nil
}

// releaseExists reports whether chart c's release has a deployed revision.
func (i *Installer) releaseExists(o Options, c Chart) (bool, error) {
	cfg, err := i.helmConfig(o.ReleaseNamespace(c))
	if err != nil {
		return false, err
	}
	_, deployed, err := releaseState(cfg, o.ReleaseName(c))
	return deployed != nil, err
}

// applyBase installs istio-base, or upgrades it. Upgrading keeps the values it was installed
// with (keepConfig), so a canary never moves defaultRevision; a revisioned Install upgrades
// an existing base only when it is older than o.Version.
func (i *Installer) applyBase(ctx context.Context, o Options, ch *chart.Chart, upgrade bool) error {
	name, ns := o.ReleaseName(ChartBase), o.ReleaseNamespace(ChartBase)
	cfg, err := i.helmConfig(ns)
	if err != nil {
		return err
	}
	vals, err := o.ChartValues(ChartBase)
	if err != nil {
		return err
	}
	last, deployed, err := releaseState(cfg, name)
	if err != nil {
		return err
	}
	if deployed != nil && !upgrade {
		have, perr := ParseVersion(deployed.Chart.Metadata.Version)
		want, _ := ParseVersion(o.Version)
		if perr == nil && have.Compare(want) >= 0 {
			i.log.Info("istio-base already installed; left as it is", "namespace", ns, "version", have.String(), "wanted", o.Version)
			return nil
		}
	}
	if deployed == nil && last == nil && o.Revision != "" {
		// A cluster whose only control plane is a revision: base's default webhook and
		// validation must point at it.
		vals["defaultRevision"] = o.Revision
	}
	return i.installOrUpgrade(ctx, o, ChartBase, ch, vals, deployed != nil)
}

// releaseState returns the last revision of release name and its last deployed revision
// (either nil when there is none).
func releaseState(cfg *action.Configuration, name string) (last, deployed *release.Release, err error) {
	hist, err := cfg.Releases.History(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil, fmt.Errorf("read Helm history of release %s: %w", name, err)
	}
	for _, h := range hist {
		r, ok := h.(*release.Release)
		if !ok {
			continue
		}
		if last == nil || r.Version > last.Version {
			last = r
		}
		if r.Info != nil && r.Info.Status == rcommon.StatusDeployed && (deployed == nil || r.Version > deployed.Version) {
			deployed = r
		}
	}
	return last, deployed, nil
}

// installOrUpgrade is `helm upgrade --install` for one release, with Helm's kstatus wait.
// keepConfig keeps the values the release was installed or last upgraded with under vals (only
// base uses it). It is Helm's ResetThenReuseValues, not ReuseValues: ReuseValues also replaces
// the new chart's defaults with the old chart's (helm.sh/helm/v4 pkg/action/upgrade.go,
// reuseValues: `chart.Values = oldVals`), so an upgrade would run TO's templates with FROM's
// defaults.
func (i *Installer) installOrUpgrade(ctx context.Context, o Options, c Chart, ch *chart.Chart, vals map[string]any, keepConfig bool) error {
	name, ns := o.ReleaseName(c), o.ReleaseNamespace(c)
	cfg, err := i.helmConfig(ns)
	if err != nil {
		return err
	}
	last, deployed, err := releaseState(cfg, name)
	if err != nil {
		return err
	}
	start := time.Now()
	if deployed == nil && last != nil {
		// Only failed or interrupted revisions (an earlier run died half-way): Helm refuses
		// to upgrade those, so clear them and install afresh.
		i.log.Info("clearing a release that never deployed", "release", name, "namespace", ns, "status", last.Info.Status)
		if err := i.uninstallRelease(ctx, o, c); err != nil {
			return err
		}
	}
	var labels map[string]string
	if o.RunID != "" {
		labels = ownership.Labels(o.RunID)
	}
	if deployed == nil {
		i.log.Info("helm install", "release", name, "namespace", ns, "chart", c, "version", ch.Metadata.Version)
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace = name, ns
		in.Timeout = o.Timeout
		in.WaitStrategy = kube.StatusWatcherStrategy
		in.ServerSideApply = true
		in.ForceConflicts = true
		in.Labels = labels
		if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
			return i.helmFailed(ctx, o, c, "install", err)
		}
	} else {
		i.log.Info("helm upgrade", "release", name, "namespace", ns, "chart", c, "from", deployed.Chart.Metadata.Version, "to", ch.Metadata.Version)
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.Timeout = o.Timeout
		up.WaitStrategy = kube.StatusWatcherStrategy
		// istiod rewrites fields of its webhook configurations at run time (caBundle,
		// failurePolicy); with server-side apply those conflicts would fail the upgrade
		// (istio/istio#59367). The chart is the desired state: force, and let istiod
		// reconcile again, which the readiness wait then observes.
		up.ServerSideApply = "true"
		up.ForceConflicts = true
		up.ResetThenReuseValues = keepConfig
		up.MaxHistory = 10
		up.Labels = labels
		if _, err := up.RunWithContext(ctx, name, ch, vals); err != nil {
			return i.helmFailed(ctx, o, c, "upgrade", err)
		}
	}
	i.log.Info("helm release ready", "release", name, "namespace", ns, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// helmFailed wraps a failed Helm action. When Helm's wait gave up, it adds what our own
// readiness checks see, so that the message names the object that is not ready.
func (i *Installer) helmFailed(ctx context.Context, o Options, c Chart, verb string, err error) error {
	msg := fmt.Sprintf("helm %s of %s (chart %s %s) in namespace %s: %v", verb, o.ReleaseName(c), c, o.Version, o.ReleaseNamespace(c), err)
	waitFailed := errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded") || strings.Contains(err.Error(), "not ready")
	if !waitFailed {
		return errors.New(msg)
	}
	if checks := i.checks(o, c); len(checks) > 0 {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if waiting := evaluate(cctx, checks); len(waiting) > 0 {
			msg += "; not ready: " + strings.Join(waiting, "; ")
		}
	}
	return fmt.Errorf("%s. %s", msg, notReadyFix(o, c))
}

// helmConfig returns a Helm action configuration whose releases (Secrets) live in ns.
func (i *Installer) helmConfig(ns string) (*action.Configuration, error) {
	s := cli.New()
	if i.opts.Kubeconfig != "" {
		s.KubeConfig = i.opts.Kubeconfig
	}
	if i.opts.Context != "" {
		s.KubeContext = i.opts.Context
	}
	s.SetNamespace(ns)
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(i.log.Handler()))
	if err := cfg.Init(s.RESTClientGetter(), ns, "secret"); err != nil {
		return nil, fmt.Errorf("helm configuration for namespace %s: %w", ns, err)
	}
	return cfg, nil
}

// client returns a Kubernetes client for the configured kubeconfig and context.
func (i *Installer) client() (kubernetes.Interface, error) {
	if err := i.connect(); err != nil {
		return nil, err
	}
	return i.kube, nil
}

// extClient returns an apiextensions client (CRDs) for the same cluster.
func (i *Installer) extClient() (apiextensions.Interface, error) {
	if err := i.connect(); err != nil {
		return nil, err
	}
	return i.ext, nil
}

func (i *Installer) connect() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.kube != nil {
		return nil
	}
	s := cli.New()
	if i.opts.Kubeconfig != "" {
		s.KubeConfig = i.opts.Kubeconfig
	}
	if i.opts.Context != "" {
		s.KubeContext = i.opts.Context
	}
	rc, err := s.RESTClientGetter().ToRESTConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig %q, context %q: %w (set KUBECONFIG and KUBE_CONTEXT to a reachable cluster)", s.KubeConfig, s.KubeContext, err)
	}
	// Readiness polls a few objects several times a second; client-go's default of 5 QPS
	// would throttle it into lagging behind the cluster.
	rc.QPS, rc.Burst = 50, 100
	k, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ext, err := apiextensions.NewForConfig(rc)
	if err != nil {
		return err
	}
	i.kube, i.ext = k, ext
	return nil
}

// ensureNamespaces creates the namespaces that do not exist yet, labelled as meshconform's
// (with the run id when there is one) so that Uninstall removes them, and only them.
func (i *Installer) ensureNamespaces(ctx context.Context, names ...string) error {
	k, err := i.client()
	if err != nil {
		return err
	}
	for _, ns := range names {
		_, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read namespace %s: %w", ns, err)
		}
		labels := map[string]string{ownership.ManagedByKey: ownership.ManagedByValue}
		if i.opts.RunID != "" {
			labels = ownership.Labels(i.opts.RunID)
		}
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
		if _, err := k.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
		i.log.Info("namespace created", "namespace", ns)
	}
	return nil
}

// ownNamespace reports whether this package created ns (for this run, when there is a run id).
func (i *Installer) ownNamespace(labels map[string]string) bool {
	if labels[ownership.ManagedByKey] != ownership.ManagedByValue {
		return false
	}
	return i.opts.RunID == "" || labels[ownership.RunIDKey] == i.opts.RunID
}

func sortDesc(vs []Version) {
	for a := 1; a < len(vs); a++ {
		for b := a; b > 0 && vs[b].Compare(vs[b-1]) > 0; b-- {
			vs[b], vs[b-1] = vs[b-1], vs[b]
		}
	}
}
