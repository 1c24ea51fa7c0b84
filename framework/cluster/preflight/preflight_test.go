package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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
)

func load(t *testing.T, env map[string]string) settings.Settings {
	t.Helper()
	if _, ok := env["REPORTS_DIR"]; !ok {
		env["REPORTS_DIR"] = t.TempDir()
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
	repo := indexServer(t, "1.31.1")
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
func TestRealDockerCLIWithoutEngine(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on PATH")
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
		t.Skipf("a Docker engine answers (%s): this test is about its absence", strings.TrimSpace(string(out)))
	}
	repo := indexServer(t, "1.31.1")
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
	repo := indexServer(t, "1.31.1")
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
	repo := indexServer(t, "1.31.1", "1.30.5")
	s := load(t, map[string]string{"ISTIO_CHART_REPO": repo.URL + "/charts", "KIND_CONFIG": "multinode"})
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
	if strings.Join(names, ",") != "settings,docker,kind config,charts,reports dir" {
		t.Errorf("checks %v", names)
	}
	var out strings.Builder
	Print(&out, results)
	for _, want := range []string{"docker", "Docker engine 28.1.1", "multinode (embedded), 2 node(s)", "charts at " + repo.URL} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printout lacks %q:\n%s", want, out.String())
		}
	}
}

// A cluster of that name that exists is reported before any work unless REUSE_CLUSTER=1.
func TestTakenClusterName(t *testing.T) {
	repo := indexServer(t, "1.31.1")
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
