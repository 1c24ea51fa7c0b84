// Package settings is the configuration of one meshconform run: environment variables (the
// Makefile passes them through) overridden by flags, parsed once, checked all at once, and
// serialisable so that Ginkgo's first process can hand it to the others.
package settings

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"meshconform"
	"meshconform/framework/cluster"
	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	kindmanifests "meshconform/manifests/kind"
)

// DefaultChartRepo is Istio's official Helm chart repository (written once, in framework/mesh).
const DefaultChartRepo = mesh.DefaultChartRepo

// DefaultHub is where Istio's images come from (written once, in framework/mesh).
const DefaultHub = mesh.DefaultHub

// DefaultReportsDir is where reports go, relative to the module root.
const DefaultReportsDir = "reports"

// KeepPolicy says when a kind cluster the run created survives the run.
type KeepPolicy string

const (
	// KeepNever deletes the cluster the run created, whatever the outcome.
	KeepNever KeepPolicy = "never"
	// KeepOnFailure keeps it when a spec failed, so it can be inspected; deletes it on success
	// and on interrupt (Ctrl-C cleans up what the run made).
	KeepOnFailure KeepPolicy = "on-failure"
	// KeepAlways keeps it, for fast reruns with REUSE_CLUSTER=1.
	KeepAlways KeepPolicy = "always"
)

// InstallPolicy says whether the run installs Istio.
type InstallPolicy string

const (
	// InstallAuto installs ISTIO_VERSION on a kind cluster (skipped when that version is
	// already there) and only detects Istio on an existing context.
	InstallAuto InstallPolicy = "auto"
	// InstallYes installs (or upgrades to) ISTIO_VERSION even on an existing context.
	InstallYes InstallPolicy = "yes"
	// InstallNo never installs: Istio must already be there.
	InstallNo InstallPolicy = "no"
	// InstallNone runs without Istio: nothing is installed or looked for, the baseline checks
	// the cluster, and every behaviour is left out on purpose (the report names the reason).
	// It is how a new cluster, or one built offline without Istio's images, is checked alone.
	InstallNone InstallPolicy = "none"
)

// NoMesh reports whether the run has no Istio on purpose (ISTIO_INSTALL=none).
func (s Settings) NoMesh() bool { return s.Install == InstallNone }

// Toggle is a setting that can be left to the run to decide.
type Toggle string

const (
	ToggleAuto Toggle = "auto"
	ToggleOn   Toggle = "on"
	ToggleOff  Toggle = "off"
)

// Expect holds expect's variables as given; framework/expect parses them
// (MESHCONFORM_TIMEOUT, MESHCONFORM_POLL, MESHCONFORM_CONSECUTIVE).
type Expect struct {
	Timeout     string `json:"timeout,omitempty"`
	Poll        string `json:"poll,omitempty"`
	Consecutive string `json:"consecutive,omitempty"`
}

