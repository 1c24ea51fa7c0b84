package mesh

import (
	"slices"
	"sync/atomic"
	"testing"

	"meshconform/internal/charttest"
	"meshconform/internal/istiosrc"
)

// The chart sources live in internal/charttest, shared with cmd/meshconform's tests (which
// read them as `meshconform versions check` does); these wrappers give them mesh's Chart type.

// realCharts returns a directory with Istio's own charts base/, istiod/ and gateway/ from
// branch b's source, at version b.Version.
func realCharts(t testing.TB, b istiosrc.Branch) string {
	t.Helper()
	return charttest.RealCharts(t, b)
}

// packageChart saves Istio's chart c (release-1.31's source) as <dir>/<c>-<version>.tgz.
func packageChart(t testing.TB, c Chart, version, dir string) string {
	t.Helper()
	return charttest.Package(t, string(c), version, dir)
}

func names(charts map[Chart][]string) map[string][]string {
	out := map[string][]string{}
	for c, v := range charts {
		out[string(c)] = v
	}
	return out
}

// chartDir returns a directory holding every chart in charts at each of its versions, as
// `helm pull` would leave them.
func chartDir(t testing.TB, charts map[Chart][]string) string {
	t.Helper()
	return charttest.Dir(t, names(charts))
}

// allCharts maps each of the three charts to versions.
func allCharts(versions ...string) map[Chart][]string {
	return map[Chart][]string{ChartBase: versions, ChartIstiod: versions, ChartGateway: versions}
}

// chartRepo is a Helm repository on a loopback HTTP server; requests counts every request it
// answered.
type chartRepo struct {
	URL, Dir string
	requests *atomic.Int64
}

func wrapRepo(r *charttest.Repo) *chartRepo {
	return &chartRepo{URL: r.URL, Dir: r.Dir, requests: &r.Requests}
}

// serveRepo serves charts until the test ends.
func serveRepo(t testing.TB, charts map[Chart][]string) *chartRepo {
	t.Helper()
	return wrapRepo(charttest.Serve(t, names(charts)))
}

// serveBranches serves each branch's own charts at its version.
func serveBranches(t testing.TB, branches ...istiosrc.Branch) *chartRepo {
	t.Helper()
	return wrapRepo(charttest.ServeBranches(t, branches...))
}

// ociRepo is an OCI registry on loopback holding charts pushed with Helm's registry client.
type ociRepo struct {
	URL      string
	requests *atomic.Int64
}

// serveOCI pushes every chart in charts at each of its versions until the test ends.
func serveOCI(t *testing.T, charts map[Chart][]string) *ociRepo {
	t.Helper()
	r := charttest.ServeOCI(t, names(charts))
	return &ociRepo{URL: r.URL, requests: &r.Requests}
}

// charttest names the charts as mesh does, in the same order.
func TestChartTestNamesMeshCharts(t *testing.T) {
	var want []string
	for _, c := range Charts {
		want = append(want, string(c))
	}
	if !slices.Equal(charttest.Charts, want) {
		t.Errorf("charttest.Charts = %v, mesh.Charts = %v", charttest.Charts, want)
	}
}
