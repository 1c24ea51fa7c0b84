package istiosrc

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
)

// The module that builds a branch's pilot-discovery (scripts/istiod-image.sh), two files per
// branch (named so that Go does not take them for a nested module): build/<branch>.mod, the
// go.mod, requires istio.io/istio at the branch's pseudo-version, and build/<branch>.sum, the
// go.sum, holds the hash of every module the build reads. The build runs with
// -mod=readonly, so every module is checked against these hashes and nothing asks the checksum
// database: that matters for the substitutes below, which it does not list (the module proxy
// answers 404 for their lookups, e.g. /sumdb/sum.golang.org/lookup/github.com/envoyproxy/
// go-control-plane/contrib@v1.36.1-0.20260418153000-ae8637bdda9d); their hashes were recorded
// on first download from the proxy, the others' were checked against the database then.
//
// go.mod's replace directives are the branch's substitutions: dependencies whose pinned
// versions the module proxy refuses (403), each replaced by the nearest version it serves.
// For release-1.30 at 9739e10eb9d7 (its go.mod, lines 11, 23, 24, 99 and 100):
//
//	istio.io/api                                 v1.30.4-0.20260824163423-69099aec2678 → v1.30.8
//	istio.io/client-go                           v1.30.4-0.20260824164123-eb36a3f6cac0 → v1.30.8
//	github.com/envoyproxy/go-control-plane/envoy v1.37.1-0.20260409083702-98966259b99a → v1.37.1-0.20260418153000-ae8637bdda9d
//	github.com/envoyproxy/go-control-plane/contrib v1.36.1-0.20260409083702-98966259b99a → v1.36.1-0.20260418153000-ae8637bdda9d
//	github.com/agentgateway/agentgateway/api     v0.0.0-20260506232448-6ae4ab07bb06 → v0.0.0-20260408212224-34871c59e328
//
// So the 1.30 build is not exactly the commit's: the report says which modules were
// substituted (Branch.Build). release-1.31 needs none.
//
//go:embed build/*.mod build/*.sum
var buildFiles embed.FS

// BuildModule returns the go.mod and go.sum that build b's pilot-discovery.
func BuildModule(b Branch) (gomod, gosum []byte, err error) {
	gomod, err = buildFiles.ReadFile("build/" + b.Name + ".mod")
	if err != nil {
		return nil, nil, fmt.Errorf("istiosrc: no build module for %s (internal/istiosrc/build/%s.mod): %w", b.Name, b.Name, err)
	}
	gosum, err = buildFiles.ReadFile("build/" + b.Name + ".sum")
	if err != nil {
		return nil, nil, fmt.Errorf("istiosrc: no go.sum for %s (internal/istiosrc/build/%s.sum): %w", b.Name, b.Name, err)
	}
	return gomod, gosum, nil
}

// WriteBuildModule writes b's build module (go.mod, go.sum) into dir.
func WriteBuildModule(b Branch, dir string) error {
	gomod, gosum, err := BuildModule(b)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), gosum, 0o644)
}

// Substitutions parses the replace directives of b's build module: module path → the version
// built with.
func Substitutions(b Branch) (map[string]string, error) {
	gomod, _, err := BuildModule(b)
	if err != nil {
		return nil, err
	}
	f, err := modfile.Parse("build/"+b.Name+".mod", gomod, nil)
	if err != nil {
		return nil, fmt.Errorf("istiosrc: %w", err)
	}
	out := map[string]string{}
	for _, r := range f.Replace {
		if r.Old.Path != r.New.Path || r.Old.Version != "" || r.New.Version == "" {
			return nil, fmt.Errorf("istiosrc: build/%s.mod: replace %s => %s %s: only a module's version may be replaced, for every version of it", b.Name, r.Old.Path, r.New.Path, r.New.Version)
		}
		out[r.Old.Path] = r.New.Version
	}
	return out, nil
}

// Build says how b's images are built, for a report: "source build of release-1.30 at
// 9739e10eb9d7, not a release", with the substituted modules when there are any.
func (b Branch) Build() string {
	s := "source build of " + b.Name + " at " + b.Commit()
	repl, err := Substitutions(b)
	if err != nil || len(repl) == 0 {
		return s + ", not a release"
	}
	var parts []string
	for p, v := range repl {
		parts = append(parts, p+" "+v)
	}
	slices.Sort(parts)
	return s + " with " + strings.Join(parts, ", ") + " in place of its pins (not served by the Go module proxy), not a release"
}
