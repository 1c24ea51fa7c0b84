package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"meshconform"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"

	"meshconform/framework/cluster"
	"meshconform/framework/settings"
	"meshconform/internal/kindtest"
)

func load(t *testing.T, env map[string]string) settings.Settings {
	t.Helper()
	if _, ok := env["REPORTS_DIR"]; !ok {
		env["REPORTS_DIR"] = t.TempDir()
	}
	if _, ok := env["KIND_CONFIG"]; !ok {
		// The embedded configs map 30080/30443, which something on this machine may hold
		// (another kind cluster): tests not about ports map free ones.
		env["KIND_CONFIG"] = kindtest.FreePortsConfigOf(t, 1)
	}
	s, err := settings.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeDocker writes a docker CLI script with the given body (sh) and returns its path.
func fakeDocker(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// A dead engine, as the docker CLI reports it.
const deadEngine = `echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1`

// An index.yaml with the three charts at some versions, as a chart repository serves it.
func indexServer(t *testing.T, versions ...string) *httptest.Server {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n")
	for _, c := range []string{"base", "istiod", "gateway"} {
		fmt.Fprintf(&b, "  %s:\n", c)
		for _, v := range versions {
			fmt.Fprintf(&b, "  - name: %s\n    version: %s\n    urls: [%s-%s.tgz]\n", c, v, c, v)
		}
	}
	index := b.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/charts/index.yaml" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, index)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func problems(err error) []Problem {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Problems
	}
	return nil
}

func find(ps []Problem, check string) (Problem, bool) {
	for _, p := range ps {
		if p.Check == check {
			return p, true
		}
	}
	return Problem{}, false
}

func TestDeadEngineFakeCLI(t *testing.T) {
	repo := indexServer(t, defaultIstio)
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts"})
	_, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: fakeDocker(t, deadEngine)}})
	ps := problems(err)
	if len(ps) != 1 {
		t.Fatalf("want exactly the docker problem, got %v", err)
	}
	want := "docker: Docker engine not reachable: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running? Start Docker (or set KUBE_CONTEXT to use an existing cluster)"
	if ps[0].String() != want {
		t.Fatalf("got  %s\nwant %s", ps[0], want)
	}
	if !strings.Contains(err.Error(), "nothing was created") {
		t.Errorf("error does not say nothing was created: %v", err)
	}
}

// The real docker CLI of this machine, with no engine behind it, fails within seconds.
// DOCKER_HOST names a socket that does not exist, so whether this machine runs an engine at
// the default socket does not matter.
func TestRealDockerCLIWithoutEngine(t *testing.T) {
	kindtest.NoEngine(t)
	repo := indexServer(t, defaultIstio)
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts"})
	start := time.Now()
	_, err := Run(context.Background(), s, Options{})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
	p, ok := find(problems(err), "docker")
	if !ok || !strings.HasPrefix(p.String(), "docker: Docker engine not reachable: ") ||
		!strings.HasSuffix(p.String(), "Start Docker (or set KUBE_CONTEXT to use an existing cluster)") {
		t.Fatalf("got %v", err)
	}
	t.Logf("message: %s", p)
}

func TestDockerMissingAndHung(t *testing.T) {
	repo := indexServer(t, defaultIstio)
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts"})
	_, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: filepath.Join(t.TempDir(), "docker")}})
	p, ok := find(problems(err), "docker")
	if !ok || !strings.Contains(p.String(), "Install Docker") {
		t.Errorf("missing CLI: %v", err)
	}
	// An engine that never answers is given up on at the check's timeout.
	hung := fakeDocker(t, "exec sleep 60")
	start := time.Now()
	_, err = Run(context.Background(), s, Options{Docker: cluster.Docker{Path: hung}, Timeout: 300 * time.Millisecond})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("hung engine held preflight for %s", took)
	}
	p, ok = find(problems(err), "docker")
	if !ok || !strings.Contains(p.String(), "did not answer within 300ms") {
		t.Errorf("hung engine: %v", err)
	}
}

