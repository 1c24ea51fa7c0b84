package settings

import (
	"flag"
	"meshconform/internal/istiosrc"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"meshconform"
	"meshconform/framework/expect"
)

func env(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// root is a directory that looks like the module root, so relative paths resolve against it.
func root(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte("module meshconform\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDefaults(t *testing.T) {
	r := root(t)
	s, err := Load(env(nil), nil, r)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	v := meshconform.SupportedVersions()
	want := Settings{
		IstioVersion:    v.DefaultIstio(),
		ChartRepo:       DefaultChartRepo,
		Hub:             DefaultHub,
		Install:         InstallAuto,
		NodeImage:       v.DefaultNodeImageFor(v.DefaultIstio()).Image,
		KindConfig:      "single",
		ClusterName:     "meshconform",
		KeepCluster:     KeepOnFailure,
		AllowDisruptive: ToggleAuto,
		DataplaneMode:   ModeSidecar,
		IngressAPI:      IngressIstio,
		ReportsDir:      filepath.Join(r, "reports"),
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", s, want)
	}
	if s.Existing() {
		t.Error("defaults must create a kind cluster, not attach")
	}
	if got := s.NodeKubernetesVersion(); got != v.DefaultNodeImageFor(v.DefaultIstio()).Version {
		t.Errorf("NodeKubernetesVersion = %q, want %q", got, v.DefaultNodeImageFor(v.DefaultIstio()).Version)
	}
}

func TestParseValues(t *testing.T) {
	r := root(t)
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, s Settings)
	}{
		{"keep 1 is always", map[string]string{"KEEP_CLUSTER": "1"}, func(t *testing.T, s Settings) { eq(t, s.KeepCluster, KeepAlways) }},
		{"keep 0 is never", map[string]string{"KEEP_CLUSTER": "0"}, func(t *testing.T, s Settings) { eq(t, s.KeepCluster, KeepNever) }},
		{"keep on-failure", map[string]string{"KEEP_CLUSTER": "On-Failure"}, func(t *testing.T, s Settings) { eq(t, s.KeepCluster, KeepOnFailure) }},
		{"keep never", map[string]string{"KEEP_CLUSTER": "never"}, func(t *testing.T, s Settings) { eq(t, s.KeepCluster, KeepNever) }},
		{"reuse true", map[string]string{"REUSE_CLUSTER": "true"}, func(t *testing.T, s Settings) { eq(t, s.ReuseCluster, true) }},
		{"strict 1", map[string]string{"STRICT": "1"}, func(t *testing.T, s Settings) { eq(t, s.Strict, true) }},
		{"disruptive 0", map[string]string{"ALLOW_DISRUPTIVE": "0"}, func(t *testing.T, s Settings) { eq(t, s.AllowDisruptive, ToggleOff) }},
		{"disruptive yes", map[string]string{"ALLOW_DISRUPTIVE": "yes"}, func(t *testing.T, s Settings) { eq(t, s.AllowDisruptive, ToggleOn) }},
		{"install 1", map[string]string{"ISTIO_INSTALL": "1"}, func(t *testing.T, s Settings) { eq(t, s.Install, InstallYes) }},
		{"install no", map[string]string{"ISTIO_INSTALL": "no"}, func(t *testing.T, s Settings) { eq(t, s.Install, InstallNo) }},
		{"install none", map[string]string{"ISTIO_INSTALL": "None"}, func(t *testing.T, s Settings) {
			eq(t, s.Install, InstallNone)
			eq(t, s.NoMesh(), true)
		}},
		{"mesh by default", map[string]string{}, func(t *testing.T, s Settings) { eq(t, s.NoMesh(), false) }},
		{"dataplane default", map[string]string{}, func(t *testing.T, s Settings) { eq(t, s.NoDataPlane, false) }},
		{"no dataplane", map[string]string{"DATAPLANE": "0"}, func(t *testing.T, s Settings) { eq(t, s.NoDataPlane, true) }},
		{"pull default", map[string]string{}, func(t *testing.T, s Settings) { eq(t, s.NoPull, false) }},
		{"agent image default", map[string]string{}, func(t *testing.T, s Settings) { eq(t, s.AgentImage, "") }},
		{"agent image", map[string]string{"ISTIO_AGENT_IMAGE": " meshconform.local/istio/pilot-agent:1.31.0-dev.20260827124520 "}, func(t *testing.T, s Settings) {
			eq(t, s.AgentImage, "meshconform.local/istio/pilot-agent:1.31.0-dev.20260827124520")
		}},
		{"no pull", map[string]string{"IMAGE_PULL": "0"}, func(t *testing.T, s Settings) { eq(t, s.NoPull, true) }},
		{"prerelease version", map[string]string{"ISTIO_VERSION": "1.32.0-beta.0"}, func(t *testing.T, s Settings) { eq(t, s.IstioVersion, "1.32.0-beta.0") }},
		{"gateway default", map[string]string{}, func(t *testing.T, s Settings) { eq(t, s.NoGateway, false) }},
		{"no gateway", map[string]string{"ISTIO_GATEWAY": "0"}, func(t *testing.T, s Settings) { eq(t, s.NoGateway, true) }},
		// internal/istiosrc's version for a source build of a release branch, which mesh accepts.
		{"source build version", map[string]string{"ISTIO_VERSION": "1.31.0-dev.20260827124520"}, func(t *testing.T, s Settings) { eq(t, s.IstioVersion, "1.31.0-dev.20260827124520") }},
		{"install timeout", map[string]string{"ISTIO_INSTALL_TIMEOUT": "90s"}, func(t *testing.T, s Settings) { eq(t, s.InstallTimeout, 90*time.Second) }},
		{"procs", map[string]string{"PROCS": "4"}, func(t *testing.T, s Settings) { eq(t, s.Procs, 4) }},
		{"labels", map[string]string{"LABELS": "mtls && !disruptive"}, func(t *testing.T, s Settings) { eq(t, s.Labels, "mtls && !disruptive") }},
		{"chart dir replaces default repo", map[string]string{"ISTIO_CHART_DIR": "charts"}, func(t *testing.T, s Settings) {
			eq(t, s.ChartRepo, "")
			eq(t, s.ChartDir, filepath.Join(r, "charts"))
		}},
		{"mirror repo", map[string]string{"ISTIO_CHART_REPO": "http://mirror.local:8080/istio/charts"}, func(t *testing.T, s Settings) {
			eq(t, s.ChartRepo, "http://mirror.local:8080/istio/charts")
		}},
		{"oci repo", map[string]string{"ISTIO_CHART_REPO": "oci://ghcr.io/istio/release/charts"}, func(t *testing.T, s Settings) {
			eq(t, s.ChartRepo, "oci://ghcr.io/istio/release/charts")
			if err := s.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		}},
		{"oci mirror on loopback", map[string]string{"ISTIO_CHART_REPO": "oci://localhost:5000/istio/charts"}, func(t *testing.T, s Settings) {
			eq(t, s.ChartRepo, "oci://localhost:5000/istio/charts")
		}},
		{"hub mirror", map[string]string{"ISTIO_HUB": "mirror.local:5000/istio"}, func(t *testing.T, s Settings) { eq(t, s.Hub, "mirror.local:5000/istio") }},
		{"relative reports dir is under the module root", map[string]string{"REPORTS_DIR": "out/x"}, func(t *testing.T, s Settings) {
			eq(t, s.ReportsDir, filepath.Join(r, "out", "x"))
		}},
		{"kubeconfig list", map[string]string{"KUBE_CONTEXT": "c", "KUBECONFIG": "a" + string(filepath.ListSeparator) + "/abs/b"}, func(t *testing.T, s Settings) {
			eq(t, s.Kubeconfig, filepath.Join(r, "a")+string(filepath.ListSeparator)+"/abs/b")
			eq(t, s.Existing(), true)
		}},
		{"kind config name stays a name", map[string]string{"KIND_CONFIG": "multinode"}, func(t *testing.T, s Settings) { eq(t, s.KindConfig, "multinode") }},
		{"kind config path is made absolute", map[string]string{"KIND_CONFIG": "my/kind.yaml"}, func(t *testing.T, s Settings) {
			eq(t, s.KindConfig, filepath.Join(r, "my", "kind.yaml"))
		}},
		{"expect pass-through", map[string]string{"MESHCONFORM_TIMEOUT": "45s", "MESHCONFORM_POLL": "200ms", "MESHCONFORM_CONSECUTIVE": "5"}, func(t *testing.T, s Settings) {
			eq(t, s.Expect, Expect{Timeout: "45s", Poll: "200ms", Consecutive: "5"})
			c, err := s.ExpectConfig()
			eq(t, err, nil)
			eq(t, c, expect.Config{Consecutive: 5, Timeout: 45 * time.Second, Poll: 200 * time.Millisecond})
		}},
		{"empty value is the default", map[string]string{"CLUSTER_NAME": ""}, func(t *testing.T, s Settings) { eq(t, s.ClusterName, "meshconform") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(env(tc.env), nil, r)
			if err != nil {
				t.Fatalf("Load(%v): %v", tc.env, err)
			}
			tc.check(t, s)
			for k, v := range tc.env {
				if v != "" && !slices.Contains(s.Given, k) {
					t.Errorf("Given %v lacks %s", s.Given, k)
				}
			}
		})
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Every malformed value is one line naming the variable, the value given and a good example.
func TestMalformed(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"ISTIO_VERSION": "1.31"}, `ISTIO_VERSION="1.31" is not a release: use a full version like ` + meshconform.SupportedVersions().DefaultIstio()},
		{map[string]string{"ISTIO_VERSION": "v1.31.1"}, `ISTIO_VERSION="v1.31.1" is not a release: use a full version like`},
		{map[string]string{"ISTIO_VERSION": "latest"}, `ISTIO_VERSION="latest" is not a release`},
		{map[string]string{"ISTIO_REVISION": "Canary_1"}, `ISTIO_REVISION="Canary_1" is not a revision name: use at most 40 lowercase letters, digits and '-' (a DNS label), not "default", like canary or 1-31-1`},
		{map[string]string{"ISTIO_REVISION": "default"}, `ISTIO_REVISION="default" is not a revision name`},
		{map[string]string{"ISTIO_REVISION": strings.Repeat("r", 41)}, `ISTIO_REVISION="` + strings.Repeat("r", 41) + `" is not a revision name`},
		{map[string]string{"ISTIO_CHART_REPO": "oci://ghcr.io/istio/release/charts/istiod:1.31.1"}, `ISTIO_CHART_REPO="oci://ghcr.io/istio/release/charts/istiod:1.31.1" is not an OCI repository reference (no tag, digest, query or credentials): use a Helm repository URL (the directory holding index.yaml) like https://blob.istio.io/istio-release/charts, or an OCI reference like oci://ghcr.io/istio/release/charts`},
		{map[string]string{"ISTIO_CHART_REPO": "oci://"}, `ISTIO_CHART_REPO="oci://" has no host`},
		{map[string]string{"ISTIO_CHART_REPO": "ftp://mirror/charts"}, `ISTIO_CHART_REPO="ftp://mirror/charts" is not an http(s):// URL or an oci:// reference`},
		{map[string]string{"ISTIO_CHART_REPO": "istio-release.storage.googleapis.com/charts"}, `ISTIO_CHART_REPO="istio-release.storage.googleapis.com/charts" is not an http(s):// URL`},
		{map[string]string{"ISTIO_CHART_REPO": "https://"}, `ISTIO_CHART_REPO="https://" has no host`},
		{map[string]string{"ISTIO_CHART_REPO": "https://mirror/charts", "ISTIO_CHART_DIR": "/charts"}, `ISTIO_CHART_REPO and ISTIO_CHART_DIR are both set: set only one`},
		{map[string]string{"ISTIO_HUB": "https://docker.io/istio"}, `ISTIO_HUB="https://docker.io/istio" is not an image registry path: use a registry and path without scheme or tag, like docker.io/istio`},
		{map[string]string{"ISTIO_INSTALL": "maybe"}, `ISTIO_INSTALL="maybe" is not an install policy: use auto, yes (or 1), no (or 0), or none (no Istio: check the cluster alone)`},
		{map[string]string{"DATAPLANE": "sometimes"}, `DATAPLANE="sometimes" is not a boolean: use 1 or 0`},
		// Istio's grpc-agent template ignores an image without "/" and uses the chart's proxy.
		{map[string]string{"ISTIO_AGENT_IMAGE": "pilot-agent:1.31.0"}, `ISTIO_AGENT_IMAGE="pilot-agent:1.31.0" is not a pinned image with a repository path: use <registry>/<path>:<tag>`},
		{map[string]string{"ISTIO_AGENT_IMAGE": "meshconform.local/istio/pilot-agent"}, `ISTIO_AGENT_IMAGE="meshconform.local/istio/pilot-agent" is not a pinned image with a repository path`},
		{map[string]string{"DATAPLANE_MODE": "ztunnel"}, `DATAPLANE_MODE="ztunnel" is not a data-plane mode: use sidecar (the default), ambient or proxyless`},
		{map[string]string{"DATAPLANE_MODE": "proxyless"}, `DATAPLANE_MODE="proxyless" needs ISTIO_ECHO_IMAGE`},
		{map[string]string{"INGRESS_API": "gateway"}, `INGRESS_API="gateway" is not an ingress API: use istio (the default: the gateway chart, Istio's Gateway and VirtualService) or gateway-api`},
		{map[string]string{"DATAPLANE_MODE": "proxyless", "ISTIO_ECHO_IMAGE": "app"}, `ISTIO_ECHO_IMAGE="app" is not a pinned image`},
		// The waiter's variables are checked where every other setting is, before anything runs.
		{map[string]string{"MESHCONFORM_TIMEOUT": "60"}, `MESHCONFORM_TIMEOUT="60": want a positive Go duration (example: MESHCONFORM_TIMEOUT=90s)`},
		{map[string]string{"K8S_NODE_IMAGE": "kindest/node"}, `K8S_NODE_IMAGE="kindest/node" is not a pinned image: use an image with a tag (and digest), like kindest/node:v1.37.0@sha256:`},
		{map[string]string{"K8S_NODE_IMAGE": "kindest/node:v1.37.0@sha256:abc"}, `K8S_NODE_IMAGE="kindest/node:v1.37.0@sha256:abc" is not a pinned image`},
		{map[string]string{"CLUSTER_NAME": "My_Cluster"}, `CLUSTER_NAME="My_Cluster" is not a kind cluster name: use lowercase letters, digits, '.' and '-' (at most 50), like meshconform`},
		{map[string]string{"CLUSTER_NAME": strings.Repeat("a", 51)}, `CLUSTER_NAME="` + strings.Repeat("a", 51) + `" is not a kind cluster name`},
		{map[string]string{"REUSE_CLUSTER": "maybe"}, `REUSE_CLUSTER="maybe" is not a boolean: use 1 or 0`},
		{map[string]string{"KEEP_CLUSTER": "sometimes"}, `KEEP_CLUSTER="sometimes" is not a keep policy: use always (or 1), on-failure or never (or 0)`},
		{map[string]string{"ALLOW_DISRUPTIVE": "perhaps"}, `ALLOW_DISRUPTIVE="perhaps" is not auto, 1 or 0: use auto, 1 or 0`},
		{map[string]string{"STRICT": "strict"}, `STRICT="strict" is not a boolean: use 1 or 0`},
		{map[string]string{"LABELS": "mtls && (authz"}, `LABELS="mtls && (authz" is not a Ginkgo label filter (`},
		{map[string]string{"LABELS": "!baseline"}, `LABELS="!baseline" excludes the baseline spec, which would not stop the baseline: it runs before every behaviour whatever the filter: to judge behaviours without it, say so with BASELINE=0`},
		{map[string]string{"LABELS": "mtls && ! baseline"}, `LABELS="mtls && ! baseline" excludes the baseline spec`},
		{map[string]string{"BASELINE": "off-ish"}, `BASELINE="off-ish" is not a boolean: use 1 or 0`},
		{map[string]string{"ISTIO_INSTALL_TIMEOUT": "5"}, `ISTIO_INSTALL_TIMEOUT="5" is not a positive duration: use a Go duration like 5m or 90s`},
		{map[string]string{"PROCS": "two"}, `PROCS="two" is not a process count: use a whole number from 1 to 256, like 2`},
		{map[string]string{"PROCS": "0"}, `PROCS="0" is not a process count`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load(env(tc.env), nil, t.TempDir())
			if err == nil {
				t.Fatalf("Load(%v) accepted it", tc.env)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line, got %d:\n%s", len(lines), err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got  %s\nwant %s…", err, tc.want)
			}
		})
	}
}

