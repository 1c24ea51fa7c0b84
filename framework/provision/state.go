package provision

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/report"
	"meshconform/framework/settings"
)

// StateEnv names the state file a driver (scripts/e2e) wrote after Up: a suite that finds it
// uses that cluster and mesh instead of bringing up its own, and leaves them to the driver.
const StateEnv = "MESHCONFORM_STATE"

// SuitesStartedEnv is set by a driver that runs the suites and ends the run after them
// (scripts/e2e run): when it started `go tool ginkgo` (RFC 3339, nanoseconds). The suite
// measures its compile phase from it, and leaves the closing table to the driver, which prints
// it after the cleanup, with the cleanup's time and the run's total added to the report.
const SuitesStartedEnv = "MESHCONFORM_SUITES_STARTED"

// State is what Up brought up, for the specs and for Down. It carries no credentials: the
// kubeconfig stays a file (0600, in RunDir for kind clusters).
type State struct {
	RunID string `json:"runID"`

	// Kubeconfig is the file (or path list) the context is read from; Context names it.
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
	Server     string `json:"server"`

	// Existing is true when the run attached to KUBE_CONTEXT: nothing at cluster level is
	// created or deleted.
	Existing bool `json:"existing"`
	// ClusterName is the kind cluster ("" when Existing); CreatedCluster says this run made it
	// (false when it was reused), so that only then Down may delete it.
	ClusterName    string `json:"clusterName,omitempty"`
	CreatedCluster bool   `json:"createdCluster"`
	NodeImage      string `json:"nodeImage,omitempty"`
	// KubernetesVersion is the API server's version (e.g. v1.37.0).
	KubernetesVersion string `json:"kubernetesVersion"`
	// IngressHTTP and IngressHTTPS are host addresses of the ingress gateway's NodePorts on a
	// kind cluster (the kind config's fixed hostPort, or the port Docker published for a
	// hostPort of 0), "" when not mapped.
	IngressHTTP  string `json:"ingressHTTP,omitempty"`
	IngressHTTPS string `json:"ingressHTTPS,omitempty"`

	Istio Istio `json:"istio"`

	// DisruptiveAllowed resolves ALLOW_DISRUPTIVE: auto allows mesh-wide specs only on a
	// cluster this run created.
	DisruptiveAllowed bool `json:"disruptiveAllowed"`

	// RunDir holds the run's own files (kubeconfig, state.json, image archives): not evidence,
	// so keep it out of uploaded artifacts.
	RunDir   string            `json:"runDir"`
	Settings settings.Settings `json:"settings"`
	// Started is when Up began: the run's total is measured from it.
	Started time.Time `json:"started"`
	// Phases are Up's phases as they ran (preflight, cluster, images, istio), each with its
	// wall time and the part inside the waiter: how the driver's time reaches the suites'
	// conformance report (the suite records them from this state).
	Phases []report.Phase `json:"phases,omitempty"`
}

// Istio is the control plane the specs run against.
type Istio struct {
	Version       string `json:"version"`
	Revision      string `json:"revision,omitempty"`
	Namespace     string `json:"namespace"`
	TrustDomain   string `json:"trustDomain"`
	RootNamespace string `json:"rootNamespace"`
	// DataplaneMode is the mesh's data-plane mode: what the run installed (DATAPLANE_MODE) or,
	// on a cluster it found, what mesh.DetectDataPlane read there. Empty in a state from
	// before the field; State.Mode reads that as sidecar.
	DataplaneMode string `json:"dataplaneMode,omitempty"`
	// InstalledByRun says this run installed (or upgraded) it; false when it was found.
	InstalledByRun bool `json:"installedByRun"`
	// Replaced is the version of the istiod of this revision that the run upgraded (ISTIO_INSTALL
	// =yes over a mesh that was there); empty when the run installed where there was none.
	Replaced string `json:"replaced,omitempty"`
	// CRDsBefore says Istio's CRDs were in the cluster before the run installed: an uninstall
	// at the end keeps them then, and removes them otherwise.
	CRDsBefore bool `json:"crdsBefore,omitempty"`
}

// RESTConfig builds the client config of the state's context.
func (s State) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.Kubeconfig != "" {
		rules.Precedence = filepath.SplitList(s.Kubeconfig)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: s.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q of kubeconfig %s: %w", s.Context, s.Kubeconfig, err)
	}
	return cfg, nil
}

// Kube is a client for the run's cluster (RESTConfig's).
func (s State) Kube() (kubernetes.Interface, error) {
	rc, err := s.RESTConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// Marshal encodes the state for Ginkgo's other processes (SynchronizedBeforeSuite).
func (s State) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// UnmarshalState decodes Marshal's output.
func UnmarshalState(data []byte) (State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("run state: %w", err)
	}
	if s.Context == "" || s.RunID == "" {
		return s, fmt.Errorf("run state: no context or run id: not written by provision.Up")
	}
	return s, nil
}

// Save writes the state to path (0600: it names where credentials are).
func (s State) Save(path string) error {
	data, err := s.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// LoadState reads a state file written by Save.
func LoadState(path string) (State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("run state: %w (set by %s; written by the e2e driver)", err, StateEnv)
	}
	return UnmarshalState(data)
}

// StatePath is where the driver keeps the state of a run.
func StatePath(runDir string) string { return filepath.Join(runDir, "state.json") }

// Mode is the run's data-plane mode (Istio.DataplaneMode): sidecar for a state written before
// the mode was recorded, when sidecar was the only mode meshconform ran.
func (s State) Mode() string {
	if s.Istio.DataplaneMode == "" {
		return settings.ModeSidecar
	}
	return s.Istio.DataplaneMode
}
