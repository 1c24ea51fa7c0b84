// Package provision is the flow of one run, thin and composable: Up brings up what the specs
// need (preflight → cluster → images → Istio) and returns a State; Down honours KEEP_CLUSTER
// and says what it left and how to remove it. The decisions (which cluster, install or
// detect, keep or delete) are small functions tested on their own.
package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/cluster"
	"meshconform/framework/cluster/preflight"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/framework/ownership"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
	kindmanifests "meshconform/manifests/kind"
)

// Outcome is how the run ended, for Down's keep decision.
type Outcome string

const (
	Passed      Outcome = "passed"
	Failed      Outcome = "failed"
	Interrupted Outcome = "interrupted"
)

// OutcomeOf maps a run's end to an Outcome: an interrupt (a driver's ended ctx, a signal
// Ginkgo reports) wins over a failure.
func OutcomeOf(interrupted, failed bool) Outcome {
	switch {
	case interrupted:
		return Interrupted
	case failed:
		return Failed
	}
	return Passed
}

// ParseOutcome reads an outcome by name, as `down` takes it: an unknown name is an error, never
// an outcome that Keep would read as a pass (and delete what on-failure keeps).
func ParseOutcome(name string) (Outcome, error) {
	switch o := Outcome(name); o {
	case Passed, Failed, Interrupted:
		return o, nil
	}
	return "", fmt.Errorf("outcome %q is none of %s, %s, %s", name, Passed, Failed, Interrupted)
}

// Keep decides whether a kind cluster this run created survives it. on-failure keeps it
// only after a failure, to be looked at; an interrupt cleans up what the run made.
func Keep(p settings.KeepPolicy, o Outcome) bool {
	switch p {
	case settings.KeepAlways:
		return true
	case settings.KeepOnFailure:
		return o == Failed
	}
	return false
}

// Option adjusts Up.
type Option func(*config)

type config struct {
	preflight      preflight.Options
	images         []string
	cleanupTimeout time.Duration
	readyTimeout   time.Duration
	afterDown      func(Ended)
	// noIstioBefore: Up refuses a cluster where an istiod is found (WithNoIstioBefore).
	noIstioBefore string
	// reusedRevisions, when set, has Down uninstall from a reused kind cluster the Istio the
	// run installed: these revisions first, then the run's own (WithUninstallFromReused).
	reusedRevisions func() Installed
	// up and down are Up and Down; Session's tests replace them to run without a cluster.
	up   func(context.Context, settings.Settings, io.Writer, ...Option) (State, error)
	down func(context.Context, State, Outcome, io.Writer, ...Option) error
}

func configure(opts []Option) config {
	c := config{cleanupTimeout: DefaultCleanupTimeout, readyTimeout: 5 * time.Minute, up: Up, down: Down}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithPreflight replaces preflight's options (the chart check defaults to framework/mesh's).
func WithPreflight(o preflight.Options) Option { return func(c *config) { c.preflight = o } }

// WithImages adds images to preload into kind nodes (beside Istio's and the samples').
func WithImages(images ...string) Option {
	return func(c *config) { c.images = append(c.images, images...) }
}

// WithCleanupTimeout bounds the cleanup after a failed Up and in Down (default 3 minutes).
func WithCleanupTimeout(d time.Duration) Option { return func(c *config) { c.cleanupTimeout = d } }

// WithReadyTimeout bounds waiting for a kind control plane (default 5 minutes); a found
// istiod is waited for within the settings' InstallTimeout (ISTIO_INSTALL_TIMEOUT).
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }

// WithNoIstioBefore has Up refuse a cluster where an istiod is already found (a kind cluster
// reused with REUSE_CLUSTER=1): who needs the cluster without Istio says so in who (e.g. "the
// upgrade gate starts from Istio FROM").
func WithNoIstioBefore(who string) Option { return func(c *config) { c.noIstioBefore = who } }

// WithUninstallFromReused has Down, on a kind cluster the run reused (not created, not
// KUBE_CONTEXT), uninstall the Istio the run installed, whatever the outcome, so that the kept
// cluster is left as the run found it: each of installed's other revisions (asked at Down:
// e.g. a canary installed later in the run), then the run's own revision with istio-base and,
// when there were none before, Istio's CRDs, then every namespace still labelled with the run's
// ID (what its suites kept across phases). Without it, a reused cluster keeps the Istio a run
// installed, for the next run to reuse.
func WithUninstallFromReused(installed func() Installed) Option {
	return func(c *config) { c.reusedRevisions = installed }
}

// Installed is what a run has installed since Up, for WithUninstallFromReused.
type Installed struct {
	// Version is the run's own revision's version now ("": still Up's, ISTIO_VERSION), e.g. TO
	// after an upgrade in place.
	Version string
	// Others are the revisions installed beside the run's own, each with its version.
	Others map[string]string
}

// DefaultCleanupTimeout bounds cleanup: deleting a kind cluster takes seconds.
const DefaultCleanupTimeout = 3 * time.Minute

