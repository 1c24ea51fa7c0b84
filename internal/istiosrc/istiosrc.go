// Package istiosrc locates Istio's own source for the tests: the istio.io/istio module at a
// release branch's pseudo-version, fetched with `go mod download` into the Go module cache
// (GOMODCACHE, outside the tree, cached in CI like the envtest assets), and from it
//
//   - Istio's Helm charts base, istiod, gateway, cni and ztunnel, copied into a cache directory
//     (${XDG_CACHE_HOME:-~/.cache}/meshconform/istio-src/<branch>@<pseudo-version>/) laid out as
//     framework/mesh's ChartDir expects, with their placeholder chart version replaced by
//     Branch.Version;
//   - the sidecar injector's golden files (pkg/kube/inject/testdata/inject/), copied beside
//     them into inject/.
//
// Once that directory is built, the module is not needed again: CI can cache the directory
// alone (keyed by this file, which pins the versions). Nothing of Istio's is committed here, and istio.io/istio is not a dependency in go.mod: it is
// data. The download goes through the go command, so GOPROXY, GOFLAGS' proxy settings,
// GONOSUMDB/GOSUMDB and the module cache apply as for any module.
package istiosrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"meshconform/internal/moddownload"
)

// Module is Istio's Go module.
const Module = "istio.io/istio"

// Branch is one Istio release branch pinned at a commit.
type Branch struct {
	// Name is Istio's branch name, e.g. release-1.31.
	Name string
	// Pseudo is the Go module pseudo-version of the pinned commit on that branch, as the module
	// proxy serves it (v0.0.0-<commit time>-<commit>).
	Pseudo string
	// Version is the chart version (and appVersion) the suite installs this source under, and
	// the one string it treats as this branch's release: see versionFor.
	Version string
}

// The pinned branches: the one place their pseudo-versions are written in Go.
var (
	Release130 = branch("release-1.30", "v0.0.0-20260826214018-9739e10eb9d7")
	Release131 = branch("release-1.31", "v0.0.0-20260827124520-eed52ebb66ad")
)

// Branches lists every pinned branch, oldest first.
var Branches = []Branch{Release130, Release131}

func branch(name, pseudo string) Branch {
	return Branch{Name: name, Pseudo: pseudo, Version: versionFor(name, pseudo)}
}

var pseudoRE = regexp.MustCompile(`^v0\.0\.0-([0-9]{14})-([0-9a-f]{12})$`)

// versionFor is the version a source build of branch (release-MAJOR.MINOR) at pseudo is known
// by: MAJOR.MINOR.0-dev.<commit time>, e.g. 1.31.0-dev.20260827124520.
//
// Why this form: Istio itself versions a source build as "<VERSION file>-dev" (Makefile.core.mk:
// `VERSION := $(VERSION_FROM_FILE)-dev`; the VERSION file at the pinned commits holds "1.30"
// and "1.31"). That is not MAJOR.MINOR.PATCH, which Helm and mesh.ParseVersion require, so the
// patch is written as 0 and the "-dev" kept as a semver pre-release, marking the build as not
// a release: no published chart or image can carry this version, so a report can never pass
// it off as one. The commit time from the pseudo-version is appended as a numeric pre-release
// identifier, so two pinned commits of one branch get distinct versions (and image tags, for
// the later istiod builds) that order by commit time. Being a pre-release it sorts below
// MAJOR.MINOR.0; it still sorts above every earlier minor, which is what upgrades compare.
// The chart's own placeholder (Chart.yaml: "version: 1.0.0", "replaced at build-time" by
// istio/release-builder) is replaced by this string.
func versionFor(name, pseudo string) string {
	mm, ok := strings.CutPrefix(name, "release-")
	m := pseudoRE.FindStringSubmatch(pseudo)
	if !ok || strings.Count(mm, ".") != 1 || m == nil {
		panic(fmt.Sprintf("istiosrc: branch %q at %q is not release-MAJOR.MINOR at v0.0.0-<time>-<commit>", name, pseudo))
	}
	return mm + ".0-dev." + m[1]
}

