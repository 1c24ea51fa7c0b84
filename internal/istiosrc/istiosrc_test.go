package istiosrc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"

	"meshconform/framework/mesh"
)

// TestBranchVersions: each pinned branch's version parses as framework/mesh's, names the
// branch's minor as the module's own VERSION file does, and the branches order as released.
func TestBranchVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var prev mesh.Version
	for i, b := range Branches {
		v, err := mesh.ParseVersion(b.Version)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if v.Stable() {
			t.Errorf("%s: version %s looks like a release; a source build must not", b.Name, b.Version)
		}
		if i > 0 && v.Compare(prev) <= 0 {
			t.Errorf("%s (%s) does not sort after %s", b.Name, v, prev)
		}
		prev = v
		dir, err := ModuleDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		// Makefile.core.mk: a source build is "$(cat VERSION)-dev".
		data, err := os.ReadFile(filepath.Join(dir, "VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(data)); got != v.MinorString() || "release-"+got != b.Name {
			t.Errorf("%s@%s: VERSION file says %q; want %s (the branch is wrongly pinned)", b.Name, b.Pseudo, got, v.MinorString())
		}
	}
	if _, ok := ByVersion(Release131.Version); !ok {
		t.Error("ByVersion does not find release-1.31")
	}
	if got := Release131.Commit(); got != "eed52ebb66ad" {
		t.Errorf("Release131.Commit() = %q, want the pseudo-version's commit eed52ebb66ad", got)
	}
}

// TestChartDir: the three charts, named as framework/mesh expects, at the branch's version.
func TestChartDir(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, b := range Branches {
		dir, err := ChartDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range mesh.Charts {
			md, err := chartutil.LoadChartfile(filepath.Join(dir, string(c), "Chart.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if md.Name != string(c) || md.Version != b.Version || md.AppVersion != b.Version {
				t.Errorf("%s %s: Chart.yaml says %s %s (appVersion %s)", b.Name, c, md.Name, md.Version, md.AppVersion)
			}
		}
		golden, err := InjectGoldenDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(golden, "hello-probes.yaml.injected")); err != nil {
			t.Errorf("injector goldens: %v", err)
		}
	}
	// Built once: later calls reuse the directory and need neither the module cache nor the
	// proxy (CI may cache the directory alone).
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPROXY", "off")
	for _, b := range Branches {
		if dir, err := ChartDir(ctx, b); err != nil || filepath.Base(dir) != b.Name+"@"+b.Pseudo {
			t.Errorf("ChartDir of a built %s = %q, %v", b.Name, dir, err)
		}
	}
}

// TestModuleDirError: a version the proxy cannot have fails with the go command's reason.
func TestModuleDirError(t *testing.T) {
	t.Setenv("GOPROXY", "off")
	_, err := ModuleDir(context.Background(), Branch{Name: "release-0.0", Pseudo: "v0.0.0-20000101000000-000000000000"})
	if err == nil || !strings.Contains(err.Error(), "go mod download istio.io/istio@v0.0.0-20000101000000-000000000000") || !strings.Contains(err.Error(), "GOPROXY") {
		t.Errorf("ModuleDir of a missing version: %v", err)
	}
}