// Up brings up the run: preflight (all problems at once, nothing created when any), the
// cluster (kind created or reused, or KUBE_CONTEXT attached), images preloaded into kind
// nodes, Istio installed or detected and ready. Each phase prints its name and elapsed time to
// log. When a phase fails, what Up made is cleaned up as Down would after a failure (a kind
// cluster it created is deleted unless KEEP_CLUSTER keeps it) and the error says what failed.
// Cancel ctx (SIGINT/SIGTERM) to interrupt; cleanup then runs on a fresh bounded context.
func Up(ctx context.Context, s settings.Settings, log io.Writer, opts ...Option) (st State, err error) {
	c := configure(opts)
	if log == nil {
		log = io.Discard
	}
	st = State{
		RunID:    ownership.NewRunID(),
		Existing: s.Existing(),
		RunDir:   filepath.Join(s.ReportsDir, "run"),
		Settings: s,
		Started:  time.Now(),
	}
	for _, n := range s.Notes() {
		fmt.Fprintf(log, "meshconform: note: %s\n", n)
	}
	defer func() {
		if err == nil {
			return
		}
		outcome := OutcomeOf(ctx.Err() != nil, true)
		if derr := Down(ctx, st, outcome, log, append(slices.Clone(opts), WithCleanupTimeout(c.cleanupTimeout))...); derr != nil {
			err = fmt.Errorf("%w\ncleanup after the failure: %v", err, derr)
		}
	}()

	start := time.Now()
	if err := phase(ctx, log, &st, report.PhasePreflight, func(ctx context.Context) error { return runPreflight(ctx, s, c, log) }); err != nil {
		return st, err
	}
	var kind *cluster.Kind
	if err := phase(ctx, log, &st, report.PhaseCluster, func(ctx context.Context) error {
		var err error
		kind, err = bringUpCluster(ctx, s, c, log, &st)
		return err
	}); err != nil {
		return st, err
	}
	if kind != nil {
		if err := phase(ctx, log, &st, report.PhaseImages, func(ctx context.Context) error { return preload(ctx, kind, s, c, log) }); err != nil {
			return st, err
		}
	}
	if s.NoMesh() {
		// ISTIO_INSTALL=none: the cluster alone. Nothing of Istio is installed, looked for or
		// waited on; the suites leave every behaviour out and say why.
		fmt.Fprintf(log, "meshconform: istio: none (ISTIO_INSTALL=none): the baseline checks the cluster; every behaviour is left out\n")
	} else if err := phase(ctx, log, &st, report.PhaseIstio, func(ctx context.Context) error { return bringUpIstio(ctx, s, c, log, &st) }); err != nil {
		return st, err
	}
	st.DisruptiveAllowed = DisruptiveAllowed(s.AllowDisruptive, st.CreatedCluster)
	fmt.Fprintf(log, "meshconform: up in %s: %s\n", Elapsed(time.Since(start)), st.Summary())
	return st, nil
}

// DisruptiveAllowed resolves ALLOW_DISRUPTIVE: auto allows mesh-wide specs only on a cluster
// the run created, where nobody else's mesh can be disturbed.
func DisruptiveAllowed(t settings.Toggle, created bool) bool {
	switch t {
	case settings.ToggleOn:
		return true
	case settings.ToggleOff:
		return false
	}
	return created
}

// Summary is one line saying what the run stands on.
func (s State) Summary() string {
	where := fmt.Sprintf("context %s", s.Context)
	switch {
	case s.ClusterName != "" && s.CreatedCluster:
		where = fmt.Sprintf("kind cluster %s (created)", s.ClusterName)
	case s.ClusterName != "":
		where = fmt.Sprintf("kind cluster %s (reused)", s.ClusterName)
	}
	if s.Settings.NoMesh() {
		return fmt.Sprintf("%s, Kubernetes %s, no Istio (ISTIO_INSTALL=none), run %s", where, s.KubernetesVersion, s.RunID)
	}
	rev := s.Istio.Revision
	if rev == "" {
		rev = istionames.DefaultRevision
	}
	how := "found"
	if s.Istio.InstalledByRun {
		how = "installed"
	}
	return fmt.Sprintf("%s, Kubernetes %s, Istio %s (revision %s, %s, %s data plane), trust domain %s, run %s",
		where, s.KubernetesVersion, s.Istio.Version, rev, how, s.Mode(), s.Istio.TrustDomain, s.RunID)
}

