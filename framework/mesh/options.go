// Package mesh installs, upgrades, detects and removes Istio with the Helm Go SDK (no helm
// binary): the charts base → istiod → gateway from Istio's chart repository, a mirror of it, or
// a local directory, each a Helm release, with values sized for a small CI runner.
package mesh

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
)

const (
	// DefaultChartRepo is Istio's official Helm chart repository, the only HTTP one that
	// holds Istio 1.31 and later (also published as OCIChartRepo). The older
	// istio-release.storage.googleapis.com/charts has no 1.31 charts and is removed entirely in
	// December 2026 (Istio 1.31's upgrade notes: no artifact is published to Google Cloud from
	// 1.31 on; its last scream test is 2026-12-08/09).
	DefaultChartRepo = "https://blob.istio.io/istio-release/charts"
	// OCIChartRepo is the same charts in an OCI registry: <OCIChartRepo>/<chart>:<version>.
	OCIChartRepo = "oci://ghcr.io/istio/release/charts"
	// DefaultHub is the registry Istio's release images are pulled from, always given to the
	// istiod chart as global.hub so that the images preloaded (Images) are the ones used.
	// The chart's own default cannot be relied on: in Istio's source
	// (manifests/charts/istio-control/istio-discovery/values.yaml, _internal_defaults_do_not_set
	// .global.hub, release-1.30 and release-1.31) it is registry.istio.io/testing, which the
	// release build rewrites (operator/scripts/update_version.sh substitutes the hub for
	// "hub: registry.istio.io/release"); Istio 1.30's published charts default to
	// registry.istio.io/release, which is being retired (issue 9). The comment on that value
	// says "Releases are published to docker hub under 'istio' project".
	DefaultHub = "docker.io/istio"
	// DefaultNamespace holds istiod and istio-base, as Istio's docs install them.
	DefaultNamespace = istionames.IstioSystemNamespace
	// DefaultGatewayNamespace holds the ingress gateway, apart from the control plane as
	// Istio's Helm docs recommend.
	DefaultGatewayNamespace = "istio-ingress"
	// DefaultTimeout bounds each step (one Helm release and its readiness); image pulls on a
	// cold kind node dominate it.
	DefaultTimeout = 5 * time.Minute

	// Environment variables read by FromEnv, and named by errors as the fix.
	EnvVersion   = "ISTIO_VERSION"
	EnvRevision  = "ISTIO_REVISION"
	EnvChartRepo = "ISTIO_CHART_REPO"
	EnvChartDir  = "ISTIO_CHART_DIR"
	EnvHub       = "ISTIO_HUB"
	EnvTimeout   = "ISTIO_INSTALL_TIMEOUT"
)

// Chart names one of the three Istio charts, as named in the chart repository.
type Chart string

const (
	ChartBase    Chart = "base"
	ChartIstiod  Chart = "istiod"
	ChartGateway Chart = "gateway"
)

// Charts is the install order; uninstall runs it backwards.
var Charts = []Chart{ChartBase, ChartIstiod, ChartGateway}

// The ambient data plane's charts, named as Istio's chart repository names them (`helm install
// istio-cni istio/cni`, `helm install ztunnel istio/ztunnel`). They are not in Charts (which
// every install needs): with Options.Ambient, Install and Upgrade apply them after istiod, and
// Uninstall removes them before it.
const (
	ChartCNI     Chart = "cni"
	ChartZtunnel Chart = "ztunnel"
)

// DaemonSet names the charts give the node agents (their readiness): the cni chart's
// `istio-cni-node` (istio-cni/templates/daemonset.yaml:22, release-1.31) and ztunnel's
// `resourceName | default "ztunnel"` (ztunnel/templates/_helpers.tpl).
const (
	CNIDaemonSet     = "istio-cni-node"
	ZtunnelDaemonSet = "ztunnel"
)

// AmbientCharts are the charts of an ambient install in Istio's documented order (base →
// Gateway API CRDs, which are not a chart → istiod → cni → ztunnel), each with profile=ambient
// but base (Options.Ambient).
var AmbientCharts = []Chart{ChartBase, ChartIstiod, ChartCNI, ChartZtunnel}