func TestHealthyKindRun(t *testing.T) {
	repo := indexServer(t, defaultIstio, "1.30.5")
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts", "KIND_CONFIG": kindtest.FreePortsConfigOf(t, 2)})
	docker := fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; ps) ;; esac`)
	results, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: docker}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Check)
		if !r.Passed {
			t.Errorf("%s failed", r.Check)
		}
	}
	if strings.Join(names, ",") != "settings,docker,cgroup,image store,host ports,kind config,support,charts,reports dir" {
		t.Errorf("checks %v", names)
	}
	var out strings.Builder
	Print(&out, results)
	for _, want := range []string{"docker", "Docker engine 28.1.1", "kind.yaml, 2 node(s)", "charts at " + repo.URL} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printout lacks %q:\n%s", want, out.String())
		}
	}
}

// A cluster of that name that exists is reported before any work unless REUSE_CLUSTER=1.
func TestTakenClusterName(t *testing.T) {
	repo := indexServer(t, defaultIstio)
	docker := fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; ps) echo meshconform-control-plane ;; esac`)
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts"})
	_, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: docker}})
	p, ok := find(problems(err), "cluster name")
	if !ok || !strings.Contains(p.String(), `kind cluster "meshconform" already exists: set REUSE_CLUSTER=1`) {
		t.Fatalf("got %v", err)
	}
	s = load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts", "REUSE_CLUSTER": "1"})
	results, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: docker}})
	if err != nil || !strings.Contains(results[1].Detail, `reusing kind cluster "meshconform"`) {
		t.Fatalf("reuse: %v %+v", err, results)
	}
}