// Elapsed rounds d for people: milliseconds under a second, tenths above.
func Elapsed(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// phase runs fn between a start line and an end line with the elapsed time, and records in
// st how long it took and how much of that fn spent inside the waiter (fn's ctx is metered).
func phase(ctx context.Context, log io.Writer, st *State, name string, fn func(context.Context) error) error {
	fmt.Fprintf(log, "meshconform: %s ...\n", name)
	var waits wait.Sum
	start := time.Now()
	err := fn(wait.WithMeter(ctx, &waits))
	st.Phases = append(st.Phases, report.Measured(name, time.Since(start), waits.Summed().Wall))
	took := Elapsed(time.Since(start))
	if err != nil {
		fmt.Fprintf(log, "meshconform: %s failed after %s\n", name, took)
		var pe *preflight.Error
		if errors.As(err, &pe) {
			return err // already says "preflight: …" with every problem
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(log, "meshconform: %s done in %s\n", name, took)
	return nil
}

func runPreflight(ctx context.Context, s settings.Settings, c config, log io.Writer) error {
	o := c.preflight
	if o.Charts == nil {
		o.Charts = MeshChartCheck
	}
	results, err := preflight.Run(ctx, s, o)
	preflight.Print(log, results)
	return err
}

// MeshChartCheck is preflight's chart check through framework/mesh: the source's index lists
// base, istiod and gateway at the version, else the error names the nearest that exist.
func MeshChartCheck(ctx context.Context, s settings.Settings) error {
	inst, err := mesh.New(MeshOptions(s, State{}))
	if err != nil {
		return err
	}
	return inst.CheckVersion(ctx, s.IstioVersion)
}

// MeshOptions are framework/mesh's options for the settings, on the state's cluster. The mode
// is DATAPLANE_MODE's, or ambient where the state found an ambient mesh (the gate's in-place
// upgrade then moves istio-cni and ztunnel too).
func MeshOptions(s settings.Settings, st State) mesh.Options {
	o := mesh.Options{
		Version:   s.IstioVersion,
		Revision:  s.IstioRevision,
		ChartRepo: s.ChartRepo,
		ChartDir:  s.ChartDir,
		Hub:       s.Hub,
		NoGateway: s.NoGateway,
		Ambient:   s.Ambient() || st.Istio.DataplaneMode == settings.ModeAmbient,
		Timeout:   s.InstallTimeout,
		// DATAPLANE=0 in ambient: no ztunnel or install-cni image is there to run (e.g. istiod
		// built from source), so the node agents are not installed: istiod in the ambient
		// profile and the Gateway API alone, for the control-plane specs.
		NoNodeAgents: s.NoDataPlane,
		// INGRESS_API=gateway-api needs the Gateway API's CRDs in either mode: a run that
		// installs Istio puts them in when the cluster has none (and removes only those).
		GatewayAPI: s.IngressAPI == settings.IngressGatewayAPI,
		Kubeconfig: st.Kubeconfig,
		Context:    st.Context,
		RunID:      st.RunID,
	}
	if s.NoPull {
		// IMAGE_PULL=0 holds for the nodes too: istiod and every injected proxy and init
		// container get imagePullPolicy Never (the chart's global.imagePullPolicy, used by
		// templates/deployment.yaml and files/injection-template.yaml at release-1.30 and
		// release-1.31), so a missing image is ErrImageNeverPull, never a registry lookup.
		o.Values = map[mesh.Chart]map[string]any{mesh.ChartIstiod: {"global": map[string]any{"imagePullPolicy": "Never"}}}
		if o.Ambient {
			// The node agents' charts read the same value: istio-cni/templates/daemonset.yaml:98-99
			// (`.Values.pullPolicy | default .Values.global.imagePullPolicy`) and
			// ztunnel/templates/daemonset.yaml:78-79 (`.Values.imagePullPolicy`, global.* being
			// flattened to the top level by templates/zzz_profile.yaml), release-1.31.
			for _, c := range []mesh.Chart{mesh.ChartCNI, mesh.ChartZtunnel} {
				o.Values[c] = map[string]any{"global": map[string]any{"imagePullPolicy": "Never"}}
			}
		}
	}
	return o
}

func bringUpCluster(ctx context.Context, s settings.Settings, c config, log io.Writer, st *State) (*cluster.Kind, error) {
	if s.Existing() {
		a, err := cluster.Attach(ctx, s.Kubeconfig, s.KubeContext, 0)
		if err != nil {
			return nil, err
		}
		st.Kubeconfig = s.Kubeconfig
		if st.Kubeconfig == "" {
			// Pin what client-go's default rules found, so other processes read the same.
			st.Kubeconfig = strings.Join(clientcmd.NewDefaultClientConfigLoadingRules().GetLoadingPrecedence(), string(filepath.ListSeparator))
		}
		st.Context, st.Server, st.KubernetesVersion = a.Context, a.Server, a.ServerVersion
		fmt.Fprintf(log, "  attached to context %s (%s), Kubernetes %s; nothing at cluster level will be created or deleted\n",
			a.Context, a.Server, a.ServerVersion)
		if err := CheckSuitePermissions(ctx, a); err != nil {
			return nil, err
		}
		return nil, nil
	}
	cfg, err := cluster.LoadKindConfig(s.KindConfig)
	if err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(st.RunDir, "kubeconfig")
	kind := cluster.NewKind(s.ClusterName,
		cluster.WithNodeImage(s.NodeImage),
		cluster.WithConfig(cfg),
		cluster.WithKubeconfigPath(kubeconfig),
		cluster.WithReuse(s.ReuseCluster),
		cluster.WithLog(log),
		cluster.WithWaitReady(c.readyTimeout),
		cluster.WithPreloader(preloaderFor(s, *st, log)),
	)
	st.ClusterName = s.ClusterName
	_, err = kind.Create(ctx)
	st.CreatedCluster = kind.Created()
	if err != nil {
		return nil, err
	}
	if st.CreatedCluster {
		st.NodeImage = s.NodeImage
	}
	st.Kubeconfig, st.Context = kubeconfig, kind.GetKubectlContext()
	rc := kind.KubernetesRestConfig()
	st.Server = rc.Host
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	if err := cluster.WaitReady(ctx, kube, c.readyTimeout); err != nil {
		return nil, err
	}
	if st.KubernetesVersion, err = cluster.ServerVersion(ctx, rc, 0); err != nil {
		return nil, err
	}
	// A fixed hostPort comes from the config; a hostPort of 0 (kind picks a free one, e.g.
	// because 30080 is taken on this machine) is read back from Docker.
	for _, m := range []struct {
		port int32
		addr *string
	}{{kindmanifests.IngressHTTPNodePort, &st.IngressHTTP}, {kindmanifests.IngressHTTPSNodePort, &st.IngressHTTPS}} {
		addr, err := cfg.IngressAddress(ctx, cluster.Docker{}, s.ClusterName, m.port)
		if err != nil {
			fmt.Fprintf(log, "  warning: the ingress's nodePort %d has no known host address: %v\n", m.port, err)
		}
		*m.addr = addr
	}
	fmt.Fprintf(log, "  kind cluster %s, Kubernetes %s, kubeconfig %s\n", s.ClusterName, st.KubernetesVersion, kubeconfig)
	return kind, nil
}

// preloaderFor is the kind preload of a run: archives under the run directory, progress on
// log, and no pull on the host with IMAGE_PULL=0.
func preloaderFor(s settings.Settings, st State, log io.Writer) cluster.Preloader {
	return cluster.Preloader{Dir: filepath.Join(st.RunDir, "images"), Log: log, NoPull: s.NoPull}
}

// IstioImages are the images an Istio install at the settings' version runs: istiod (pilot)
// and the proxy (sidecars and the gateway), derived by framework/mesh from the global.hub it
// gives the istiod chart, so that the images preloaded are the images pulled. With
// DATAPLANE_MODE=ambient they are read from what the charts render (mesh.RenderedImages of
// istiod, cni and ztunnel: the ambient profile's -distroless variant, install-cni and ztunnel
// besides pilot and proxyv2), which loads the charts from their source. Without a data plane
// (DATAPLANE=0) no proxy runs, so the proxy image is not wanted.
func IstioImages(ctx context.Context, s settings.Settings) ([]string, error) {
	var imgs []string
	var err error
	if o := MeshOptions(s, State{}); o.Ambient {
		var in *mesh.Installer
		if in, err = mesh.New(o); err == nil {
			charts := []mesh.Chart{mesh.ChartIstiod}
			if !o.NoNodeAgents {
				charts = append(charts, mesh.ChartCNI, mesh.ChartZtunnel)
			}
			imgs, err = in.RenderedImages(ctx, charts...)
		}
	} else {
		imgs, err = o.Images()
	}
	// No pod runs the proxy image under DATAPLANE=0 (injected pods never start), nor in the
	// proxyless mode with ISTIO_AGENT_IMAGE (its pods run pilot-agent from that image, and no
	// sidecar-template pod is deployed): a source build has no proxyv2 to load.
	if err != nil || (!s.NoDataPlane && !(s.Proxyless() && s.AgentImage != "")) {
		return imgs, err
	}
	return slices.DeleteFunc(imgs, func(img string) bool { return strings.Contains(img, "/proxyv2:") }), nil
}

// baselineImages are the images of the baseline's two samples, the plain client and httpbin
// (suites/internal/e2e's runBaseline), which most behaviours run too.
func baselineImages() ([]string, error) {
	return workload.ImagesOf(workload.PlainClient, workload.Httpbin)
}

// OptionalImages are the images of Images a run can do without: the samples' images but the
// baseline's. One missing on an air-gapped host (mysql: no build here) fails only the specs
// that deploy it.
func OptionalImages() []string {
	core, _ := baselineImages()
	var out []string
	for _, img := range workload.Images() {
		if !slices.Contains(core, img) {
			out = append(out, img)
		}
	}
	return out
}

// Images is every image to preload into kind nodes for the settings.
func Images(ctx context.Context, s settings.Settings, extra ...string) ([]string, error) {
	var imgs []string
	// ISTIO_INSTALL=no and none install nothing, so Istio's images would be preloaded for no one
	// (and an air-gapped host that lacks them would stop the run for nothing).
	if s.Install != settings.InstallNo && !s.NoMesh() {
		var err error
		if imgs, err = IstioImages(ctx, s); err != nil {
			return nil, err
		}
	}
	switch {
	case s.NoMesh():
		// Without Istio only the baseline runs: its two samples are all the run deploys.
		core, err := baselineImages()
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, core...)
	default:
		imgs = append(imgs, workload.Images()...)
		if s.AgentImage != "" {
			// The grpc-agent pods' pilot-agent (ISTIO_AGENT_IMAGE): required, as istiod's is.
			imgs = append(imgs, s.AgentImage)
		}
		if s.EchoImage != "" {
			// The proxyless samples' echo server and client (ISTIO_ECHO_IMAGE).
			imgs = append(imgs, s.EchoImage)
		}
	}
	imgs = append(imgs, extra...)
	slices.Sort(imgs)
	return slices.Compact(imgs), nil
}

func preload(ctx context.Context, kind *cluster.Kind, s settings.Settings, c config, log io.Writer) error {
	imgs, err := Images(ctx, s, c.images...)
	if err != nil {
		return err
	}
	var required, optional []string
	opt := OptionalImages()
	for _, img := range imgs {
		if slices.Contains(opt, img) {
			optional = append(optional, img)
		} else {
			required = append(required, img)
		}
	}
	res, err := kind.PreloadSome(ctx, required, optional)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "  %d images: %d pulled on the host, %d present on the host (not pulled), %d loads into nodes, %d already everywhere",
		len(imgs), len(res.Pulled), len(res.OnHost), len(res.Loaded), len(res.Present))
	if n := len(res.NotLoaded); n > 0 {
		// Each was logged as a warning; the nodes pull these themselves.
		fmt.Fprintf(log, ", %d not loaded (the nodes will pull them)", n)
	}
	if n := len(res.Unavailable); n > 0 {
		fmt.Fprintf(log, ", %d optional unavailable (%s: the specs deploying them fail unless the nodes can pull them)", n, strings.Join(res.Unavailable, ", "))
	}
	fmt.Fprintln(log)
	return nil
}

// IstioPlan is what to do about Istio.
type IstioPlan string

const (
	// UseFound runs against the istiod already there (after waiting for it to be ready).
	UseFound IstioPlan = "use"
	// Install installs ISTIO_VERSION (or upgrades the release in place).
	Install IstioPlan = "install"
)

// PlanIstio decides from the settings and the control planes found. ISTIO_INSTALL=auto
// installs on kind unless that version is already there, and only detects on KUBE_CONTEXT;
// yes always installs; no never does. A detected version that differs from an ISTIO_VERSION
// the user gave is an error rather than a silent test of something else.
func PlanIstio(s settings.Settings, found []mesh.ControlPlane) (IstioPlan, *mesh.ControlPlane, error) {
	match := matchRevision(found, s.IstioRevision)
	detectOnly := s.Install == settings.InstallNo || (s.Install == settings.InstallAuto && s.Existing())
	switch {
	case s.Install == settings.InstallYes:
		return Install, match, nil
	case !detectOnly:
		if match != nil && match.Version == s.IstioVersion {
			return UseFound, match, nil
		}
		return Install, match, nil
	case match == nil:
		return "", nil, noIstiod(s, found)
	case slices.Contains(s.Given, "ISTIO_VERSION") && match.Version != s.IstioVersion:
		return "", match, fmt.Errorf("the cluster runs Istio %s (%s) but ISTIO_VERSION=%s: unset ISTIO_VERSION to test what is installed, or set ISTIO_INSTALL=yes to upgrade it",
			orUnknown(match.Version), match, s.IstioVersion)
	}
	return UseFound, match, nil
}

// PlanMode settles the data-plane mode against what DetectDataPlane found where an istiod
// was found (plan UseFound). Where the run only detects (KUBE_CONTEXT, ISTIO_INSTALL=no) the
// found mode is the run's, and a DATAPLANE_MODE the user gave that disagrees is an error,
// never a run of the other mode under its name. Where the run may install (a kind cluster
// reused with that Istio already there), the found mode must be the one asked for: ambient
// asked of a sidecar mesh installs (istio-cni and ztunnel join it), sidecar asked of an
// ambient mesh is an error (meshconform does not remove a data plane it finds).
func PlanMode(s settings.Settings, plan IstioPlan, found mesh.DataPlaneFound) (IstioPlan, string, error) {
	detectOnly := s.Install == settings.InstallNo || (s.Install == settings.InstallAuto && s.Existing())
	if plan != UseFound || found.Mode == s.Mode() {
		return plan, cmp.Or(found.Mode, s.Mode()), nil
	}
	if found.Mode == settings.InstalledMode(s.Mode()) {
		// Proxyless runs on the sidecar mode's install: detection cannot tell them apart, and
		// the mode given is the run's.
		return plan, s.Mode(), nil
	}
	if detectOnly && !s.ModeGiven() {
		return plan, found.Mode, nil
	}
	if !detectOnly && s.Ambient() {
		return Install, s.Mode(), nil
	}
	fix := "unset DATAPLANE_MODE to test the mode found, or point KUBE_CONTEXT at a mesh of that mode"
	if !s.Existing() {
		fix = "set DATAPLANE_MODE=" + found.Mode + ", or delete the cluster (make e2e-delete) to install the other mode"
	}
	return "", "", fmt.Errorf("the cluster's mesh runs the %s data plane (%s) but DATAPLANE_MODE=%s: %s", found.Mode, found, s.Mode(), fix)
}

func matchRevision(found []mesh.ControlPlane, rev string) *mesh.ControlPlane {
	for i := range found {
		if found[i].Revision == rev {
			return &found[i]
		}
	}
	return nil
}

func orUnknown(v string) string {
	if v == "" {
		return "of unknown version"
	}
	return v
}

func noIstiod(s settings.Settings, found []mesh.ControlPlane) error {
	if len(found) > 0 {
		var revs []string
		for _, f := range found {
			r := f.Revision
			if r == "" {
				r = `"" (default)`
			}
			revs = append(revs, r)
		}
		return fmt.Errorf("no istiod of revision %q (found revisions %s): set ISTIO_REVISION to one of them, or ISTIO_INSTALL=yes to install %s",
			s.IstioRevision, strings.Join(revs, ", "), s.IstioVersion)
	}
	if s.Existing() {
		return fmt.Errorf("no istiod found in %s; install Istio or unset KUBE_CONTEXT to let the suite create a kind cluster (or set ISTIO_INSTALL=yes to install Istio %s on context %s)",
			mesh.DefaultNamespace, s.IstioVersion, s.KubeContext)
	}
	return fmt.Errorf("no istiod found in %s and ISTIO_INSTALL=no: set ISTIO_INSTALL=auto to install Istio %s, or ISTIO_INSTALL=none to check the cluster alone (the baseline; every behaviour is left out)", mesh.DefaultNamespace, s.IstioVersion)
}

func bringUpIstio(ctx context.Context, s settings.Settings, c config, log io.Writer, st *State) error {
	kube, err := st.Kube()
	if err != nil {
		return err
	}
	found, err := mesh.Detect(ctx, kube)
	if err != nil {
		return err
	}
	for _, f := range found {
		fmt.Fprintf(log, "  found %s\n", f)
	}
	if c.noIstioBefore != "" && len(found) > 0 {
		return NoIstioBeforeError(c.noIstioBefore, *st, found)
	}
	plan, cp, err := PlanIstio(s, found)
	if err != nil {
		return err
	}
	mode := s.Mode()
	if plan == UseFound {
		dp, err := mesh.DetectDataPlane(ctx, kube, cp.Namespace)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "  found %s\n", dp)
		if plan, mode, err = PlanMode(s, plan, dp); err != nil {
			return err
		}
	}
	logger := slog.New(slog.NewTextHandler(indent{log}, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	switch plan {
	case Install:
		o := MeshOptions(s, *st)
		o.Logger = logger
		inst, err := mesh.New(o)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "  installing Istio %s from %s\n", s.IstioVersion, chartSource(s))
		st.Istio.InstalledByRun = true
		if cp != nil {
			st.Istio.Replaced = orUnknown(cp.Version)
		}
		st.Istio.CRDsBefore = istioCRDsPresent(kube)
		if err := inst.Install(ctx); err != nil {
			return err
		}
		if found, err = mesh.Detect(ctx, kube); err != nil {
			return err
		}
		if cp = matchRevision(found, s.IstioRevision); cp == nil {
			return fmt.Errorf("installed Istio %s, but no istiod of revision %q is found (label %s)", s.IstioVersion, s.IstioRevision, istionames.IstiodSelector)
		}
		// What was installed is read back like a found mesh's: the mode must be the one asked.
		dp, err := mesh.DetectDataPlane(ctx, kube, cp.Namespace)
		if err != nil {
			return err
		}
		if o.Ambient && o.NoNodeAgents {
			// No ztunnel to decide the mode by: the install itself was ambient's.
			fmt.Fprintf(log, "  ambient without node agents (DATAPLANE=0): istio-cni and ztunnel not installed\n")
		} else if dp.Mode != settings.InstalledMode(mode) {
			return fmt.Errorf("installed Istio %s with DATAPLANE_MODE=%s, but the cluster shows the %s data plane (%s): a ztunnel DaemonSet decides it; remove the one left from an earlier install, or set DATAPLANE_MODE=%s", s.IstioVersion, mode, dp.Mode, dp, dp.Mode)
		}
	case UseFound:
		fmt.Fprintf(log, "  using %s\n", cp)
		webhook := cp.InjectorWebhookName()
		checks := []mesh.Check{mesh.DeploymentRolledOut(kube, cp.Namespace, cp.Deployment), mesh.WebhookHasCABundle(kube, webhook)}
		what := "istiod"
		if mode == settings.ModeAmbient {
			// The node proxy found beside istiod must serve before any ambient pod can.
			checks = append(checks, mesh.DaemonSetRolledOut(kube, cp.Namespace, mesh.ZtunnelDaemonSet))
			what = "istiod and ztunnel"
		}
		// ISTIO_INSTALL_TIMEOUT bounds it, as it bounds each install step's readiness.
		if err := mesh.WaitFor(ctx, s.InstallTimeout, what, logger, checks...); err != nil {
			return err
		}
	}
	st.Istio.DataplaneMode = mode
	st.Istio.Version, st.Istio.Revision, st.Istio.Namespace = cp.Version, cp.Revision, cp.Namespace
	st.Istio.TrustDomain, st.Istio.RootNamespace = cp.TrustDomain, cp.RootNamespace
	return nil
}

func chartSource(s settings.Settings) string {
	if s.ChartDir != "" {
		return s.ChartDir
	}
	return s.ChartRepo
}

// indent prefixes mesh's log lines so they read as part of the istio phase.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := i.w.Write(append([]byte("  "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// Down ends the run. On an existing cluster it removes nothing at cluster level. A kind
// cluster the run reused is left as found. One it created is deleted unless KEEP_CLUSTER
// keeps it for this outcome; what is left is printed with a command that removes it. It runs
// on a fresh context bounded by the cleanup timeout, so a cancelled ctx (Ctrl-C) still cleans up.
func Down(ctx context.Context, st State, outcome Outcome, log io.Writer, opts ...Option) error {
	c := configure(opts)
	if log == nil {
		log = io.Discard
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cleanupTimeout)
	defer cancel()
	for _, line := range leftovers(st) {
		fmt.Fprintf(log, "meshconform: %s\n", line)
	}
	if UninstallsOnDown(st) {
		if err := uninstall(ctx, st, log); err != nil {
			return err
		}
	} else if c.reusedRevisions != nil && UninstallsFromReused(st) {
		// The namespaces the run's suites kept across phases (the upgrade suite's workloads)
		// are deleted beside the uninstall, and waited for after it: the uninstall removes only
		// the namespaces the install created.
		// A namespace that could not be deleted does not stop the uninstall: each error says
		// what is left.
		kept, nsErr := startRunNamespacesDeletion(ctx, st)
		now := c.reusedRevisions()
		for _, rev := range slices.Sorted(maps.Keys(now.Others)) {
			if rev == st.Istio.Revision {
				continue
			}
			if err := uninstallRevision(ctx, st, rev, now.Others[rev], log); err != nil {
				return errors.Join(err, nsErr)
			}
		}
		own := st
		if now.Version != "" {
			own.Settings.IstioVersion = now.Version
		}
		if err := uninstall(ctx, own, log); err != nil {
			return errors.Join(err, nsErr)
		}
		if nsErr != nil {
			return nsErr
		}
		if err := waitRunNamespaces(ctx, st, kept, log); err != nil {
			return err
		}
	}
	switch {
	case st.Existing || st.ClusterName == "":
		return nil
	case !st.CreatedCluster:
		fmt.Fprintf(log, "meshconform: kind cluster %s was reused and is left as found; remove it with: %s\n",
			st.ClusterName, cluster.DeleteCommand(st.ClusterName))
		return nil
	case Keep(st.Settings.KeepCluster, outcome):
		if ok, err := cluster.KindClusterExists(st.ClusterName); err == nil && !ok {
			fmt.Fprintf(log, "meshconform: kind cluster %s does not exist (its creation failed); nothing left\n", st.ClusterName)
			return nil
		}
		for _, line := range KeptMessage(st, outcome) {
			fmt.Fprintf(log, "meshconform: %s\n", line)
		}
		return nil
	}
	start := time.Now()
	fmt.Fprintf(log, "meshconform: deleting kind cluster %s (KEEP_CLUSTER=%s, run %s) ...\n", st.ClusterName, st.Settings.KeepCluster, outcome)
	k := cluster.NewKind(st.ClusterName, cluster.WithKubeconfigPath(st.Kubeconfig))
	if err := k.Destroy(ctx); err != nil {
		return err
	}
	fmt.Fprintf(log, "meshconform: deleted kind cluster %s in %s\n", st.ClusterName, Elapsed(time.Since(start)))
	return nil
}

// KeptMessage says what was kept, why, how to use it and how to remove it.
func KeptMessage(st State, outcome Outcome) []string {
	return []string{
		fmt.Sprintf("kept kind cluster %s (KEEP_CLUSTER=%s, run %s)", st.ClusterName, st.Settings.KeepCluster, outcome),
		fmt.Sprintf("  look:    kubectl --kubeconfig %s --context %s get pods -A", st.Kubeconfig, st.Context),
		fmt.Sprintf("  rerun:   make e2e REUSE_CLUSTER=1 CLUSTER_NAME=%s LABELS=<behaviour id>", st.ClusterName),
		fmt.Sprintf("  remove:  %s", cluster.DeleteCommand(st.ClusterName)),
	}
}

// UninstallsOnDown says whether Down removes the Istio this run installed: on an existing
// cluster (KUBE_CONTEXT, ISTIO_INSTALL=yes) where no istiod of that revision was before, so that
// the cluster is left as the run found it. A mesh the run upgraded is the user's: it stays.
func UninstallsOnDown(st State) bool {
	return st.Existing && st.Istio.InstalledByRun && st.Istio.Replaced == ""
}

// UninstallsFromReused says whether st is a kind cluster the run reused (REUSE_CLUSTER=1,
// not created, not KUBE_CONTEXT) and installed Istio on: where WithUninstallFromReused has
// Down uninstall it.
func UninstallsFromReused(st State) bool {
	return !st.Existing && st.ClusterName != "" && !st.CreatedCluster && st.Istio.InstalledByRun
}

// startRunNamespacesDeletion starts deleting every namespace labelled with the run's ID except
// those Istio's install made (Uninstall removes those), and returns their names.
func startRunNamespacesDeletion(ctx context.Context, st State) (kept []string, err error) {
	hint := fmt.Sprintf("remove what is left with: kubectl --context %s delete namespace -l %s (after uninstalling Istio)", st.Context, ownership.Selector(st.RunID))
	kube, err := st.Kube()
	if err != nil {
		return nil, fmt.Errorf("deleting the namespaces of run %s: %w\n%s", st.RunID, err, hint)
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownership.Selector(st.RunID)})
	if err != nil {
		return nil, fmt.Errorf("listing the namespaces of run %s: %w\n%s", st.RunID, err, hint)
	}
	o := MeshOptions(st.Settings, st)
	for _, ns := range list.Items {
		if ns.Name != o.Namespace && ns.Name != o.GatewayNamespace && ns.Name != st.Istio.Namespace && ns.DeletionTimestamp == nil {
			kept = append(kept, ns.Name)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	if err := workload.StartDeletion(ctx, kube, kept...); err != nil {
		return nil, fmt.Errorf("deleting the namespaces of run %s (%s): %w", st.RunID, strings.Join(kept, ", "), err)
	}
	return kept, nil
}

// waitRunNamespaces waits until every namespace of the run being deleted is gone and says which
// of kept it deleted.
func waitRunNamespaces(ctx context.Context, st State, kept []string, log io.Writer) error {
	if len(kept) == 0 {
		return nil
	}
	start := time.Now()
	kube, err := st.Kube()
	if err != nil {
		return err
	}
	if _, err := workload.WaitTerminating(ctx, kube, st.RunID); err != nil {
		return fmt.Errorf("deleting the namespaces of run %s (%s): %w", st.RunID, strings.Join(kept, ", "), err)
	}
	fmt.Fprintf(log, "meshconform: deleted the run's %d namespaces left on kind cluster %s (%s); waited %s after the uninstall\n", len(kept), st.ClusterName, strings.Join(kept, ", "), Elapsed(time.Since(start)))
	return nil
}

// NoIstioBeforeError is WithNoIstioBefore's refusal: what was found and the two ways out.
func NoIstioBeforeError(who string, st State, found []mesh.ControlPlane) error {
	var cps []string
	for _, f := range found {
		cps = append(cps, f.String())
	}
	where := "context " + st.Context
	fix := "point KUBE_CONTEXT at a cluster without Istio"
	if st.ClusterName != "" {
		where = "kind cluster " + st.ClusterName
		fix = fmt.Sprintf("unset REUSE_CLUSTER to have a new cluster made, or remove this one (%s)", cluster.DeleteCommand(st.ClusterName))
	}
	return fmt.Errorf("%s on a cluster without Istio, and %s has %s: %s", who, where, strings.Join(cps, "; "), fix)
}

// uninstallRevision removes revision rev of istiod, which the run installed beside its own
// (mesh.Installer.Uninstall of a revision leaves istio-base, shared with the default revision).
func uninstallRevision(ctx context.Context, st State, rev, version string, log io.Writer) error {
	start := time.Now()
	s := st.Settings
	s.IstioRevision, s.IstioVersion = rev, cmp.Or(version, s.IstioVersion)
	fmt.Fprintf(log, "meshconform: uninstalling istiod %s (revision %s), which this run installed on context %s ...\n", s.IstioVersion, rev, st.Context)
	o := MeshOptions(s, st)
	o.Logger = slog.New(slog.NewTextHandler(indent{log}, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	in, err := mesh.New(o)
	if err == nil {
		err = in.Uninstall(ctx)
	}
	if err != nil {
		rs := st
		rs.Istio.Revision = rev
		return fmt.Errorf("uninstalling istiod revision %s, which this run installed on context %s: %w\n%s", rev, st.Context, err, strings.Join(removeCommands(rs), "\n"))
	}
	fmt.Fprintf(log, "meshconform: uninstalled istiod %s (revision %s) from context %s in %s\n", s.IstioVersion, rev, st.Context, Elapsed(time.Since(start)))
	return nil
}

// uninstall removes what the run installed on an existing cluster (mesh.Installer.Uninstall:
// the gateway, istiod, then istio-base, istiod's root-certificate ConfigMaps and the namespaces
// the install created, unless another control plane still uses them), and Istio's CRDs when
// there were none before the run. A failure says what may be left and how to remove it.
func uninstall(ctx context.Context, st State, log io.Writer) error {
	start := time.Now()
	fmt.Fprintf(log, "meshconform: uninstalling Istio %s, which this run installed on context %s ...\n", st.Settings.IstioVersion, st.Context)
	o := MeshOptions(st.Settings, st)
	o.Logger = slog.New(slog.NewTextHandler(indent{log}, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	in, err := mesh.New(o)
	if err == nil {
		var opts []mesh.UninstallOption
		if !st.Istio.CRDsBefore {
			opts = append(opts, mesh.RemoveCRDs())
		}
		err = in.Uninstall(ctx, opts...)
	}
	if err != nil {
		return fmt.Errorf("uninstalling the Istio this run installed on context %s: %w\n%s", st.Context, err, strings.Join(removeCommands(st), "\n"))
	}
	crds := "its CRDs removed (there were none before the run)"
	if st.Istio.CRDsBefore {
		crds = "Istio's CRDs kept (they were there before the run)"
	}
	fmt.Fprintf(log, "meshconform: uninstalled Istio %s from context %s in %s; %s\n", st.Settings.IstioVersion, st.Context, Elapsed(time.Since(start)), crds)
	return nil
}

// istioCRDsPresent reports whether the API server serves Istio's security API (its CRDs are
// installed); an error reads as absent.
func istioCRDsPresent(kube kubernetes.Interface) bool {
	_, err := kube.Discovery().ServerResourcesForGroupVersion("security.istio.io/v1")
	return err == nil
}

// removeCommands are the helm commands that remove what a run installed on context.
func removeCommands(st State) []string {
	o := mesh.Options{Revision: st.Istio.Revision}
	releases := o.ReleaseName(mesh.ChartIstiod)
	if st.Mode() == settings.ModeAmbient && st.Istio.Revision == "" && !st.Settings.NoDataPlane {
		// ztunnel and istio-cni before istiod, as Uninstall removes them.
		releases = o.ReleaseName(mesh.ChartZtunnel) + " " + o.ReleaseName(mesh.ChartCNI) + " " + releases
	}
	if st.Istio.Revision == "" {
		releases += " " + o.ReleaseName(mesh.ChartBase) // a revision shares base with the default
	}
	return []string{fmt.Sprintf("remove what is left with: helm --kube-context %s -n %s uninstall %s && helm --kube-context %s -n %s uninstall %s",
		st.Context, mesh.DefaultGatewayNamespace, o.ReleaseName(mesh.ChartGateway), st.Context, mesh.DefaultNamespace, releases)}
}

// leftovers are things outside a kind cluster's lifetime that the run leaves behind: a mesh it
// upgraded (the user's, so it stays at the version the run installed).
func leftovers(st State) []string {
	if !st.Existing || !st.Istio.InstalledByRun || st.Istio.Replaced == "" {
		return nil
	}
	return []string{fmt.Sprintf("Istio on context %s was upgraded by this run from %s to %s and is left at %s (it was there before the run); to return to %s, rerun with ISTIO_INSTALL=yes ISTIO_VERSION=%s",
		st.Context, st.Istio.Replaced, st.Settings.IstioVersion, st.Settings.IstioVersion, st.Istio.Replaced, st.Istio.Replaced)}
}
