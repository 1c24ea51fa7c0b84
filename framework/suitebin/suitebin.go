// Package suitebin builds a Ginkgo suite's test binary once per source and keeps it outside the
// tree, so that the many runs of one checkout (a run, a rerun of one label, the gate's six suite
// runs, the live tier's seventeen, the dry-run tests of make test) link it once instead of every
// time: `go tool ginkgo ./suites` relinks the whole suite (Kubernetes, Helm, kind) on each call,
// because Go's build cache keeps compiled packages but not linked test binaries.
//
// The cache key is what the build reads, as `go list -deps -test` names it: the content and
// name of every file of every package of the main module the suite imports (Go, cgo and
// embedded files, so the catalog and the manifests count), the module and version of every
// other package (go.sum pins their content), go.mod and go.sum, the Go version and the build
// environment (GOOS, GOARCH, CGO_ENABLED, GOFLAGS, GOEXPERIMENT, GOAMD64, CC) and the build tags.
// Standard-library packages are covered by the Go version. A key that changes means a new
// binary; a binary found under an unchanged key is the one `go test -c` would link again.
package suitebin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
)

// DirEnv overrides where binaries are cached (default: the user cache directory's
// meshconform/suites).
const DirEnv = "MESHCONFORM_SUITE_CACHE"

// keep is how many binaries of one suite stay cached (the newest by use): a few, so that
// switching between branches does not relink, without growing without bound.
const keep = 3

// Suite is one suite package to build.
type Suite struct {
	// Root is the module root; Package is the suite's directory relative to it ("./suites").
	Root, Package string
	// Tags are the build tags ("e2e").
	Tags []string
	// Dir is the cache directory (Dir() when empty).
	Dir string
	// Go is the go command (default "go").
	Go string
}

// Built is a suite binary ready to run.
type Built struct {
	Path string
	Key  string
	// Cached says the binary was found, not linked; Took is what finding or building it took
	// (the key's go list included).
	Cached bool
	Took   time.Duration
}

// Dir is the default cache directory.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for suite binaries (set %s or XDG_CACHE_HOME): %w", DirEnv, err)
	}
	return filepath.Join(base, "meshconform", "suites"), nil
}

func (s Suite) goCmd() string {
	if s.Go != "" {
		return s.Go
	}
	return "go"
}

// rel is the suite's directory relative to the module root, however Package was written
// ("./suites", "suites", or "." from inside it).
func (s Suite) rel() (string, error) {
	root, err := filepath.Abs(s.Root)
	if err != nil {
		return "", err
	}
	dir := s.Package
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("suite %s is not inside the module at %s", s.Package, s.Root)
	}
	return filepath.ToSlash(rel), nil
}

// name is the binary's base name: the package directory's ("suites", "upgrade").
func (s Suite) name() string {
	if rel, err := s.rel(); err == nil && rel != "." {
		return filepath.Base(rel)
	}
	return "suite"
}

// Binary returns the suite's test binary, linking it only when none is cached under its key.
func (s Suite) Binary(ctx context.Context) (Built, error) {
	start := time.Now()
	dir := s.Dir
	if dir == "" {
		d, err := Dir()
		if err != nil {
			return Built{}, err
		}
		dir = d
	}
	key, err := s.Key(ctx)
	if err != nil {
		return Built{}, err
	}
	entry := filepath.Join(dir, s.name()+"-"+key[:20])
	bin := filepath.Join(entry, s.name()+".test")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		now := time.Now()
		_ = os.Chtimes(entry, now, now) // most recently used: kept by prune
		return Built{Path: bin, Key: key, Cached: true, Took: time.Since(start)}, nil
	}
	if err := os.MkdirAll(entry, 0o755); err != nil {
		return Built{}, err
	}
	// Linked beside its final name and renamed, so a concurrent run never sees half a binary.
	tmp, err := os.CreateTemp(entry, s.name()+".*.tmp")
	if err != nil {
		return Built{}, err
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath)
	args := []string{"test", "-c", "-o", tmpPath}
	if len(s.Tags) > 0 {
		args = append(args, "-tags", strings.Join(s.Tags, ","))
	}
	args = append(args, s.Package)
	cmd := exec.CommandContext(ctx, s.goCmd(), args...)
	cmd.Dir = s.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Built{}, fmt.Errorf("compiling the suite %s (go %s in %s): %v\n%s", s.Package, strings.Join(args, " "), s.Root, err, strings.TrimSpace(out.String()))
	}
	if err := os.Chmod(tmpPath, 0o755); err != nil {
		return Built{}, err
	}
	if err := os.Rename(tmpPath, bin); err != nil {
		return Built{}, err
	}
	prune(dir, s.name(), keep)
	return Built{Path: bin, Key: key, Took: time.Since(start)}, nil
}

