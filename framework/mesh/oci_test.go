package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestChartOCI lists versions (tags) and pulls charts from a real OCI registry on loopback.
func TestChartOCI(t *testing.T) {
	ctx := context.Background()
	versions := []string{"1.29.3", "1.30.5", "1.31.0", "1.31.1", "1.32.0-beta.0"}
	r := serveOCI(t, map[Chart][]string{ChartBase: versions, ChartIstiod: versions, ChartGateway: versions})
	in, err := New(Options{Version: "1.31.1", ChartRepo: r.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.31.1"); err != nil {
		t.Fatalf("CheckVersion(1.31.1) against %s: %v", r.URL, err)
	}
	for _, c := range Charts {
		ch, err := in.LoadChart(ctx, c, "1.30.5")
		if err != nil {
			t.Fatalf("LoadChart(%s 1.30.5): %v", c, err)
		}
		if ch.Metadata.Name != string(c) || ch.Metadata.Version != "1.30.5" {
			t.Errorf("pulled %s %s", ch.Metadata.Name, ch.Metadata.Version)
		}
	}
	// Tags are listed once per chart, charts pulled once per version.
	before := r.requests.Load()
	if _, err := in.LoadChart(ctx, ChartIstiod, "1.30.5"); err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.29.3"); err != nil {
		t.Fatal(err)
	}
	if n := r.requests.Load() - before; n != 0 {
		t.Errorf("cached tags and chart fetched again: %d more requests", n)
	}
	avail, err := in.AvailableVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(avail) != "[1.32.0-beta.0 1.31.1 1.31.0 1.30.5 1.29.3]" {
		t.Errorf("AvailableVersions = %v", avail)
	}
	// The pulled chart renders: the OCI source serves Install as the others do.
	if out, err := in.Render(ctx, ChartIstiod); err != nil || !strings.Contains(out, "istio-sidecar-injector") {
		t.Errorf("Render(istiod) from OCI: %v", err)
	}

	// Missing versions name the registry read and the newest version it holds.
	err = in.CheckVersion(ctx, "1.30.7")
	var ve *VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckVersion(1.30.7) = %v, want a *VersionError", err)
	}
	want := "Istio 1.30.7: OCI chart repository " + r.URL + " has no base, istiod, gateway chart at that version; the newest version it holds is 1.31.1; nearest versions that exist: 1.30.5, 1.31.1, 1.29.3. " +
		"Fix: set ISTIO_VERSION to one of those, or ISTIO_CHART_REPO to a repository that has 1.30.7, or ISTIO_CHART_DIR to a directory holding its base/, istiod/ and gateway/ charts"
	if err.Error() != want {
		t.Errorf("CheckVersion(1.30.7):\n got %s\nwant %s", err, want)
	}
	err = in.CheckVersion(ctx, "1.33.0")
	if want := "the newest version it holds is 1.31.1, older than 1.33.0; nearest versions that exist: 1.31.1, 1.30.5, 1.29.3. Fix: set ISTIO_CHART_REPO to a repository that has 1.33.0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckVersion(1.33.0) = %v, want it to contain %q", err, want)
	}
}

// A registry that lacks a chart altogether (its repository is unknown) is a version error
// naming that chart, not a network error.
func TestChartOCIMissingChart(t *testing.T) {
	r := serveOCI(t, map[Chart][]string{ChartBase: {"1.30.5"}, ChartIstiod: {"1.30.5"}})
	in, err := New(Options{Version: "1.30.5", ChartRepo: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	err = in.CheckVersion(context.Background(), "1.30.5")
	var ve *VersionError
	if !errors.As(err, &ve) || !reflect.DeepEqual(ve.Missing, []Chart{ChartGateway}) {
		t.Fatalf("CheckVersion = %v, want a *VersionError for gateway", err)
	}
	if !strings.Contains(err.Error(), r.URL) || !strings.Contains(err.Error(), "holds no version with all of base, istiod and gateway") {
		t.Errorf("error %q does not name the repository and say what it holds", err)
	}
}

func TestChartOCIUnreachable(t *testing.T) {
	t.Setenv("HELM_CONFIG_HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	in, err := New(Options{Version: "1.31.1", ChartRepo: "oci://" + addr + "/istio/charts"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = in.CheckVersion(ctx, "1.31.1")
	if err == nil || IsVersionError(err) {
		t.Fatalf("unreachable registry: %v", err)
	}
	for _, s := range []string{addr, EnvChartRepo, EnvChartDir, OCIChartRepo} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	// A cancelled context reaches Helm's client, which itself uses context.Background.
	done, stop := context.WithCancel(context.Background())
	stop()
	in2, _ := New(Options{Version: "1.31.1", ChartRepo: "oci://" + addr + "/istio/charts"})
	if err := in2.CheckVersion(done, "1.31.1"); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestOCIReferences(t *testing.T) {
	for _, ok := range []string{OCIChartRepo, "oci://localhost:5000/istio/charts", "oci://mirror.example/charts/"} {
		if _, err := New(Options{Version: "1.31.1", ChartRepo: ok}); err != nil {
			t.Errorf("New(ChartRepo %q): %v", ok, err)
		}
	}
	for _, bad := range []string{"oci://ghcr.io/istio/release/charts/istiod:1.31.1", "oci://", "oci://u:p@ghcr.io/x", "ghcr.io/istio/release/charts"} {
		if _, err := New(Options{Version: "1.31.1", ChartRepo: bad}); err == nil || !strings.Contains(err.Error(), EnvChartRepo) {
			t.Errorf("New(ChartRepo %q) = %v, want an error naming %s", bad, err, EnvChartRepo)
		}
	}
	plain := map[string]bool{"localhost:5000": true, "127.0.0.1:5000": true, "[::1]:5000": true, "localhost": true,
		"ghcr.io": false, "registry.local:5000": false, "10.0.0.1:5000": false}
	for host, want := range plain {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
	if s := newOCISource(OCIChartRepo); s.plainHTTP || s.ref != "ghcr.io/istio/release/charts" {
		t.Errorf("source for %s: %+v", OCIChartRepo, s)
	}
}