// A loopback server stands in for the chart repository: a missing version is named with
// the versions that exist, an unreachable repository with its URL and the variables to fix.
func TestChartRepository(t *testing.T) {
	repo := indexServer(t, "1.31.1", "1.31.0", "1.30.5")
	docker := cluster.Docker{Path: fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; esac`)}

	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts", "ISTIO_VERSION": "1.31.9"})
	_, err := Run(context.Background(), s, Options{Docker: docker})
	p, ok := find(problems(err), "charts")
	if !ok || !strings.Contains(p.Detail, "Istio 1.31.9 has no base, istiod, gateway chart in "+repo.URL+"/charts/index.yaml; the newest version it holds is 1.31.1") || !strings.Contains(p.Detail, "istiod 1.31.1, 1.31.0") {
		t.Fatalf("missing version: %v", err)
	}
	// The retired storage.googleapis.com repository has nothing from 1.31 on: the fix names
	// Istio's repositories.
	old := indexServer(t, "1.30.5", "1.29.3", "1.32.0-beta.0")
	s = load(t, map[string]string{"ISTIO_CHART_REPO": old.URL + "/charts", "ISTIO_VERSION": "1.31.1"})
	_, err = Run(context.Background(), s, Options{Docker: docker})
	if p, ok = find(problems(err), "charts"); !ok || !strings.Contains(p.Detail, "the newest version it holds is 1.30.5") ||
		!strings.Contains(p.Fix, "https://blob.istio.io/istio-release/charts and oci://ghcr.io/istio/release/charts") {
		t.Fatalf("stale repository: %v", err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String() + "/charts"
	l.Close()
	s = load(t, map[string]string{"ISTIO_CHART_REPO": dead})
	_, err = Run(context.Background(), s, Options{Docker: docker})
	p, ok = find(problems(err), "charts")
	want := "charts: chart repository index " + dead + "/index.yaml not reachable"
	if !ok || !strings.HasPrefix(p.String(), want) || !strings.HasSuffix(p.String(), "set ISTIO_CHART_REPO to one of those or a reachable mirror, or ISTIO_CHART_DIR to local charts") {
		t.Fatalf("got  %v\nwant %s…", err, want)
	}

	s = load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/elsewhere"})
	_, err = Run(context.Background(), s, Options{Docker: docker})
	if p, ok = find(problems(err), "charts"); !ok || !strings.Contains(p.Detail, "answered 404 Not Found") {
		t.Fatalf("404: %v", err)
	}
}

func TestChartDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"base", "istiod"} {
		os.MkdirAll(filepath.Join(dir, c), 0o755)
		os.WriteFile(filepath.Join(dir, c, "Chart.yaml"), []byte("name: "+c+"\n"), 0o644)
	}
	docker := cluster.Docker{Path: fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; esac`)}
	s := load(t, map[string]string{"ISTIO_CHART_DIR": dir})
	_, err := Run(context.Background(), s, Options{Docker: docker})
	p, ok := find(problems(err), "charts")
	if !ok || !strings.Contains(p.Detail, "lacks gateway/Chart.yaml") || !strings.Contains(p.Fix, "ISTIO_CHART_DIR") {
		t.Fatalf("got %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "gateway"), 0o755)
	os.WriteFile(filepath.Join(dir, "gateway", "Chart.yaml"), []byte("name: gateway\n"), 0o644)
	if _, err := Run(context.Background(), s, Options{Docker: docker}); err != nil {
		t.Fatal(err)
	}
}

// On an existing cluster: no Docker, the context is checked, and charts only when installing.
func TestExistingContext(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"gitVersion":"v1.36.4"}`)
	}))
	defer api.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {}}]
contexts: [{name: lab, context: {cluster: c, user: u}}, {name: gone, context: {cluster: d, user: u}}]
`, api.URL)), 0o600)
	noDocker := cluster.Docker{Path: filepath.Join(t.TempDir(), "docker")}
	failCharts := func(context.Context, settings.Settings) error { return errors.New("charts were consulted") }

	s := load(t, map[string]string{"KUBE_CONTEXT": "lab", "KUBECONFIG": kc})
	results, err := Run(context.Background(), s, Options{Docker: noDocker, Charts: failCharts})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[1].Check != "context" || !strings.Contains(results[1].Detail, "Kubernetes v1.36.4") {
		t.Fatalf("results %+v", results)
	}

	s = load(t, map[string]string{"KUBE_CONTEXT": "lab", "KUBECONFIG": kc, "ISTIO_INSTALL": "yes"})
	_, err = Run(context.Background(), s, Options{Docker: noDocker, Charts: failCharts})
	if p, ok := find(problems(err), "charts"); !ok || p.Detail != "charts were consulted" {
		t.Fatalf("install on an existing cluster must check charts: %v", err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
users: [{name: u, user: {}}]
contexts: [{name: lab, context: {cluster: c, user: u}}]
`, addr)), 0o600)
	s = load(t, map[string]string{"KUBE_CONTEXT": "lab", "KUBECONFIG": kc})
	start := time.Now()
	_, err = Run(context.Background(), s, Options{Docker: noDocker, Charts: failCharts})
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("took %s", took)
	}
	p, ok := find(problems(err), "context")
	if !ok || !strings.Contains(p.String(), `context "lab" (server http://`+addr+`) is not reachable`) {
		t.Fatalf("got %v", err)
	}
}

// Every problem is reported at once, each on its own line.
func TestAllProblemsAtOnce(t *testing.T) {
	s := load(t, map[string]string{"REPORTS_DIR": "/proc/not-writable"})
	s.IstioVersion = "1.31" // as if built in code, past Load
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	s.ChartRepo = "http://" + l.Addr().String()
	l.Close()
	_, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: fakeDocker(t, deadEngine)}})
	ps := problems(err)
	var checks []string
	for _, p := range ps {
		checks = append(checks, p.Check)
	}
	if strings.Join(checks, ",") != "settings,docker,reports dir" {
		t.Fatalf("problems from %v:\n%v", checks, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "preflight: 3 problem(s)") {
		t.Fatalf("err:\n%v", err)
	}
}

// engineDocker is a fake docker CLI for an engine of the given API version whose `docker info`
// prints info (JSON); ps lists kind node containers when nodes is not empty.
func engineDocker(t *testing.T, api, info, nodes string) cluster.Docker {
	return cluster.Docker{Path: fakeDocker(t, fmt.Sprintf(`case "$1" in
version) case "$3" in *APIVersion*) echo %s ;; *) echo 29.1.2 ;; esac ;;
info) echo '%s' ;;
ps) printf '%%s' '%s' ;;
*) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`, api, info, nodes))}
}

// docker info's JSON, trimmed to what matters: the containerd image store shows as a
// driver-type entry in DriverStatus, a graph driver as the Driver alone.
const (
	containerdV2 = `{"ServerVersion":"29.1.2","OSType":"linux","Architecture":"x86_64","CgroupVersion":"2","CgroupDriver":"systemd","Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`
	overlay2V1   = `{"ServerVersion":"29.1.2","OSType":"linux","Architecture":"x86_64","CgroupVersion":"1","CgroupDriver":"cgroupfs","Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"]]}`
)