// Settings is the configuration of one run. Paths are absolute after Load.
type Settings struct {
	IstioVersion  string        `json:"istioVersion"`
	IstioRevision string        `json:"istioRevision,omitempty"`
	ChartRepo     string        `json:"chartRepo,omitempty"`
	ChartDir      string        `json:"chartDir,omitempty"`
	Hub           string        `json:"hub,omitempty"`
	Install       InstallPolicy `json:"install"`
	// InstallTimeout bounds each install step (framework/mesh's default when 0).
	InstallTimeout time.Duration `json:"installTimeout,omitempty"`
	// NoGateway installs base and istiod without the gateway chart (ISTIO_GATEWAY=0), e.g. for
	// istiod built from source (scripts/istiod-image.sh), where no proxy image exists.
	NoGateway bool `json:"noGateway,omitempty"`
	// NoDataPlane (DATAPLANE=0) leaves out, on purpose and said so in the report, the specs
	// labelled dataplane: those that need a running sidecar, gateway or ztunnel (e.g. with an
	// istiod built from source, where no proxy image exists).
	NoDataPlane bool `json:"noDataPlane,omitempty"`
	// AgentImage (ISTIO_AGENT_IMAGE) is the image the suite's grpc-agent pods run pilot-agent
	// from (annotation sidecar.istio.io/proxyImage); "" leaves the chart's proxy image, which
	// holds pilot-agent on a real release. Set, the specs that need a running pilot-agent
	// without Envoy (catalog label agent) run even under DATAPLANE=0.
	AgentImage string `json:"agentImage,omitempty"`
	// EchoImage (ISTIO_ECHO_IMAGE) is the image holding Istio's echo server and client
	// (pkg/test/echo/cmd/{server,client}; Istio's "app" image, scripts/istiod-image.sh's
	// <hub>/app:<version>): the proxyless data plane's samples. Required with
	// DATAPLANE_MODE=proxyless, preloaded into kind then.
	EchoImage string `json:"echoImage,omitempty"`
	// DataplaneMode (DATAPLANE_MODE) is the data plane the run installs or expects: ModeSidecar
	// ModeAmbient or ModeProxyless. Empty (a state file from before the setting) reads as sidecar; whether
	// the user gave it is in Given (an existing cluster's detected mode must then agree).
	DataplaneMode string `json:"dataplaneMode,omitempty"`
	// IngressAPI (INGRESS_API) is the API the ingress behaviours (INGRESS-001/002) configure
	// ingress with: IngressIstio (the gateway chart's pods, an Istio Gateway and VirtualService)
	// or IngressGatewayAPI (a Gateway API Gateway of class istio that istiod deploys per spec,
	// and HTTPRoutes). Empty (a state file from before the setting) reads as IngressIstio.
	IngressAPI string `json:"ingressAPI,omitempty"`
	// NoPull (IMAGE_PULL=0): the host never pulls an image for the preload; what it lacks is
	// reported, not fetched (air-gapped hosts, and the live tier, which must send nothing
	// off the machine).
	NoPull bool `json:"noPull,omitempty"`

	NodeImage    string     `json:"nodeImage"`
	KindConfig   string     `json:"kindConfig,omitempty"`
	ClusterName  string     `json:"clusterName"`
	ReuseCluster bool       `json:"reuseCluster"`
	KeepCluster  KeepPolicy `json:"keepCluster"`

	KubeContext string `json:"kubeContext,omitempty"`
	Kubeconfig  string `json:"kubeconfig,omitempty"`

	AllowDisruptive Toggle `json:"allowDisruptive"`
	Strict          bool   `json:"strict"`
	// SkipBaseline (BASELINE=0) runs behaviours without first checking plain reachability
	// without the mesh; negative so that a state file from before the baseline keeps it on.
	SkipBaseline bool   `json:"skipBaseline,omitempty"`
	Labels       string `json:"labels,omitempty"`
	Procs        int    `json:"procs,omitempty"`
	ReportsDir   string `json:"reportsDir"`
	Expect       Expect `json:"expect"`

	// Given lists the variables that were set (by environment or flag), so that notes can
	// mention settings that have no effect in this mode.
	Given []string `json:"given,omitempty"`
}

// ExpectConfig is the run's waiter configuration (MESHCONFORM_CONSECUTIVE, _TIMEOUT, _POLL),
// parsed by framework/expect: the one way every process of a run reads it.
func (s Settings) ExpectConfig() (expect.Config, error) {
	return expect.ParseConfig(s.Expect.Consecutive, s.Expect.Timeout, s.Expect.Poll)
}

// Existing reports whether the run uses an existing cluster (KUBE_CONTEXT): nothing is then
// created or deleted at cluster level.
func (s Settings) Existing() bool { return s.KubeContext != "" }

// Variable is one setting: its environment variable, its flag and what it means.
type Variable struct {
	Env, Flag, Default, Help string
}

