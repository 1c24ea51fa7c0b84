// Package charttest holds the chart sources the tests of framework/mesh and cmd/meshconform
// share: Istio's real charts (from internal/istiosrc) packaged at any version, a Helm
// repository serving them on a loopback HTTP server, and an OCI registry on loopback
// (go-containerregistry's in-memory one) they are pushed to with Helm's own registry client.
//
// Charts are named by string ("base", "istiod", "gateway"): framework/mesh's own tests use this
// package, so it cannot import framework/mesh (mesh's tests check that Charts is mesh.Charts).
package charttest

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"meshconform/internal/istiosrc"
)

// Charts are the three charts of an Istio install, in install order.
var Charts = []string{"base", "istiod", "gateway"}

// All maps each of the three charts to versions.
func All(versions ...string) map[string][]string {
	out := map[string][]string{}
	for _, c := range Charts {
		out[c] = versions
	}
	return out
}

// RealCharts returns a directory with Istio's own charts base/, istiod/ and gateway/ from
// branch b's source (internal/istiosrc: istio.io/istio via `go mod download`, copied into a
// cache outside the tree), at version b.Version.
func RealCharts(t testing.TB, b istiosrc.Branch) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := istiosrc.ChartDir(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Package saves Istio's chart c (release-1.31's source) as <dir>/<c>-<version>.tgz, with
// version as both the chart version and appVersion (Istio ships them equal), and returns the
// file. The repository and directory tests use it to lay out several versions.
func Package(t testing.TB, c, version, dir string) string {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join(RealCharts(t, istiosrc.Release131), c))
	if err != nil {
		t.Fatalf("load chart %s: %v", c, err)
	}
	ch.Metadata.Version = version
	ch.Metadata.AppVersion = version
	path, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatalf("package chart %s %s: %v", c, version, err)
	}
	return path
}

// Dir returns a directory holding every chart in charts at each of its versions, as
// `helm pull` would leave them.
func Dir(t testing.TB, charts map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	for c, versions := range charts {
		for _, v := range versions {
			Package(t, c, v, dir)
		}
	}
	return dir
}

// Repo is a Helm repository on a loopback HTTP server: index.yaml and packaged charts, built
// with Helm's SDK. Requests counts every request it answered.
type Repo struct {
	URL      string // http://127.0.0.1:<port>/charts, the directory holding index.yaml
	Dir      string
	Requests atomic.Int64
}

// Serve serves charts (with relative URLs in the index, as `helm repo index` writes them)
// until the test ends.
func Serve(t testing.TB, charts map[string][]string) *Repo {
	t.Helper()
	return ServeDir(t, Dir(t, charts))
}

// ServeBranches serves each branch's own charts at its version (Istio's real charts, as
// `helm package` would pack them).
func ServeBranches(t testing.TB, branches ...istiosrc.Branch) *Repo {
	t.Helper()
	dir := t.TempDir()
	for _, b := range branches {
		src := RealCharts(t, b)
		for _, c := range Charts {
			ch, err := loader.LoadDir(filepath.Join(src, c))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := chartutil.Save(ch, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ServeDir(t, dir)
}

// ServeDir indexes the packaged charts in dir and serves them on a loopback HTTP server.
func ServeDir(t testing.TB, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir}
	idx := repo.NewIndexFile()
	archives, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range archives {
		ch, err := loader.LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := provenance.DigestFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := idx.MustAdd(ch.Metadata, filepath.Base(path), "", digest); err != nil {
			t.Fatal(err)
		}
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(r.Dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(r.Dir))
	// The repository lives under /charts, like Istio's.
	srv := httptest.NewServer(http.StripPrefix("/charts", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Requests.Add(1)
		files.ServeHTTP(w, req)
	})))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/charts"
	return r
}

// OCI is an OCI registry on loopback (go-containerregistry's in-memory one) holding charts
// pushed with Helm's own registry client; Requests counts what it answered.
type OCI struct {
	URL      string // oci://127.0.0.1:<port>/istio/charts
	Requests atomic.Int64
}

// ServeOCI pushes every chart in charts at each of its versions, as Istio publishes them
// (<repo>/<chart>:<version>), until the test ends. Helm's and Docker's credential stores are
// pointed at empty directories so that no local login or helper takes part.
func ServeOCI(t *testing.T, charts map[string][]string) *OCI {
	t.Helper()
	t.Setenv("HELM_CONFIG_HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	r := &OCI{}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Requests.Add(1)
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	cl, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	dir := Dir(t, charts)
	for c, versions := range charts {
		for _, v := range versions {
			data, err := os.ReadFile(fmt.Sprintf("%s/%s-%s.tgz", dir, c, v))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Push(data, fmt.Sprintf("%s/istio/charts/%s:%s", host, c, v)); err != nil {
				t.Fatalf("push %s %s: %v", c, v, err)
			}
		}
	}
	r.URL = "oci://" + host + "/istio/charts"
	return r
}