func result(t *testing.T, results []Result, check string) Result {
	t.Helper()
	for _, r := range results {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %q result in %+v", check, results)
	return Result{}
}

// The image store and cgroup version are printed; an old engine under the containerd image
// store is a warning (multi-arch images may not load, kind issue 3795), not a failure.
func TestImageStoreAndCgroupLines(t *testing.T) {
	noCharts := func(context.Context, settings.Settings) error { return nil }
	s := load(t, map[string]string{})

	results, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, ""), Charts: noCharts})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	Print(&out, results)
	for _, want := range []string{
		"ok   cgroup", "cgroup v2",
		"ok   image store", "containerd image store (overlayfs snapshotter); images are saved for the nodes' platform (engine API 1.52)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printout lacks %q:\n%s", want, out.String())
		}
	}

	results, err = Run(context.Background(), s, Options{Docker: engineDocker(t, "1.47", containerdV2, ""), Charts: noCharts})
	if err != nil {
		t.Fatalf("an old engine is a warning, not a failure: %v", err)
	}
	r := result(t, results, "image store")
	if !strings.Contains(r.Warning, "engine API 1.47 is older than 1.48") || !strings.Contains(r.Warning, "kind issue 3795") {
		t.Errorf("image store warning %q", r.Warning)
	}
	out.Reset()
	Print(&out, results)
	if !strings.Contains(out.String(), "WARN image store") {
		t.Errorf("printout:\n%s", out.String())
	}

	s = load(t, map[string]string{"K8S_NODE_IMAGE": "kindest/node:v1.34.3@sha256:" + strings.Repeat("ab", 32)})
	results, err = Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", overlay2V1, ""), Charts: noCharts})
	if err != nil {
		t.Fatalf("cgroup v1 with Kubernetes 1.34 is a warning: %v", err)
	}
	if r := result(t, results, "image store"); r.Detail != "graph driver overlay2" || r.Warning != "" {
		t.Errorf("image store %+v", r)
	}
	if r := result(t, results, "cgroup"); r.Detail != "cgroup v1" || !strings.Contains(r.Warning, "deprecated") {
		t.Errorf("cgroup %+v", r)
	}
}

// A cgroup v1 engine with a node image for Kubernetes >= 1.35 fails before anything is
// created, with what to do; a kind config that sets failCgroupV1: false makes it a warning.
func TestCgroupV1WithKubernetes135(t *testing.T) {
	noCharts := func(context.Context, settings.Settings) error { return nil }
	image := "kindest/node:v1.35.8@sha256:" + strings.Repeat("cd", 32)
	s := load(t, map[string]string{"K8S_NODE_IMAGE": image})
	_, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", overlay2V1, ""), Charts: noCharts})
	p, ok := find(problems(err), "cgroup")
	if !ok {
		t.Fatalf("no cgroup problem: %v", err)
	}
	for _, want := range []string{
		"the Docker engine uses cgroup v1 and node image " + image + " runs Kubernetes 1.35.8, whose kubelet does not start on cgroup v1",
		"Run Docker on a cgroup v2 host, or set K8S_NODE_IMAGE to a node image for Kubernetes 1.34 or older",
		`kubeadmConfigPatches: ["kind: KubeletConfiguration\nfailCgroupV1: false"]`,
	} {
		if !strings.Contains(p.String(), want) {
			t.Errorf("problem lacks %q:\n%s", want, p)
		}
	}

	patched := kindtest.FreePortsConfigOf(t, 1, "kubeadmConfigPatches:\n- |\n  kind: KubeletConfiguration\n  failCgroupV1: false\n")
	s = load(t, map[string]string{"K8S_NODE_IMAGE": image, "KIND_CONFIG": patched})
	results, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", overlay2V1, ""), Charts: noCharts})
	if err != nil {
		t.Fatalf("failCgroupV1: false in the kind config: %v", err)
	}
	if r := result(t, results, "cgroup"); !strings.Contains(r.Warning, "sets failCgroupV1: false") {
		t.Errorf("cgroup %+v", r)
	}
}