// Options say which Istio to install and where. The zero value plus a Version is usable:
// New fills in the defaults.
type Options struct {
	// Version is the Istio release, e.g. 1.31.1 (required).
	Version string
	// Revision is the control-plane revision ("" = the default revision). A revision installs
	// istiod-<rev> and istio-ingressgateway-<rev> beside an existing control plane (canary).
	Revision string
	// ChartRepo is the Helm repository URL (index.yaml + packaged charts), or an OCI
	// repository oci://host/path holding <chart>:<version> (a loopback host is spoken to over
	// plain HTTP); default DefaultChartRepo. Point it at a mirror when the official one is
	// not reachable.
	ChartRepo string
	// ChartDir, when set, replaces ChartRepo: a directory holding the charts as base/, istiod/,
	// gateway/ (unpacked) or base-<version>.tgz, istiod-<version>.tgz, gateway-<version>.tgz
	// (what `helm pull` writes). For air-gapped machines and tests.
	ChartDir string
	// Hub is the registry of Istio's images, given to the istiod chart as global.hub;
	// default DefaultHub. Point it at a mirror of docker.io/istio.
	Hub string
	// Namespace holds istio-base and istiod; default istio-system.
	Namespace string
	// GatewayNamespace holds the ingress gateway; default istio-ingress.
	GatewayNamespace string
	// NoGateway leaves the gateway chart out of Install and Upgrade (base and istiod only).
	NoGateway bool
	// Ambient renders istiod, cni and ztunnel with Istio's ambient profile (`profile: ambient`,
	// the charts' files/profile-ambient.yaml: PILOT_ENABLE_AMBIENT on istiod, ambient.enabled
	// on the node agent, and global.variant distroless, so every image gets a -distroless tag;
	// RenderedImages lists them, Images refuses), and Install and Upgrade install cni and
	// ztunnel after istiod (DATAPLANE_MODE=ambient).
	Ambient bool
	// NoNodeAgents, with Ambient, leaves istio-cni and ztunnel out of Install and Upgrade:
	// istiod in the ambient profile and the Gateway API only, for a cluster that can run no
	// node agent (the live tier, which has no ztunnel or install-cni image).
	NoNodeAgents bool
	// GatewayAPI installs the Gateway API's CRDs (framework/gatewayapi: standard channel,
	// gatewayapi.Version) after base and before istiod when the cluster has none; Ambient
	// implies it (waypoints are Gateway objects; istio.io docs/ambient/install/helm: base →
	// Gateway API CRDs → istiod → cni → ztunnel).
	GatewayAPI bool
	// Values are merged over DefaultValues per chart (maps merge key by key; anything else,
	// lists included, replaces).
	Values map[Chart]map[string]any
	// Timeout bounds each step: one Helm action and the readiness wait after it.
	Timeout time.Duration
	// Kubeconfig is a kubeconfig file path ("" = $KUBECONFIG or ~/.kube/config); Context is a
	// context in it ("" = its current context).
	Kubeconfig, Context string
	// RunID, when set, labels the namespaces this package creates (ownership labels), so that
	// Uninstall removes only namespaces it made.
	RunID string
	// Logger receives progress: each step, and what a wait is still waiting for whenever
	// that changes. Nil discards.
	Logger *slog.Logger
}