// Variables documents every setting, in the order of the README table.
func Variables() []Variable {
	v := meshconform.SupportedVersions()
	return []Variable{
		{"ISTIO_VERSION", "istio-version", v.DefaultIstio(), "Istio release to install or expect, a full version (1.31.1)"},
		{"ISTIO_REVISION", "istio-revision", "", "Istio revision (canary upgrades); empty is the default revision"},
		{"ISTIO_CHART_REPO", "istio-chart-repo", DefaultChartRepo, "Helm repository (or mirror) holding base, istiod and gateway: the URL of the directory with index.yaml, or an OCI reference like " + mesh.OCIChartRepo},
		{"ISTIO_CHART_DIR", "istio-chart-dir", "", "local directory holding the charts base/, istiod/ and gateway/ (instead of a repository)"},
		{"ISTIO_HUB", "istio-hub", DefaultHub, "registry of Istio's images, always given to istiod as global.hub (and preloaded into kind from there); e.g. a mirror of " + DefaultHub},
		{"ISTIO_INSTALL", "istio-install", string(InstallAuto), "auto: install on kind, only detect on KUBE_CONTEXT; yes (1): install/upgrade even on KUBE_CONTEXT; no (0): never install, Istio must be there; none: no Istio at all, the baseline checks the cluster and every behaviour is left out (reported as such)"},
		{"ISTIO_GATEWAY", "istio-gateway", "1", "0: install base and istiod only, without the ingress gateway chart (istiod built from source: no proxyv2 image exists); specs needing the gateway cannot pass"},
		{"IMAGE_PULL", "image-pull", "1", "0: the image preload never pulls on the host: images must be there (docker load, scripts/workload-images.sh); a missing one is named, not fetched"},
		{"DATAPLANE", "dataplane", "1", "0: leave out the specs labelled dataplane (they need a running sidecar, gateway or ztunnel), e.g. with istiod built from source and no proxy image; the report counts them as left out, with the reason. With DATAPLANE_MODE=ambient, istio-cni and ztunnel are then not installed"},
		{"ISTIO_AGENT_IMAGE", "istio-agent-image", "", "image holding pilot-agent for the suite's grpc-agent pods (Istio's injection template grpc-agent: pilot-agent without Envoy), given as their annotation sidecar.istio.io/proxyImage and preloaded into kind; empty: the chart's proxy image (on a release, proxyv2 holds pilot-agent). Set, the specs labelled agent run even with DATAPLANE=0, e.g. scripts/istiod-image.sh's meshconform.local/istio/pilot-agent:<version>"},
		{EnvDataplaneMode, "dataplane-mode", ModeSidecar, "sidecar: Envoy beside each pod; ambient: ztunnel on each node (istio-cni and ztunnel installed after istiod, all with profile=ambient; the host needs the kernel modules xt_owner, ip_set and xt_set); proxyless: proxyless gRPC (Istio's echo server and client with grpc-go's xDS, pilot-agent without Envoy from the grpc-agent injection template; needs ISTIO_ECHO_IMAGE), on the same install as sidecar: only the behaviours with a proxyless analogue run, judged by gRPC outcomes. On KUBE_CONTEXT the mode is detected (proxyless runs where sidecar is found); given, it must agree"},
		{EnvIngressAPI, "ingress-api", IngressIstio, "the API INGRESS-001/002 configure ingress with: istio (the gateway chart's pods, an Istio Gateway and VirtualService) or gateway-api (per spec, a Gateway API Gateway of class istio that istiod deploys as <name>-istio, and HTTPRoutes; needs the Gateway API CRDs: a run that installs Istio puts them in when the cluster has none; not the gateway chart)"},
		{"ISTIO_ECHO_IMAGE", "istio-echo-image", "", "image holding Istio's echo server and client (/usr/local/bin/server, /usr/local/bin/client; Istio's app image), the proxyless mode's samples, preloaded into kind; required with DATAPLANE_MODE=proxyless, e.g. scripts/istiod-image.sh's meshconform.local/istio/app:<version>"},
		{"ISTIO_INSTALL_TIMEOUT", "istio-install-timeout", "5m", "bound of each install step (one chart and its readiness) and of the wait for an istiod found in the cluster, a Go duration"},
		{"K8S_NODE_IMAGE", "node-image", v.DefaultNodeImageFor(v.DefaultIstio()).Image, "kind node image (pin a digest); default: the newest in versions.yaml that ISTIO_VERSION supports"},
		{"KIND_CONFIG", "kind-config", kindmanifests.Default, "kind cluster config: single (one node), multinode (control plane + worker), offline (one node, for scripts/node-image.sh's image), or a file path"},
		{"CLUSTER_NAME", "cluster-name", cluster.DefaultName, "kind cluster name"},
		{"REUSE_CLUSTER", "reuse-cluster", "0", "1: use the kind cluster of that name when it exists (it is then never deleted)"},
		{"KEEP_CLUSTER", "keep-cluster", string(KeepOnFailure), "when the kind cluster the run created survives: always (1), on-failure, never (0)"},
		{"KUBE_CONTEXT", "kube-context", "", "use this existing cluster instead of kind: nothing is created or deleted at cluster level"},
		{"KUBECONFIG", "kubeconfig", "", "kubeconfig file(s) KUBE_CONTEXT is read from; client-go's default when empty"},
		{"ALLOW_DISRUPTIVE", "allow-disruptive", string(ToggleAuto), "mesh-wide (root namespace) specs: auto (only on a cluster the run created), 1, 0"},
		{"STRICT", "strict", "0", "1: fail on any outcome that is not the documented one"},
		{"LABELS", "labels", "", "Ginkgo label filter, e.g. MTLS-002 or 'mtls && !disruptive'; LABELS=baseline runs only the baseline"},
		{"BASELINE", "baseline", "1", "1: before any behaviour, check plain reachability without the mesh (200, refused, timed out); when it fails the cluster is blamed and no behaviour is judged. 0: run behaviours without it (the report says so)"},
		{"PROCS", "procs", "", "parallel Ginkgo processes; empty lets Ginkgo choose"},
		{"REPORTS_DIR", "reports-dir", DefaultReportsDir, "where reports, kubeconfig and run state go (relative to the module root)"},
		{"MESHCONFORM_TIMEOUT", "timeout", "", "per-expectation timeout (parsed by framework/expect)"},
		{"MESHCONFORM_POLL", "poll", "", "poll interval (parsed by framework/expect)"},
		{"MESHCONFORM_CONSECUTIVE", "consecutive", "", "matching outcomes in a row (parsed by framework/expect)"},
	}
}