// A host port the kind config maps that something already holds fails preflight, naming the
// address, the mapping and the fix; other problems are still reported with it.
func TestHostPortTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	free := kindtest.FreePort(t)
	s := load(t, map[string]string{"KIND_CONFIG": kindtest.PortsConfig(t, 1, port, free), "REPORTS_DIR": "/proc/not-writable"})
	noCharts := func(context.Context, settings.Settings) error { return nil }
	results, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, ""), Charts: noCharts})
	p, ok := find(problems(err), "host ports")
	want := fmt.Sprintf("host ports: 127.0.0.1:%d/tcp (kind config %s, nodes[0].extraPortMappings[0]) is taken: listen tcp 127.0.0.1:%d: bind: address already in use. "+
		"Stop what listens there (lsof -i :%d names it), or set KIND_CONFIG to a copy of the config with hostPort: 0 for containerPort 30080 (kind then picks a free port; the run state records it)",
		port, s.KindConfig, port, port)
	if !ok || !strings.HasPrefix(p.String(), want) {
		t.Fatalf("got  %v\nwant %s…", err, want)
	}
	if len(problems(err)) != 2 {
		t.Errorf("want the port and the reports dir problems: %v", err)
	}
	_ = results

	// The port is held by the cluster being reused: not a problem.
	s = load(t, map[string]string{"KIND_CONFIG": kindtest.PortsConfig(t, 1, port, free), "REUSE_CLUSTER": "1"})
	results, err = Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, "meshconform-control-plane"), Charts: noCharts})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, results, "host ports"); r.Detail != `held by the existing kind cluster "meshconform"` {
		t.Errorf("host ports %+v", r)
	}

	// Free once released.
	held.Close()
	s = load(t, map[string]string{"KIND_CONFIG": kindtest.PortsConfig(t, 1, port, free)})
	results, err = Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, ""), Charts: noCharts})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, results, "host ports"); r.Detail != fmt.Sprintf("127.0.0.1:%d/tcp, 127.0.0.1:%d/tcp free", port, free) {
		t.Errorf("host ports %+v", r)
	}
}

// hostPort: 0 (kind picks a free port at create time) is not probed.
func TestHostPortZero(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "kind.yaml")
	os.WriteFile(cfg, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 30080, hostPort: 0, listenAddress: \"127.0.0.1\"}\n"), 0o644)
	s := load(t, map[string]string{"KIND_CONFIG": cfg})
	noCharts := func(context.Context, settings.Settings) error { return nil }
	results, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, ""), Charts: noCharts})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, results, "host ports"); r.Detail != "no fixed host ports mapped" {
		t.Errorf("host ports %+v", r)
	}
}

// The embedded config's real ports, when this machine has them free.
func TestEmbeddedConfigPorts(t *testing.T) {
	for _, p := range []int{30080, 30443} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Skipf("127.0.0.1:%d is in use on this machine (%v); TestHostPortTaken covers the check with other ports", p, err)
		}
		l.Close()
	}
	s := load(t, map[string]string{"KIND_CONFIG": "single"})
	noCharts := func(context.Context, settings.Settings) error { return nil }
	results, err := Run(context.Background(), s, Options{Docker: engineDocker(t, "1.52", containerdV2, ""), Charts: noCharts})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, results, "host ports"); r.Detail != "127.0.0.1:30080/tcp, 127.0.0.1:30443/tcp free" {
		t.Errorf("host ports %+v", r)
	}
}

// With no engine the engine's checks are skipped, not failed twice.
func TestEngineChecksSkippedWithoutEngine(t *testing.T) {
	s := load(t, map[string]string{})
	noCharts := func(context.Context, settings.Settings) error { return nil }
	results, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: fakeDocker(t, deadEngine)}, Charts: noCharts})
	if ps := problems(err); len(ps) != 1 || ps[0].Check != "docker" {
		t.Fatalf("want the docker problem only: %v", err)
	}
	for _, c := range []string{"cgroup", "image store"} {
		if r := result(t, results, c); !r.Skipped || !strings.Contains(r.Detail, "not checked: ") {
			t.Errorf("%s: %+v", c, r)
		}
	}
	var out strings.Builder
	Print(&out, results)
	if !strings.Contains(out.String(), "skip cgroup") {
		t.Errorf("printout:\n%s", out.String())
	}
}