// Commit is the commit of the pinned pseudo-version (its last 12 hex digits).
func (b Branch) Commit() string { return pseudoRE.FindStringSubmatch(b.Pseudo)[2] }

// ByVersion returns the pinned branch whose Version is v.
func ByVersion(v string) (Branch, bool) {
	for _, b := range Branches {
		if b.Version == v {
			return b, true
		}
	}
	return Branch{}, false
}

// ModuleDir returns the directory of istio.io/istio at b.Pseudo in the module cache,
// downloading it first when needed (`go mod download -json`, run outside any module so that
// this module's go.mod and go.sum are neither read nor changed).
func ModuleDir(ctx context.Context, b Branch) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	dir, err := moddownload.Dir(ctx, Module, b.Pseudo)
	if err != nil {
		return "", fmt.Errorf("istiosrc: go mod download %s@%s (%s): %v. It needs the Go module proxy (GOPROXY) or a module cache that holds it",
			Module, b.Pseudo, b.Name, err)
	}
	return dir, nil
}

// chartPaths maps the chart directories framework/mesh expects to where Istio keeps them
// (manifests/charts/ in the module). Each is named as its Chart.yaml names it, which is how
// Istio's chart repository lists it: istiod's chart is istio-control/istio-discovery (name:
// istiod), the ambient node agent's is istio-cni (name: cni; `helm install istio-cni
// istio/cni`), ztunnel's is ztunnel.
var chartPaths = map[string]string{
	"base":    "manifests/charts/base",
	"istiod":  "manifests/charts/istio-control/istio-discovery",
	"gateway": "manifests/charts/gateway",
	"cni":     "manifests/charts/istio-cni",
	"ztunnel": "manifests/charts/ztunnel",
}

// EnvCacheDir overrides where the charts are copied to.
const EnvCacheDir = "MESHCONFORM_ISTIO_SRC_CACHE"

// CacheDir is where branches' charts are kept: $MESHCONFORM_ISTIO_SRC_CACHE, else
// ${XDG_CACHE_HOME:-~/.cache}/meshconform/istio-src.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("istiosrc: no cache directory (%v): set %s", err, EnvCacheDir)
	}
	return filepath.Join(d, "meshconform", "istio-src"), nil
}

// layout names what a cache directory holds; a directory of another layout is rebuilt.
const layout = "layout 3 (base istiod gateway cni ztunnel inject)"

// goldenPath is where Istio keeps the injector's golden files.
const goldenPath = "pkg/kube/inject/testdata/inject"