// Usage is the variables as a text table, for -h and the Makefile's help.
func Usage() string {
	var b strings.Builder
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "  %-24s --%-18s %s\n  %-24s %-20s default: %s\n", v.Env, v.Flag, v.Help, "", "", def)
	}
	return b.String()
}

// RegisterFlags adds a string flag per variable to fs. A flag given on the command line wins
// over the environment variable.
func RegisterFlags(fs *flag.FlagSet) {
	for _, v := range Variables() {
		if fs.Lookup(v.Flag) == nil {
			fs.String(v.Flag, "", v.Help+" (env "+v.Env+")")
		}
	}
}

// Lookup finds a variable's value, like os.LookupEnv.
type Lookup func(key string) (string, bool)

// FromEnvironment loads the settings from the process environment and, when RegisterFlags
// was called on it and it is parsed, flag.CommandLine.
func FromEnvironment() (Settings, error) {
	var fs *flag.FlagSet
	if flag.Parsed() {
		fs = flag.CommandLine
	}
	wd, _ := os.Getwd()
	if d := os.Getenv(WorkDirEnv); d != "" {
		wd = d
	}
	return Load(os.LookupEnv, fs, wd)
}

// WorkDirEnv is the directory relative settings are resolved from when set: the driver's, given
// to a suite binary that Ginkgo runs in the binary's own (cached, outside the tree) directory.
const WorkDirEnv = "MESHCONFORM_WORKDIR"

// Load reads every variable from env, overridden by flags set on fs (nil: none), and parses
// them. Relative paths are resolved against the module root found from workDir upwards (Ginkgo
// runs each suite in its own directory), else against workDir. All malformed values are
// reported at once, one line each, naming the variable, the value and an example.
func Load(env Lookup, fs *flag.FlagSet, workDir string) (Settings, error) {
	raw := map[string]string{}
	given := map[string]string{} // variable -> how it was given, for messages
	for _, v := range Variables() {
		if val, ok := env(v.Env); ok && val != "" {
			raw[v.Env], given[v.Env] = val, v.Env
		}
	}
	if fs != nil {
		flagVar := map[string]string{}
		for _, v := range Variables() {
			flagVar[v.Flag] = v.Env
		}
		fs.Visit(func(f *flag.Flag) {
			if envName, ok := flagVar[f.Name]; ok {
				raw[envName], given[envName] = f.Value.String(), "--"+f.Name
			}
		})
	}
	p := parser{raw: raw, given: given}
	s := p.parse()
	base := workDir
	if root, ok := ModuleRoot(workDir); ok {
		base = root
	}
	s.ReportsDir = absolute(base, s.ReportsDir)
	s.ChartDir = absolute(base, s.ChartDir)
	if s.KindConfig != "" && !isEmbeddedKindConfig(s.KindConfig) {
		s.KindConfig = absolute(base, s.KindConfig)
	}
	if s.Kubeconfig != "" {
		var paths []string
		for _, k := range filepath.SplitList(s.Kubeconfig) {
			paths = append(paths, absolute(base, k))
		}
		s.Kubeconfig = strings.Join(paths, string(filepath.ListSeparator))
	}
	for k := range given {
		s.Given = append(s.Given, k)
	}
	slices.Sort(s.Given)
	return s, errors.Join(p.errs...)
}

// isEmbeddedKindConfig tells a config name of manifests/kind from a file path.
func isEmbeddedKindConfig(s string) bool { return slices.Contains(kindmanifests.Names(), s) }