// All problems come at once, so a user fixes them in one go.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"ISTIO_VERSION": "1.31", "CLUSTER_NAME": "A", "KEEP_CLUSTER": "x", "PROCS": "-1"}), nil, t.TempDir())
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %d:\n%s", len(lines), err)
	}
	for i, name := range []string{"ISTIO_VERSION=", "CLUSTER_NAME=", "KEEP_CLUSTER=", "PROCS="} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, name) }) {
			t.Errorf("line %d: no problem for %s in\n%s", i, name, err)
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--istio-version=1.30.5", "--keep-cluster=always", "--cluster-name=bad_name"}); err != nil {
		t.Fatal(err)
	}
	_, err := Load(env(map[string]string{"ISTIO_VERSION": "1.31.1", "CLUSTER_NAME": "ok"}), fs, t.TempDir())
	// The flag's value is the one checked, and the message names the flag.
	if err == nil || !strings.HasPrefix(err.Error(), `--cluster-name="bad_name" is not a kind cluster name`) {
		t.Fatalf("want the flag named in the error, got %v", err)
	}
	fs = flag.NewFlagSet("suite", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--istio-version=1.30.5", "--keep-cluster=always"}); err != nil {
		t.Fatal(err)
	}
	s, err := Load(env(map[string]string{"ISTIO_VERSION": "1.31.1", "CLUSTER_NAME": "ok"}), fs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, s.IstioVersion, "1.30.5")
	eq(t, s.KeepCluster, KeepAlways)
	eq(t, s.ClusterName, "ok")
}