// withDefaults returns o with every empty field that has a default filled in.
func (o Options) withDefaults() Options {
	if o.ChartRepo == "" && o.ChartDir == "" {
		o.ChartRepo = DefaultChartRepo
	}
	if o.Hub == "" {
		o.Hub = DefaultHub
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.GatewayNamespace == "" {
		o.GatewayNamespace = DefaultGatewayNamespace
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// validate checks what can be checked without a cluster or a network.
func (o Options) validate() error {
	if o.Version == "" {
		return fmt.Errorf("no Istio version given: set %s (e.g. 1.31.1)", EnvVersion)
	}
	if _, err := ParseVersion(o.Version); err != nil {
		return err
	}
	if o.Revision != "" && (!ownership.IsDNSLabel(o.Revision) || len(o.Revision) > 40) {
		// istiod-<rev> and istio-sidecar-injector-<rev>-<ns> must stay valid object names.
		return fmt.Errorf("istio revision %q must be a DNS label of at most 40 characters ([a-z0-9-]), e.g. 1-31-1 or canary: set %s", o.Revision, EnvRevision)
	}
	if o.Revision == istionames.DefaultRevision {
		return fmt.Errorf(`istio revision "default" is the name Istio gives the unrevisioned control plane: leave %s empty for it, or pick another name`, EnvRevision)
	}
	for _, ns := range []string{o.Namespace, o.GatewayNamespace} {
		if !ownership.IsDNSLabel(ns) {
			return fmt.Errorf("namespace %q is not a valid namespace name", ns)
		}
	}
	if IsOCI(o.ChartRepo) {
		if err := validOCIRef(o.ChartRepo); err != nil {
			return fmt.Errorf("chart repository %q %v: set %s to an OCI repository like %s", o.ChartRepo, err, EnvChartRepo, OCIChartRepo)
		}
	} else if o.ChartRepo != "" && !strings.HasPrefix(o.ChartRepo, "http://") && !strings.HasPrefix(o.ChartRepo, "https://") {
		return fmt.Errorf("chart repository %q is neither an http(s) URL nor an oci:// reference: set %s to a Helm repository (the directory that holds index.yaml, like %s), an OCI repository (like %s), or %s to a local chart directory", o.ChartRepo, EnvChartRepo, DefaultChartRepo, OCIChartRepo, EnvChartDir)
	}
	for c := range o.Values {
		if !knownChart(c) {
			return fmt.Errorf("values for unknown chart %q: use %s, %s, %s, %s or %s", c, ChartBase, ChartIstiod, ChartGateway, ChartCNI, ChartZtunnel)
		}
	}
	return nil
}

func knownChart(c Chart) bool {
	for _, k := range Charts {
		if c == k {
			return true
		}
	}
	return c == ChartCNI || c == ChartZtunnel
}

// Release names, as Istio's Helm docs use them; a revision suffixes istiod and the gateway
// (istio-base is shared by every revision).
func (o Options) ReleaseName(c Chart) string {
	switch c {
	case ChartBase:
		return "istio-base"
	case ChartIstiod:
		return suffix("istiod", o.Revision)
	case ChartGateway:
		return suffix("istio-ingressgateway", o.Revision)
	case ChartCNI:
		return "istio-cni"
	case ChartZtunnel:
		// Not suffixed, ever: istiod trusts the node proxy by this name in its own namespace
		// (istio-discovery/templates/deployment.yaml, CA_TRUSTED_NODE_ACCOUNTS =
		// <trustedZtunnelNamespace or release namespace>/<trustedZtunnelName or "ztunnel">), and
		// the chart names its objects `resourceName | default "ztunnel"` (ztunnel/templates/
		// _helpers.tpl), not after the release; the name keeps the two telling the same story.
		return "ztunnel"
	}
	return string(c)
}

// ReleaseNamespace is where the release of c lives: istiod's namespace for all but the gateway
// (cni and ztunnel included: istiod trusts ztunnel in its own namespace, see ReleaseName).
func (o Options) ReleaseNamespace(c Chart) string {
	if c == ChartGateway {
		return o.GatewayNamespace
	}
	return o.Namespace
}

// InjectorWebhookName is the sidecar injector's MutatingWebhookConfiguration of the revision,
// whose caBundle istiod fills in when it starts: istio-sidecar-injector[-<rev>] in
// istio-system, and istio-sidecar-injector[-<rev>]-<namespace> elsewhere, as Istio's chart
// names it (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml,
// release-1.30 and release-1.31 alike). An empty Namespace means DefaultNamespace.
func (o Options) InjectorWebhookName() string {
	name := suffix(istionames.SidecarInjectorWebhook, o.Revision)
	if o.Namespace == "" || o.Namespace == DefaultNamespace {
		return name
	}
	return name + "-" + o.Namespace
}

// IstiodDeploymentName is istiod's Deployment of the revision.
func (o Options) IstiodDeploymentName() string { return suffix(istionames.Istiod, o.Revision) }

// GatewayDeploymentName is the gateway chart's Deployment (named after the release).
func (o Options) GatewayDeploymentName() string { return o.ReleaseName(ChartGateway) }

// MeshConfigMapName holds the mesh config (key "mesh") of the revision.
func (o Options) MeshConfigMapName() string { return suffix(istionames.MeshConfigMap, o.Revision) }

func suffix(name, rev string) string {
	if rev == "" {
		return name
	}
	return name + "-" + rev
}