func absolute(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// ModuleRoot finds the directory of meshconform's go.mod at or above dir.
func ModuleRoot(dir string) (string, bool) {
	if dir == "" {
		return "", false
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			for line := range strings.Lines(string(data)) {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == "meshconform" {
					return d, true
				}
			}
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

type parser struct {
	raw, given map[string]string
	errs       []error
}

// bad records "NAME="value" is not …: use …".
func (p *parser) bad(name, what, fix string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q %s: %s", p.given[name], p.raw[name], what, fix))
}

func (p *parser) str(name, def string) string {
	if v, ok := p.raw[name]; ok {
		return strings.TrimSpace(v)
	}
	return def
}

func (p *parser) boolean(name string, def bool) bool {
	v, ok := p.raw[name]
	if !ok {
		return def
	}
	b, ok := parseBool(v)
	if !ok {
		p.bad(name, "is not a boolean", "use 1 or 0")
	}
	return b
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on", "y":
		return true, true
	case "0", "false", "no", "off", "n":
		return false, true
	}
	return false, false
}

var (
	// At most 40: istiod-<rev> and istio-sidecar-injector-<rev>-<ns> must stay valid names.
	revisionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)
	// excludesBaseline spots a negated baseline label in a label filter.
	excludesBaseline = regexp.MustCompile(`!\s*\(?\s*baseline\b`)
	hubRE            = regexp.MustCompile(`^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$`)
)

// validRevision: "default" is what Istio calls the unrevisioned control plane.
func validRevision(r string) bool {
	return revisionRE.MatchString(r) && r != istionames.DefaultRevision
}

// ValidIstioVersion checks a full Istio version: what mesh.ParseVersion accepts, so a release
// (1.31.1), a pre-release (1.32.0-beta.0) or a source build's version from internal/istiosrc
// (1.31.0-dev.20260827124520), which the installer handles like any other.
func ValidIstioVersion(v string) bool {
	_, err := mesh.ParseVersion(v)
	return err == nil
}

func (p *parser) parse() Settings {
	versions := meshconform.SupportedVersions()
	s := Settings{
		IstioVersion:  p.str("ISTIO_VERSION", versions.DefaultIstio()),
		IstioRevision: p.str("ISTIO_REVISION", ""),
		ChartDir:      p.str("ISTIO_CHART_DIR", ""),
		Hub:           p.str("ISTIO_HUB", DefaultHub),
		NodeImage:     p.str("K8S_NODE_IMAGE", ""),
		KindConfig:    p.str("KIND_CONFIG", kindmanifests.Default),
		ClusterName:   p.str("CLUSTER_NAME", cluster.DefaultName),
		ReuseCluster:  p.boolean("REUSE_CLUSTER", false),
		KubeContext:   p.str("KUBE_CONTEXT", ""),
		Kubeconfig:    p.str("KUBECONFIG", ""),
		Strict:        p.boolean("STRICT", false),
		SkipBaseline:  !p.boolean("BASELINE", true),
		Labels:        p.str("LABELS", ""),
		ReportsDir:    p.str("REPORTS_DIR", DefaultReportsDir),
		Expect: Expect{
			Timeout:     p.str("MESHCONFORM_TIMEOUT", ""),
			Poll:        p.str("MESHCONFORM_POLL", ""),
			Consecutive: p.str("MESHCONFORM_CONSECUTIVE", ""),
		},
	}
	if s.NodeImage == "" {
		// Not kind's default but the newest node image this Istio release supports.
		s.NodeImage = versions.DefaultNodeImageFor(s.IstioVersion).Image
	}
	// The official repository is the default only when no local charts are given.
	if s.ChartDir == "" {
		s.ChartRepo = p.str("ISTIO_CHART_REPO", DefaultChartRepo)
	} else {
		s.ChartRepo = p.str("ISTIO_CHART_REPO", "")
	}

	if !ValidIstioVersion(s.IstioVersion) {
		p.bad("ISTIO_VERSION", "is not a release", "use a full version like "+versions.DefaultIstio())
	}
	if s.IstioRevision != "" && !validRevision(s.IstioRevision) {
		p.bad("ISTIO_REVISION", "is not a revision name", "use at most 40 lowercase letters, digits and '-' (a DNS label), not \"default\", like canary or 1-31-1")
	}
	if s.ChartRepo != "" {
		if err := checkRepoURL(s.ChartRepo); err != nil {
			p.bad("ISTIO_CHART_REPO", err.Error(), "use a Helm repository URL (the directory holding index.yaml) like "+DefaultChartRepo+", or an OCI reference like "+mesh.OCIChartRepo)
		}
	}
	if s.ChartRepo != "" && s.ChartDir != "" {
		p.errs = append(p.errs, fmt.Errorf("%s and %s are both set: set only one (a repository or a local chart directory)",
			p.given["ISTIO_CHART_REPO"], p.given["ISTIO_CHART_DIR"]))
	}
	if s.Hub != "" && !hubRE.MatchString(s.Hub) {
		p.bad("ISTIO_HUB", "is not an image registry path", "use a registry and path without scheme or tag, like docker.io/istio or a mirror of it (registry.example.com/istio)")
	}
	if r, err := cluster.ParseImageRef(s.NodeImage); err != nil || !r.Pinned() {
		p.bad("K8S_NODE_IMAGE", "is not a pinned image", "use an image with a tag (and digest), like "+versions.DefaultNodeImage().Image)
	}
	if err := cluster.ValidateName(s.ClusterName); err != nil {
		p.bad("CLUSTER_NAME", "is not a kind cluster name", "use lowercase letters, digits, '.' and '-' (at most 50), like "+cluster.DefaultName)
	}
	s.Install = p.install()
	s.NoGateway = !p.boolean("ISTIO_GATEWAY", true)
	s.NoDataPlane = !p.boolean("DATAPLANE", true)
	s.NoPull = !p.boolean("IMAGE_PULL", true)
	s.AgentImage = p.str("ISTIO_AGENT_IMAGE", "")
	if s.AgentImage != "" {
		// The grpc-agent template takes the annotation only when it holds a "/"
		// (files/grpc-agent.yaml: contains "/" (annotation … sidecar.istio.io/proxyImage …)),
		// else it falls back to the chart's proxy image.
		if r, err := cluster.ParseImageRef(s.AgentImage); err != nil || !r.Pinned() || !strings.Contains(s.AgentImage, "/") {
			p.bad("ISTIO_AGENT_IMAGE", "is not a pinned image with a repository path", "use <registry>/<path>:<tag>, like meshconform.local/istio/pilot-agent:1.31.0-dev.20260827124520 (Istio's grpc-agent template ignores a name without '/')")
		}
	}
	s.DataplaneMode = p.dataplaneMode()
	s.IngressAPI = p.ingressAPI()
	s.EchoImage = p.str("ISTIO_ECHO_IMAGE", "")
	switch {
	case s.EchoImage != "":
		if r, err := cluster.ParseImageRef(s.EchoImage); err != nil || !r.Pinned() {
			p.bad("ISTIO_ECHO_IMAGE", "is not a pinned image", "use <registry>/<path>:<tag>, like meshconform.local/istio/app:1.31.0-dev.20260827124520")
		}
	case s.DataplaneMode == ModeProxyless:
		p.bad(EnvDataplaneMode, "needs ISTIO_ECHO_IMAGE", "set it to an image holding Istio's echo server and client (the proxyless samples), like scripts/istiod-image.sh's meshconform.local/istio/app:<version>")
	}
	if v, ok := p.raw["ISTIO_INSTALL_TIMEOUT"]; ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			p.bad("ISTIO_INSTALL_TIMEOUT", "is not a positive duration", "use a Go duration like 5m or 90s")
		}
		s.InstallTimeout = d
	}
	s.KeepCluster = p.keep()
	s.AllowDisruptive = p.toggle("ALLOW_DISRUPTIVE")
	if _, err := s.ExpectConfig(); err != nil {
		p.errs = append(p.errs, err) // named and exemplified by framework/expect
	}
	if s.Labels != "" {
		if _, err := types.ParseLabelFilter(s.Labels); err != nil {
			p.bad("LABELS", "is not a Ginkgo label filter ("+firstLine(err.Error())+")", "use labels joined by &&, || and !, like 'MTLS-002' or 'mtls && !disruptive'")
		} else if excludesBaseline.MatchString(s.Labels) {
			p.bad("LABELS", "excludes the baseline spec, which would not stop the baseline: it runs before every behaviour whatever the filter",
				"to judge behaviours without it, say so with BASELINE=0 (the report then records that no baseline was run), and drop !baseline from LABELS")
		}
	}
	if v, ok := p.raw["PROCS"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 256 {
			p.bad("PROCS", "is not a process count", "use a whole number from 1 to 256, like 2 (leave it empty to let Ginkgo choose)")
		}
		s.Procs = n
	}
	if s.ReportsDir == "" {
		s.ReportsDir = DefaultReportsDir
	}
	if s.KubeContext == "" && p.given["KUBECONFIG"] == "--kubeconfig" {
		// The flag only makes sense to pick the file KUBE_CONTEXT is read from.
		p.errs = append(p.errs, fmt.Errorf("--kubeconfig=%q is set without --kube-context: name the context of the existing cluster too, like --kube-context=kind-meshconform", s.Kubeconfig))
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func checkRepoURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a URL")
	}
	switch u.Scheme {
	case "http", "https":
	case "oci":
		// framework/mesh appends /<chart>:<version> itself.
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(u.Path, ":@") {
			return errors.New("is not an OCI repository reference (no tag, digest, query or credentials)")
		}
	default:
		return errors.New("is not an http(s):// URL or an oci:// reference")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

func (p *parser) install() InstallPolicy {
	v, ok := p.raw["ISTIO_INSTALL"]
	if !ok {
		return InstallAuto
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto":
		return InstallAuto
	case "none":
		return InstallNone
	}
	b, ok := parseBool(v)
	switch {
	case !ok:
		p.bad("ISTIO_INSTALL", "is not an install policy", "use auto, yes (or 1), no (or 0), or none (no Istio: check the cluster alone)")
		return InstallAuto
	case b:
		return InstallYes
	}
	return InstallNo
}

// The data-plane modes of DATAPLANE_MODE, named as reports name them (framework/report).
const (
	EnvDataplaneMode = "DATAPLANE_MODE"
	ModeSidecar      = mesh.ModeSidecar
	ModeAmbient      = mesh.ModeAmbient
	// ModeProxyless is proxyless gRPC: grpc-go's xDS client and server in Istio's echo app,
	// pilot-agent without Envoy beside it (the grpc-agent injection template). It needs no
	// install of its own: the mesh is the sidecar mode's (istiod and its injector, no
	// ztunnel), so detection finds it as sidecar (InstalledMode).
	ModeProxyless = "proxyless"
)

// InstalledMode is the mode mesh.DetectDataPlane reports for a mesh that runs mode: proxyless
// runs on the sidecar mode's install.
func InstalledMode(mode string) string {
	if mode == ModeProxyless {
		return ModeSidecar
	}
	return mode
}

func (p *parser) dataplaneMode() string {
	v, ok := p.raw[EnvDataplaneMode]
	if !ok {
		return ModeSidecar
	}
	switch m := strings.ToLower(strings.TrimSpace(v)); m {
	case ModeSidecar, ModeAmbient, ModeProxyless:
		return m
	}
	p.bad(EnvDataplaneMode, "is not a data-plane mode", "use sidecar (the default), ambient or proxyless")
	return ModeSidecar
}

// The ingress APIs of INGRESS_API, named as reports name them (framework/report).
const (
	EnvIngressAPI     = "INGRESS_API"
	IngressIstio      = "istio"
	IngressGatewayAPI = "gateway-api"
)

func (p *parser) ingressAPI() string {
	v, ok := p.raw[EnvIngressAPI]
	if !ok {
		return IngressIstio
	}
	switch a := strings.ToLower(strings.TrimSpace(v)); a {
	case IngressIstio, IngressGatewayAPI:
		return a
	}
	p.bad(EnvIngressAPI, "is not an ingress API", "use istio (the default: the gateway chart, Istio's Gateway and VirtualService) or gateway-api (a Gateway API Gateway of class istio and HTTPRoutes)")
	return IngressIstio
}

// Ingress is the run's ingress API: IngressAPI, or IngressIstio for settings from before it.
func (s Settings) Ingress() string {
	if s.IngressAPI == "" {
		return IngressIstio
	}
	return s.IngressAPI
}

// Mode is the run's data-plane mode: DataplaneMode, or sidecar for settings from before it.
func (s Settings) Mode() string {
	if s.DataplaneMode == "" {
		return ModeSidecar
	}
	return s.DataplaneMode
}

// Ambient reports whether the run installs or expects the ambient data plane.
func (s Settings) Ambient() bool { return s.Mode() == ModeAmbient }

// Proxyless reports whether the run's data plane is proxyless gRPC.
func (s Settings) Proxyless() bool { return s.Mode() == ModeProxyless }

// ModeGiven reports whether DATAPLANE_MODE was set by the user (not the default).
func (s Settings) ModeGiven() bool { return slices.Contains(s.Given, EnvDataplaneMode) }

func (p *parser) keep() KeepPolicy {
	v, ok := p.raw["KEEP_CLUSTER"]
	if !ok {
		return KeepOnFailure
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on-failure", "onfailure", "on_failure", "failure":
		return KeepOnFailure
	case "always":
		return KeepAlways
	case "never":
		return KeepNever
	}
	if b, ok := parseBool(v); ok {
		if b {
			return KeepAlways
		}
		return KeepNever
	}
	p.bad("KEEP_CLUSTER", "is not a keep policy", "use always (or 1), on-failure or never (or 0)")
	return KeepOnFailure
}

func (p *parser) toggle(name string) Toggle {
	v, ok := p.raw[name]
	if !ok || strings.EqualFold(strings.TrimSpace(v), "auto") {
		return ToggleAuto
	}
	b, ok := parseBool(v)
	switch {
	case !ok:
		p.bad(name, "is not auto, 1 or 0", "use auto, 1 or 0")
		return ToggleAuto
	case b:
		return ToggleOn
	}
	return ToggleOff
}

// Notes are the settings that were given but have no effect in this mode, one line each.
func (s Settings) Notes() []string {
	var notes []string
	if s.Existing() {
		var ignored []string
		for _, name := range []string{"CLUSTER_NAME", "REUSE_CLUSTER", "KEEP_CLUSTER", "K8S_NODE_IMAGE", "KIND_CONFIG"} {
			if slices.Contains(s.Given, name) {
				ignored = append(ignored, name)
			}
		}
		if len(ignored) > 0 {
			notes = append(notes, fmt.Sprintf("KUBE_CONTEXT=%s is set: %s ignored (an existing cluster is neither created nor deleted)",
				s.KubeContext, strings.Join(ignored, ", ")))
		}
	}
	return notes
}

// Validate checks settings built in code the way Load checks variables, all problems at once.
func (s Settings) Validate() error {
	var errs []error
	versions := meshconform.SupportedVersions()
	if !ValidIstioVersion(s.IstioVersion) {
		errs = append(errs, fmt.Errorf("Istio version %q is not a release: use a full version like %s", s.IstioVersion, versions.DefaultIstio()))
	}
	if s.IstioRevision != "" && !validRevision(s.IstioRevision) {
		errs = append(errs, fmt.Errorf("Istio revision %q is not a revision name: use at most 40 of [a-z0-9-], not \"default\", like canary or 1-31-1", s.IstioRevision))
	}
	switch {
	case s.ChartRepo == "" && s.ChartDir == "":
		errs = append(errs, fmt.Errorf("no chart source: set ISTIO_CHART_REPO (default %s) or ISTIO_CHART_DIR", DefaultChartRepo))
	case s.ChartRepo != "" && s.ChartDir != "":
		errs = append(errs, fmt.Errorf("both ISTIO_CHART_REPO=%q and ISTIO_CHART_DIR=%q are set: set only one", s.ChartRepo, s.ChartDir))
	case s.ChartRepo != "":
		if err := checkRepoURL(s.ChartRepo); err != nil {
			errs = append(errs, fmt.Errorf("chart repository %q %v: use a URL like %s, or an OCI reference like %s", s.ChartRepo, err, DefaultChartRepo, mesh.OCIChartRepo))
		}
	}
	if !s.Existing() {
		if err := cluster.ValidateName(s.ClusterName); err != nil {
			errs = append(errs, fmt.Errorf("%v (CLUSTER_NAME)", err))
		}
		if r, err := cluster.ParseImageRef(s.NodeImage); err != nil || !r.Pinned() {
			errs = append(errs, fmt.Errorf("node image %q is not a pinned image: use one like %s (K8S_NODE_IMAGE)", s.NodeImage, versions.DefaultNodeImage().Image))
		}
	}
	switch s.KeepCluster {
	case KeepAlways, KeepNever, KeepOnFailure:
	default:
		errs = append(errs, fmt.Errorf("keep policy %q is not always, on-failure or never (KEEP_CLUSTER)", s.KeepCluster))
	}
	switch s.Install {
	case InstallAuto, InstallYes, InstallNo, InstallNone:
	default:
		errs = append(errs, fmt.Errorf("install policy %q is not auto, yes, no or none (ISTIO_INSTALL)", s.Install))
	}
	switch s.DataplaneMode {
	case "", ModeSidecar, ModeAmbient, ModeProxyless:
	default:
		errs = append(errs, fmt.Errorf("data-plane mode %q is not sidecar, ambient or proxyless (%s)", s.DataplaneMode, EnvDataplaneMode))
	}
	switch s.IngressAPI {
	case "", IngressIstio, IngressGatewayAPI:
	default:
		errs = append(errs, fmt.Errorf("ingress API %q is not istio or gateway-api (%s)", s.IngressAPI, EnvIngressAPI))
	}
	if s.ReportsDir == "" {
		errs = append(errs, fmt.Errorf("reports directory is empty: set REPORTS_DIR, like %s", DefaultReportsDir))
	}
	return errors.Join(errs...)
}

// NodeKubernetesVersion is the Kubernetes version of the node image when its tag is vX.Y.Z
// (kind's convention), else "".
func (s Settings) NodeKubernetesVersion() string {
	r, err := cluster.ParseImageRef(s.NodeImage)
	if err != nil || !strings.HasPrefix(r.Tag, "v") || !ValidIstioVersion(r.Tag[1:]) {
		return ""
	}
	return r.Tag[1:]
}

// Marshal encodes the settings for another process.
func (s Settings) Marshal() ([]byte, error) { return json.Marshal(s) }

// Unmarshal decodes settings from Marshal and checks them.
func Unmarshal(data []byte) (Settings, error) {
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	return s, s.Validate()
}
