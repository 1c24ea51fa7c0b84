package mesh

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"meshconform/internal/istiosrc"
)

// realCharts returns a directory with Istio's own charts base/, istiod/ and gateway/ from
// branch b's source (internal/istiosrc: istio.io/istio via `go mod download`, copied into a
// cache outside the tree), at version b.Version.
func realCharts(t testing.TB, b istiosrc.Branch) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := istiosrc.ChartDir(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// packageChart saves Istio's chart c (release-1.31's source) as <dir>/<c>-<version>.tgz, with
// version as both the chart version and appVersion (Istio ships them equal), and returns the
// file. The repository and directory tests use it to lay out several versions.
func packageChart(t testing.TB, c Chart, version, dir string) string {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join(realCharts(t, istiosrc.Release131), string(c)))
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

// chartDir returns a directory holding every chart in charts at each of its versions, as
// `helm pull` would leave them.
func chartDir(t testing.TB, charts map[Chart][]string) string {
	t.Helper()
	dir := t.TempDir()
	for c, versions := range charts {
		for _, v := range versions {
			packageChart(t, c, v, dir)
		}
	}
	return dir
}

// allCharts maps each of the three charts to versions.
func allCharts(versions ...string) map[Chart][]string {
	return map[Chart][]string{ChartBase: versions, ChartIstiod: versions, ChartGateway: versions}
}

// chartRepo is a Helm repository on a loopback HTTP server: index.yaml and packaged charts,
// built with Helm's SDK. requests counts every request it answered.
type chartRepo struct {
	URL      string
	Dir      string
	requests atomic.Int64
}

// serveRepo serves charts (with relative URLs in the index, as `helm repo index` writes
// them) until the test ends.
func serveRepo(t testing.TB, charts map[Chart][]string) *chartRepo {
	t.Helper()
	return serveDir(t, chartDir(t, charts))
}

// serveBranches serves each branch's own charts at its version (Istio's real charts, as
// `helm package` would pack them).
func serveBranches(t testing.TB, branches ...istiosrc.Branch) *chartRepo {
	t.Helper()
	dir := t.TempDir()
	for _, b := range branches {
		src := realCharts(t, b)
		for _, c := range Charts {
			ch, err := loader.LoadDir(filepath.Join(src, string(c)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := chartutil.Save(ch, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	return serveDir(t, dir)
}

// serveDir indexes the packaged charts in dir and serves them on a loopback HTTP server.
func serveDir(t testing.TB, dir string) *chartRepo {
	t.Helper()
	r := &chartRepo{Dir: dir}
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
		r.requests.Add(1)
		files.ServeHTTP(w, req)
	})))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/charts"
	return r
}