// defaultIstio is the version a run installs when ISTIO_VERSION is unset (versions.yaml's
// first), so these tests follow a version bump instead of breaking on it.
var defaultIstio = meshconform.SupportedVersions().DefaultIstio()

// An OCI registry on loopback (go-containerregistry's, charts pushed with Helm's client)
// stands in for oci://ghcr.io/istio/release/charts: its tags are the versions.
func TestChartOCI(t *testing.T) {
	t.Setenv("HELM_CONFIG_HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	cl, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []string{"base", "istiod", "gateway"} {
		for _, v := range []string{"1.30.5", "1.31.1"} {
			path, err := chartutil.Save(&chart.Chart{Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: c, Version: v}}, dir)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Push(data, host+"/istio/charts/"+c+":"+v); err != nil {
				t.Fatal(err)
			}
		}
	}
	docker := cluster.Docker{Path: fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; esac`)}
	repo := "oci://" + host + "/istio/charts"
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo, "ISTIO_VERSION": "1.31.1"})
	if _, err := Run(context.Background(), s, Options{Docker: docker}); err != nil {
		t.Fatalf("1.31.1 in %s: %v", repo, err)
	}
	s = load(t, map[string]string{"ISTIO_CHART_REPO": repo, "ISTIO_VERSION": "1.31.2"})
	_, err = Run(context.Background(), s, Options{Docker: docker})
	p, ok := find(problems(err), "charts")
	if !ok || !strings.Contains(p.Detail, "OCI chart repository "+repo+" has no base, istiod, gateway chart at that version; the newest version it holds is 1.31.1") {
		t.Fatalf("missing version in an OCI registry: %v", err)
	}
}

// The default node image is one the Istio release supports; a pair outside the release's
// Kubernetes range (versions.yaml, from Istio's announcements) or a release with no known range
// is a warning that names the fix, never a silent pass.
func TestSupportCheck(t *testing.T) {
	v := meshconform.SupportedVersions()
	def := load(t, map[string]string{})
	if o := supportCheck(def, v); o.warning != "" || len(o.problems) > 0 || !strings.Contains(o.detail, "supports Kubernetes") {
		t.Errorf("default settings (Istio %s, node image %s): %+v; want a supported pair", def.IstioVersion, def.NodeImage, o)
	}
	for _, istio := range v.Istio {
		s := load(t, map[string]string{"ISTIO_VERSION": istio})
		if o := supportCheck(s, v); o.warning != "" {
			t.Errorf("ISTIO_VERSION=%s with the default node image %s: warning %q", istio, s.NodeImage, o.warning)
		}
	}

	kindDefault := v.DefaultNodeImage() // kind's own default: 1.37, which no listed Istio supports yet
	if v.Supports(def.IstioVersion, kindDefault.Version) {
		t.Skipf("Istio %s supports kind's default Kubernetes %s now: pick another out-of-range image for this test", def.IstioVersion, kindDefault.Version)
	}
	out := load(t, map[string]string{"K8S_NODE_IMAGE": kindDefault.Image})
	o := supportCheck(out, v)
	r, _ := v.KubernetesRangeOf(out.IstioVersion)
	want := fmt.Sprintf("Istio %s supports Kubernetes %s to %s, not %s", out.IstioVersion, r.Min, r.Max, kindDefault.Version)
	if !strings.Contains(o.warning, want) || !strings.Contains(o.warning, v.DefaultNodeImageFor(out.IstioVersion).Image) || len(o.problems) > 0 {
		t.Errorf("out-of-range pair: %+v; want a warning with %q and the in-range image", o, want)
	}

	unknown := load(t, map[string]string{"ISTIO_VERSION": "1.20.0"})
	if o := supportCheck(unknown, v); !strings.Contains(o.warning, "no supported Kubernetes range for Istio 1.20.0") {
		t.Errorf("a release versions.yaml does not list: %+v", o)
	}

	// Without Istio there is no pair: the offline node image (1.37) checks the cluster alone.
	none := load(t, map[string]string{"ISTIO_INSTALL": "none", "K8S_NODE_IMAGE": kindDefault.Image})
	if o := supportCheck(none, v); o.warning != "" || len(o.problems) > 0 || !strings.Contains(o.detail, "no Istio") {
		t.Errorf("ISTIO_INSTALL=none: %+v; want no warning, and the detail saying there is no Istio", o)
	}
}

// hostRoot lays out /proc/modules, the kernel release and its modules.builtin under a
// temporary root, as kernelCheck reads them.
func hostRoot(t *testing.T, loaded, builtin []string) string {
	root := t.TempDir()
	const rel = "6.12.0-test"
	var mods strings.Builder
	for _, m := range loaded {
		fmt.Fprintf(&mods, "%s 16384 1 - Live 0x0000000000000000\n", m)
	}
	for path, data := range map[string]string{
		"proc/modules":                            mods.String(),
		"proc/sys/kernel/osrelease":               rel + "\n",
		"lib/modules/" + rel + "/modules.builtin": strings.Join(builtin, "\n") + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// DATAPLANE_MODE=ambient on kind: the kernel check names the modules that are neither loaded
// nor built in and how to load them; a built-in module counts; sidecar runs never check.
func TestKernelModulesForAmbient(t *testing.T) {
	for _, tc := range []struct {
		name             string
		loaded, builtin  []string
		missing, present []string
	}{
		{"all loaded", []string{"nf_tables", "xt_owner", "ip_set", "xt_set"}, nil, nil, nil},
		{"built in", []string{"ip_set"}, []string{"kernel/net/netfilter/xt_owner.ko", "kernel/net/netfilter/xt_set.ko"}, nil, nil},
		{"none", []string{"nf_tables"}, []string{"kernel/net/netfilter/xt_mark.ko"}, []string{"xt_owner", "ip_set", "xt_set"}, nil},
		{"owner missing", []string{"ip_set", "xt_set"}, nil, []string{"xt_owner"}, []string{"ip_set", "xt_set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := kernelCheck(hostRoot(t, tc.loaded, tc.builtin))
			if len(tc.missing) == 0 {
				if len(out.problems) != 0 {
					t.Fatalf("problems %v", out.problems)
				}
				return
			}
			if len(out.problems) != 1 {
				t.Fatalf("problems %v, want one", out.problems)
			}
			p := out.problems[0].String()
			want := "sudo modprobe -a " + strings.Join(tc.missing, " ")
			if !strings.Contains(p, want) || !strings.Contains(p, "and "+strings.Join(tc.missing, ", ")+" neither loaded") || !strings.Contains(p, "modules.builtin") {
				t.Errorf("problem %q does not name %v and %q", p, tc.missing, want)
			}
			for _, m := range tc.present {
				if strings.Contains(p, "modprobe -a "+m) || strings.Contains(p, "modprobe -a xt_owner "+m) {
					t.Errorf("problem %q asks to load %s, which is loaded", p, m)
				}
			}
		})
	}
	// Not Linux, or /proc hidden: skipped, saying what ambient needs.
	if out := kernelCheck(t.TempDir()); !out.skipped || len(out.problems) != 0 || !strings.Contains(out.detail, "xt_owner, ip_set, xt_set") {
		t.Errorf("without /proc/modules: %+v", out)
	}
	// In a run: only with ambient on kind.
	repo := indexServer(t, defaultIstio)
	docker := fakeDocker(t, `case "$1" in version) echo 28.1.1 ;; ps) ;; esac`)
	root := hostRoot(t, []string{"ip_set"}, nil)
	for _, mode := range []string{"sidecar", "ambient"} {
		s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts", "DATAPLANE_MODE": mode,
			"KIND_CONFIG": kindtest.FreePortsConfigOf(t, 1)})
		results, err := Run(context.Background(), s, Options{Docker: cluster.Docker{Path: docker}, HostRoot: root})
		p, ok := find(problems(err), "kernel")
		if mode == "sidecar" && ok {
			t.Errorf("sidecar run checks the kernel: %v", p)
		}
		if mode == "ambient" && (!ok || !strings.Contains(p.String(), "sudo modprobe -a xt_owner xt_set")) {
			t.Errorf("ambient run: kernel problem %v (%v); results %v", p, ok, results)
		}
	}
}
