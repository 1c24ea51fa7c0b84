package apitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

const (
	istioAPIModule = "istio.io/api"
	istioCRDPath   = "kubernetes/customresourcedefinitions.gen.yaml"
	// CRDFileEnv overrides where Istio's CRDs are read from (a YAML file).
	CRDFileEnv = "MESHCONFORM_ISTIO_CRDS"
)

// IstioCRDFile locates Istio's CRDs in the istio.io/api module this code was built with.
//
// First choice: `go list -m -f {{.Dir}} istio.io/api`, run in the test's directory (inside
// the module). It answers from the same module graph the test binary was compiled from —
// go.mod's version, replace directives, workspaces, GOFLAGS, GOMODCACHE — so the CRDs match
// the istio.io/client-go types in use, and it needs no knowledge of the cache's layout.
// Fallback, for a test binary run where no go command is at hand: the version recorded in
// the binary's build info, under GOMODCACHE (or GOPATH/pkg/mod).
func IstioCRDFile(ctx context.Context) (string, error) {
	if f := os.Getenv(CRDFileEnv); f != "" {
		if _, err := os.Stat(f); err != nil {
			return "", fmt.Errorf("apitest: %s=%s: %w", CRDFileEnv, f, err)
		}
		return f, nil
	}
	var tried []string
	if dir, err := goListModuleDir(ctx, istioAPIModule); err == nil {
		f := filepath.Join(dir, istioCRDPath)
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
		tried = append(tried, f)
	} else {
		tried = append(tried, "go list -m istio.io/api: "+err.Error())
	}
	if dir, err := moduleCacheDir(istioAPIModule); err == nil {
		f := filepath.Join(dir, istioCRDPath)
		if _, err := os.Stat(f); err == nil {
			return f, nil
		}
		tried = append(tried, f)
	} else {
		tried = append(tried, err.Error())
	}
	return "", fmt.Errorf("apitest: cannot find Istio's CRDs (%s in module %s); tried: %s. "+
		"Run `go mod download istio.io/api` in the module, or set %s to the YAML file",
		istioCRDPath, istioAPIModule, strings.Join(tried, "; "), CRDFileEnv)
}

func goListModuleDir(ctx context.Context, module string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("no directory (vendored?)")
	}
	return dir, nil
}

func moduleCacheDir(module string) (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", fmt.Errorf("no build info in this binary")
	}
	var version string
	for _, d := range bi.Deps {
		if d.Path == module {
			version = d.Version
			if d.Replace != nil {
				if filepath.IsAbs(d.Replace.Path) || strings.HasPrefix(d.Replace.Path, ".") {
					return d.Replace.Path, nil // a local replacement: its directory
				}
				module, version = d.Replace.Path, d.Replace.Version
			}
		}
	}
	if version == "" {
		return "", fmt.Errorf("%s is not in this binary's build info", module)
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	return filepath.Join(cache, escapeModulePath(module)+"@"+escapeModulePath(version)), nil
}

// escapeModulePath applies the module cache's case encoding ("A" becomes "!a").
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