func TestKubeconfigFlagNeedsContext(t *testing.T) {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--kubeconfig=/tmp/k"}); err != nil {
		t.Fatal(err)
	}
	_, err := Load(env(nil), fs, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--kube-context") {
		t.Fatalf("want a hint to name the context, got %v", err)
	}
	// The KUBECONFIG environment variable alone is ambient (set for kubectl) and does not
	// switch to an existing cluster.
	s, err := Load(env(map[string]string{"KUBECONFIG": "/tmp/k"}), nil, t.TempDir())
	if err != nil || s.Existing() {
		t.Fatalf("KUBECONFIG alone: existing=%v err=%v", s.Existing(), err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := root(t)
	s, err := Load(env(map[string]string{
		"ISTIO_VERSION": "1.30.5", "ISTIO_REVISION": "canary", "KUBE_CONTEXT": "kind-x", "KUBECONFIG": "/k",
		"KEEP_CLUSTER": "always", "PROCS": "3", "ISTIO_INSTALL_TIMEOUT": "7m", "LABELS": "MTLS-002", "STRICT": "1", "MESHCONFORM_TIMEOUT": "1m",
		"CLUSTER_NAME": "other",
	}), nil, r)
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Fatalf("round trip changed it:\n%+v\n%+v", s, back)
	}
	if _, err := Unmarshal([]byte(`{"istioVersion":"1.31","keepCluster":"never","install":"auto","clusterName":"x","nodeImage":"a:b","reportsDir":"/r","chartRepo":"https://x/y"}`)); err == nil ||
		!strings.Contains(err.Error(), `Istio version "1.31" is not a release`) {
		t.Fatalf("Unmarshal must validate, got %v", err)
	}
}