// ChartDir returns a directory holding b's charts as base/, istiod/, gateway/, cni/ and
// ztunnel/, each with version and appVersion b.Version, ready for framework/mesh's
// Options.ChartDir (and the injector's goldens in inject/). It is built once per pinned commit (a complete directory is
// renamed into place) and reused afterwards.
func ChartDir(ctx context.Context, b Branch) (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(root, b.Name+"@"+b.Pseudo)
	stamp := layout + " " + Module + "@" + b.Pseudo + "\n"
	if got, err := os.ReadFile(filepath.Join(dst, ".complete")); err == nil && string(got) == stamp {
		return dst, nil
	}
	src, err := ModuleDir(ctx, b)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for name, rel := range chartPaths {
		if err := copyTree(filepath.Join(src, rel), filepath.Join(tmp, name)); err != nil {
			return "", fmt.Errorf("istiosrc: copy chart %s of %s: %w", rel, b.Name, err)
		}
		if err := setChartVersion(filepath.Join(tmp, name, "Chart.yaml"), name, b.Version); err != nil {
			return "", fmt.Errorf("istiosrc: %s of %s: %w", rel, b.Name, err)
		}
	}
	if err := copyTree(filepath.Join(src, goldenPath), filepath.Join(tmp, "inject")); err != nil {
		return "", fmt.Errorf("istiosrc: copy %s of %s: %w", goldenPath, b.Name, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(stamp), 0o644); err != nil {
		return "", err
	}
	// An incomplete or older-layout copy is replaced.
	if got, err := os.ReadFile(filepath.Join(dst, ".complete")); err != nil || string(got) != stamp {
		if err := os.RemoveAll(dst); err != nil {
			return "", fmt.Errorf("istiosrc: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		// Another process built it first: use theirs.
		if got, rerr := os.ReadFile(filepath.Join(dst, ".complete")); rerr == nil && string(got) == stamp {
			return dst, nil
		}
		return "", fmt.Errorf("istiosrc: %w", err)
	}
	return dst, nil
}

// placeholderRE matches the lines istio/release-builder rewrites (Chart.yaml: "This version is
// never actually shipped. istio/release-builder will replace it at build-time").
var placeholderRE = regexp.MustCompile(`(?m)^(version|appVersion): 1\.0\.0$`)

// setChartVersion replaces the placeholder version and appVersion, and checks the chart's name.
func setChartVersion(path, name, version string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !regexp.MustCompile(`(?m)^name: ` + regexp.QuoteMeta(name) + `$`).Match(data) {
		return fmt.Errorf("%s does not name the chart %q", path, name)
	}
	if n := len(placeholderRE.FindAll(data, -1)); n != 2 {
		return fmt.Errorf("%s: found %d of the 2 placeholder lines (version: 1.0.0, appVersion: 1.0.0) to replace; has Istio changed how it versions charts?", path, n)
	}
	data = placeholderRE.ReplaceAll(data, []byte("$1: "+version))
	return os.WriteFile(path, data, 0o644)
}

// copyTree copies a directory of regular files (the module cache's are read-only; the copies
// are not).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return errors.New(p + ": not a regular file")
	})
}

// InjectGoldenDir returns a copy of pkg/kube/inject/testdata/inject of b's module (in the
// directory ChartDir builds): the sidecar injector's golden files, pairs <case>.yaml (input)
// and <case>.yaml.injected (what Istio's injection template makes of it), which Istio's own
// tests (pkg/kube/inject/inject_test.go) regenerate from the template.
func InjectGoldenDir(ctx context.Context, b Branch) (string, error) {
	dir, err := ChartDir(ctx, b)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "inject"), nil
}

// GoldenPod reads the first object of b's injector golden file name (see InjectGoldenDir): a
// Pod, or a workload whose pod template is taken (named after the workload). It is decoded
// strictly: a field the Pod type does not know is an error, so a golden that outgrows the
// client's API types is noticed rather than silently trimmed.
func GoldenPod(ctx context.Context, b Branch, name string) (*corev1.Pod, error) {
	dir, err := InjectGoldenDir(ctx, b)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, _, _ := strings.Cut(string(data), "\n---")
	var head struct{ Kind string }
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch head.Kind {
	case "Pod":
		var p corev1.Pod
		if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &p, nil
	case "Deployment":
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p := &corev1.Pod{ObjectMeta: d.Spec.Template.ObjectMeta, Spec: d.Spec.Template.Spec}
		p.Name = d.Name
		return p, nil
	}
	return nil, fmt.Errorf("%s: a %s, not a Pod or Deployment", path, head.Kind)
}

// ChartArchives writes the charts of every branch given into dir as <chart>-<version>.tgz (as
// `helm package` and `helm pull` name them), so that one ISTIO_CHART_DIR holds several
// versions: a run installs one branch and upgrades to another (framework/mesh's chart
// directory reads both layouts). An archive already there is rewritten.
func ChartArchives(ctx context.Context, dir string, branches ...Branch) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("istiosrc: %w", err)
	}
	for _, b := range branches {
		src, err := ChartDir(ctx, b)
		if err != nil {
			return err
		}
		for name := range chartPaths {
			ch, err := loader.LoadDir(filepath.Join(src, name))
			if err != nil {
				return fmt.Errorf("istiosrc: chart %s of %s: %w", name, b.Name, err)
			}
			if _, err := chartutil.Save(ch, dir); err != nil {
				return fmt.Errorf("istiosrc: packaging chart %s of %s into %s: %w", name, b.Name, dir, err)
			}
		}
	}
	return nil
}