// listed is what go list says of one package, the fields the key reads.
type listed struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *struct {
		Path    string
		Version string
		Main    bool
		Dir     string
		Replace *struct {
			Path, Version, Dir string
		}
	}
	GoFiles, CgoFiles, CFiles, CXXFiles, HFiles, SFiles, SysoFiles, EmbedFiles []string
	TestGoFiles, XTestGoFiles, TestEmbedFiles, XTestEmbedFiles                 []string
	Error                                                                      *struct{ Err string }
}

// listedFields are listed's fields, as go list's -json=… names them.
var listedFields = func() string {
	t := reflect.TypeFor[listed]()
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = t.Field(i).Name
	}
	return strings.Join(names, ",")
}()

// decodeListed reads go list -json's stream of packages.
func decodeListed(out []byte) ([]listed, error) {
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// envKeys are the go env values that change what is built.
var envKeys = []string{"GOVERSION", "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "CC"}

// Key is the suite's cache key (hex SHA-256).
func (s Suite) Key(ctx context.Context) (string, error) {
	rel, err := s.rel()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "suitebin v1\npackage %s\ntags %s\n", rel, strings.Join(s.Tags, ","))

	envOut, err := s.run(ctx, append([]string{"env"}, envKeys...)...)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "env\n%s\n", envOut)

	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, filepath.Join(s.Root, f), f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}

	// Only the fields the key reads: go list then skips the rest of its work (2.3s → 0.7s for
	// ./suites' 1417 packages, measured on this 2-core machine); each live run asks it once per suite.
	args := []string{"list", "-deps", "-test", "-json=" + listedFields}
	if len(s.Tags) > 0 {
		args = append(args, "-tags", strings.Join(s.Tags, ","))
	}
	args = append(args, s.Package)
	out, err := s.run(ctx, args...)
	if err != nil {
		return "", err
	}
	pkgs, err := decodeListed(out)
	if err != nil {
		return "", err
	}
	for _, p := range pkgs {
		if p.Error != nil {
			return "", fmt.Errorf("go list %s: %s: %s", s.Package, p.ImportPath, p.Error.Err)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ImportPath < pkgs[j].ImportPath })
	suiteDir, err := filepath.Abs(filepath.Join(s.Root, s.Package))
	if err != nil {
		return "", err
	}
	for _, p := range pkgs {
		if err := hashPackage(h, p, filepath.Clean(p.Dir) == suiteDir); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashPackage adds one package: its files' content when they are the build's own (the main
// module, or a module replaced by a directory), else its module's path and version. Test files
// count for the suite's own package only: the binary holds no other package's tests.
func hashPackage(h io.Writer, p listed, suite bool) error {
	fmt.Fprintf(h, "pkg %s\n", p.ImportPath)
	switch {
	case p.Standard:
		return nil // the Go version says which
	case p.Module == nil:
		return fmt.Errorf("package %s has no module: cannot key the suite's build on it", p.ImportPath)
	case !p.Module.Main && (p.Module.Replace == nil || p.Module.Replace.Version != ""):
		fmt.Fprintf(h, "module %s@%s", p.Module.Path, p.Module.Version)
		if r := p.Module.Replace; r != nil {
			fmt.Fprintf(h, " => %s@%s", r.Path, r.Version)
		}
		fmt.Fprintln(h)
		return nil
	}
	lists := [][]string{p.GoFiles, p.CgoFiles, p.CFiles, p.CXXFiles, p.HFiles, p.SFiles, p.SysoFiles, p.EmbedFiles}
	if suite {
		lists = append(lists, p.TestGoFiles, p.XTestGoFiles, p.TestEmbedFiles, p.XTestEmbedFiles)
	}
	var files []string
	for _, list := range lists {
		files = append(files, list...)
	}
	sort.Strings(files)
	for _, f := range files {
		path := f
		if !filepath.IsAbs(f) { // the test main is generated in Go's cache, named by its content
			path = filepath.Join(p.Dir, f)
		}
		if err := hashFile(h, path, f); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(h io.Writer, path, name string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	fmt.Fprintf(h, "file %s %x\n", name, sum)
	return nil
}

func (s Suite) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.goCmd(), args...)
	cmd.Dir = s.Root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s (in %s): %v\n%s", strings.Join(args, " "), s.Root, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// prune keeps the n most recently used binaries of the suite name under dir.
func prune(dir, name string, n int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type used struct {
		path string
		t    time.Time
	}
	var mine []used
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), name+"-") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			mine = append(mine, used{filepath.Join(dir, e.Name()), fi.ModTime()})
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].t.After(mine[j].t) })
	for _, u := range mine[min(n, len(mine)):] {
		_ = os.RemoveAll(u.path)
	}
}