func TestNotes(t *testing.T) {
	s, err := Load(env(map[string]string{"KUBE_CONTEXT": "prod", "KEEP_CLUSTER": "never", "CLUSTER_NAME": "x"}), nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	notes := s.Notes()
	if len(notes) != 1 || !strings.Contains(notes[0], "CLUSTER_NAME, KEEP_CLUSTER ignored") {
		t.Fatalf("notes = %q", notes)
	}
	s, _ = Load(env(map[string]string{"KEEP_CLUSTER": "never"}), nil, t.TempDir())
	if n := s.Notes(); len(n) != 0 {
		t.Fatalf("kind mode notes = %q", n)
	}
}

func TestValidate(t *testing.T) {
	good, err := Load(env(nil), nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	bad := good
	bad.IstioVersion, bad.ChartRepo, bad.KeepCluster, bad.ClusterName = "1.31", "", "sometimes", "UPPER"
	err = bad.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`Istio version "1.31" is not a release`, "no chart source", `keep policy "sometimes"`, `cluster name "UPPER"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	// On an existing cluster the kind settings do not matter.
	attach := bad
	attach.IstioVersion, attach.ChartRepo, attach.KeepCluster, attach.KubeContext = "1.31.1", DefaultChartRepo, KeepNever, "ctx"
	if err := attach.Validate(); err != nil {
		t.Fatalf("existing cluster with a bad kind name: %v", err)
	}
}

func TestModuleRoot(t *testing.T) {
	r := root(t)
	deep := filepath.Join(r, "suites", "mtls")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, ok := ModuleRoot(deep); !ok || got != r {
		t.Fatalf("ModuleRoot(%s) = %q, %v; want %q", deep, got, ok, r)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644)
	if got, ok := ModuleRoot(other); ok {
		t.Fatalf("found %q in another module", got)
	}
	// This package's own checkout resolves to the repository root.
	wd, _ := os.Getwd()
	if got, ok := ModuleRoot(wd); !ok || got != filepath.Dir(filepath.Dir(wd)) {
		t.Fatalf("ModuleRoot(%s) = %q, %v", wd, got, ok)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	u := Usage()
	for _, v := range Variables() {
		if !strings.Contains(u, v.Env) || !strings.Contains(u, "--"+v.Flag) {
			t.Errorf("usage lacks %s/--%s", v.Env, v.Flag)
		}
	}
}

// Every pinned source build's version (internal/istiosrc) must be accepted as ISTIO_VERSION.
func TestValidIstioVersionAcceptsSourceBuilds(t *testing.T) {
	for _, b := range istiosrc.Branches {
		if !ValidIstioVersion(b.Version) {
			t.Errorf("%s: ISTIO_VERSION=%s rejected", b.Name, b.Version)
		}
	}
	for _, v := range []string{"1.31", "v1.31.1", "1.31.01", "1.31.1-", "latest"} {
		if ValidIstioVersion(v) {
			t.Errorf("ISTIO_VERSION=%s accepted", v)
		}
	}
}

// A suite binary run outside the tree resolves relative settings from the driver's directory.
func TestFromEnvironmentWorkDir(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module meshconform\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(WorkDirEnv, root)
	t.Setenv("REPORTS_DIR", "out")
	s, err := FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "out"); s.ReportsDir != want {
		t.Errorf("REPORTS_DIR=out from %s=%s: %s, want %s", WorkDirEnv, root, s.ReportsDir, want)
	}
}

// DATAPLANE_MODE: sidecar by default, ambient when asked (any case), and a state file from
// before the setting reads as sidecar.
func TestDataplaneMode(t *testing.T) {
	for _, tc := range []struct {
		env         map[string]string
		mode        string
		given, ambi bool
	}{
		{nil, ModeSidecar, false, false},
		{map[string]string{"DATAPLANE_MODE": "ambient"}, ModeAmbient, true, true},
		{map[string]string{"DATAPLANE_MODE": " Ambient "}, ModeAmbient, true, true},
		{map[string]string{"DATAPLANE_MODE": "sidecar"}, ModeSidecar, true, false},
		{map[string]string{"DATAPLANE_MODE": "proxyless", "ISTIO_ECHO_IMAGE": "meshconform.local/istio/app:1.31.0-dev.20260827124520"}, ModeProxyless, true, false},
	} {
		s, err := Load(env(tc.env), nil, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if s.Mode() != tc.mode || s.ModeGiven() != tc.given || s.Ambient() != tc.ambi {
			t.Errorf("%v: mode %q given %v ambient %v; want %q %v %v", tc.env, s.Mode(), s.ModeGiven(), s.Ambient(), tc.mode, tc.given, tc.ambi)
		}
		data, _ := s.Marshal()
		back, err := Unmarshal(data)
		if err != nil || back.Mode() != tc.mode {
			t.Errorf("%v: round trip: %q, %v", tc.env, back.Mode(), err)
		}
	}
	if (Settings{}).Mode() != ModeSidecar {
		t.Error("settings without the field must read as sidecar")
	}
	s, _ := Load(env(nil), nil, t.TempDir())
	s.DataplaneMode = "grpc"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "DATAPLANE_MODE") {
		t.Errorf("Validate accepted mode grpc: %v", err)
	}
	if InstalledMode(ModeProxyless) != ModeSidecar || InstalledMode(ModeAmbient) != ModeAmbient {
		t.Error("proxyless runs on the sidecar mode's install; ambient on its own")
	}
}

func TestIngressAPI(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, IngressIstio},
		{map[string]string{"INGRESS_API": "gateway-api"}, IngressGatewayAPI},
		{map[string]string{"INGRESS_API": " Gateway-API "}, IngressGatewayAPI},
		{map[string]string{"INGRESS_API": "istio"}, IngressIstio},
		{map[string]string{"INGRESS_API": "gateway-api", "DATAPLANE_MODE": "ambient"}, IngressGatewayAPI},
	} {
		s, err := Load(env(tc.env), nil, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if s.Ingress() != tc.want {
			t.Errorf("%v: ingress API %q, want %q", tc.env, s.Ingress(), tc.want)
		}
		data, _ := s.Marshal()
		back, err := Unmarshal(data)
		if err != nil || back.Ingress() != tc.want {
			t.Errorf("%v: round trip: %q, %v", tc.env, back.Ingress(), err)
		}
	}
	if (Settings{}).Ingress() != IngressIstio {
		t.Error("settings without the field (a state file from before it) must read as istio")
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--ingress-api=gateway-api"}); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(env(map[string]string{"INGRESS_API": "istio"}), fs, t.TempDir()); err != nil || s.Ingress() != IngressGatewayAPI {
		t.Errorf("--ingress-api=gateway-api over INGRESS_API=istio: %q, %v", s.Ingress(), err)
	}
	s, _ := Load(env(nil), nil, t.TempDir())
	s.IngressAPI = "nginx"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `ingress API "nginx" is not istio or gateway-api (INGRESS_API)`) {
		t.Errorf("Validate accepted ingress API nginx: %v", err)
	}
}
