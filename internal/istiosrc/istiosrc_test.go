package istiosrc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
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

// TestChartDir: the five charts, named as framework/mesh expects, at the branch's version.
func TestChartDir(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, b := range Branches {
		dir, err := ChartDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append(slices.Clone(mesh.Charts), mesh.ChartCNI, mesh.ChartZtunnel) {
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

// TestBuildModule: each branch's build module builds that branch's commit, and what it
// substitutes is what Istio's own go.mod pins at another version, hashed in its go.sum.
func TestBuildModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, b := range Branches {
		gomod, gosum, err := BuildModule(b)
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse(b.Name+".mod", gomod, nil)
		if err != nil {
			t.Fatal(err)
		}
		var req []string
		for _, r := range f.Require {
			req = append(req, r.Mod.String())
		}
		if want := []string{Module + "@" + b.Pseudo}; !slices.Equal(req, want) {
			t.Errorf("%s: the build module requires %v; want %v", b.Name, req, want)
		}
		dir, err := ModuleDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		istio, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		subs, err := Substitutions(b)
		if err != nil {
			t.Fatal(err)
		}
		for path, v := range subs {
			pinned := ""
			for _, r := range istio.Require {
				if r.Mod.Path == path {
					pinned = r.Mod.Version
				}
			}
			switch pinned {
			case "":
				t.Errorf("%s: the build substitutes %s, which Istio's go.mod does not require", b.Name, path)
			case v:
				t.Errorf("%s: the build substitutes %s %s for the same version", b.Name, path, v)
			}
			for _, line := range []string{path + " " + v + " h1:", path + " " + v + "/go.mod h1:"} {
				if !strings.Contains(string(gosum), "\n"+line) && !strings.HasPrefix(string(gosum), line) {
					t.Errorf("%s: go.sum has no %q line: the substitute would be unverified", b.Name, line)
				}
			}
		}
		build := b.Build()
		if !strings.HasPrefix(build, "source build of "+b.Name+" at "+b.Commit()) || !strings.HasSuffix(build, ", not a release") {
			t.Errorf("%s: Build() = %q", b.Name, build)
		}
		for path, v := range subs {
			if !strings.Contains(build, path+" "+v) {
				t.Errorf("%s: Build() = %q does not name the substitute %s %s", b.Name, build, path, v)
			}
		}
	}
	// release-1.30's pins of these five are refused by the module proxy (403); release-1.31's
	// are served.
	if subs, _ := Substitutions(Release130); len(subs) != 5 {
		t.Errorf("release-1.30 substitutes %v; want the five modules the proxy refuses", subs)
	}
	if subs, _ := Substitutions(Release131); len(subs) != 0 {
		t.Errorf("release-1.31 substitutes %v; want none", subs)
	}
}

// TestChartArchives: one directory holds every branch's charts, and framework/mesh's chart
// directory finds both versions in it and loads each branch's own chart at its version.
func TestChartArchives(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if err := ChartArchives(ctx, dir, Branches...); err != nil {
		t.Fatal(err)
	}
	inst, err := mesh.New(mesh.Options{ChartDir: dir, Version: Release131.Version})
	if err != nil {
		t.Fatal(err)
	}
	got, err := inst.AvailableVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, v := range got {
		vs = append(vs, v.String())
	}
	if want := []string{Release131.Version, Release130.Version}; !slices.Equal(vs, want) {
		t.Fatalf("versions in %s: %v; want %v", dir, vs, want)
	}
	for _, b := range Branches {
		src, err := ChartDir(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range mesh.Charts {
			ch, err := inst.LoadChart(ctx, c, b.Version)
			if err != nil {
				t.Fatal(err)
			}
			// The archive holds the branch's own chart: its values.yaml as in the source.
			want, err := os.ReadFile(filepath.Join(src, string(c), "values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var have []byte
			for _, f := range ch.Raw {
				if f.Name == "values.yaml" {
					have = f.Data
				}
			}
			if string(have) != string(want) {
				t.Errorf("%s %s: the archive's values.yaml differs from the branch's (%d vs %d bytes)", b.Name, c, len(have), len(want))
			}
		}
	}
}
