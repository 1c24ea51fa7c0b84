// Command gotest is `make test`'s `go test ./...` without relinking what did not change.
//
//	go run ./scripts/gotest [-p N] [-bin DIR] [packages...] [-- test flags]
//
// `go test` links every test binary on every run (-count=1 or not: a linked test binary is not
// kept in Go's build cache), and linking this module's ~40 test binaries costs about 240
// CPU-seconds, half of `make test` on 2 cores (measured: `go test -count=1 -run XXX ./...` took
// 243 CPU-seconds and ran no test). `go test -c -o DIR/` writes the binaries instead, and on the
// next run finds each one up to date by its build ID and relinks only those whose inputs
// changed; the binaries are then run, N at a time, each in its package's directory as `go test`
// runs it, the slowest first as the last run timed them (timings.json beside the binaries).
// The binaries are kept outside the tree (default ${XDG_CACHE_HOME:-~/.cache}/
// meshconform/testbin), path-independent with -trimpath (the Makefile's GOFLAGS), so a clean
// clone finds them too.
//
// Test flags after `--` take go test's spelling (-run X, -v, -count=1, -timeout 5m): each is
// passed to the binaries as -test.<name>; -count only says "do not use cached results", which a
// binary run directly never does. Exit status: 0 when every package passed, 1 when one failed or
// could not be built, 2 on bad usage.
//
// Tier-1 packages (those whose tests link internal/apitest) share API servers: each worker
// starts one etcd + kube-apiserver + kube-controller-manager when it first runs such a package,
// hands it to the binary (apitest.SharedEnv), and resets it to its baseline after each one
// (apitest.Shared.Reset); a reset that fails stops that environment and the next package gets a
// new one. A package's own start and stop cost about 8 CPU-seconds, and 15 packages had one.
// -share-apiservers=false, or a filtered run (-run, -skip, -list), gives each package its own
// again, started only when a test asks for it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"meshconform/internal/apitest"
)

func main() {
	apitest.ReaperMain() // the shared API servers' reaper is this binary re-run
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Package is one package with tests.
type Package struct {
	ImportPath, Dir string
}

// BinaryName is the test binary `go test -c` writes for p: its import path's last element.
func (p Package) BinaryName() string { return path.Base(p.ImportPath) + ".test" }

// Groups splits pkgs so that no group holds two packages whose test binaries have the same
// name (`go test -c -o DIR/` refuses those), keeping the packages' order; group i is built into
// DIR/i.
func Groups(pkgs []Package) [][]Package {
	var groups [][]Package
	var names []map[string]bool
	for _, p := range pkgs {
		i := 0
		for ; i < len(groups); i++ {
			if !names[i][p.BinaryName()] {
				break
			}
		}
		if i == len(groups) {
			groups = append(groups, nil)
			names = append(names, map[string]bool{})
		}
		groups[i] = append(groups[i], p)
		names[i][p.BinaryName()] = true
	}
	return groups
}

// TestArgs turns go test's flags into a test binary's: -run X → -test.run=X, -v → -test.v=true.
// -count is dropped (a binary run directly uses no cached result). A flag it does not know is
// an error naming it.
func TestArgs(flags []string) ([]string, error) {
	valued := map[string]bool{"run": true, "skip": true, "timeout": true, "parallel": true, "cpu": true, "list": true, "shuffle": true, "failfast": false, "v": false, "short": false}
	out := []string{}
	for i := 0; i < len(flags); i++ {
		f := flags[i]
		if !strings.HasPrefix(f, "-") {
			return nil, fmt.Errorf("test flag %q: packages go before --, test flags after it", f)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name == "count" {
			if !hasVal {
				i++
			}
			continue
		}
		needs, known := valued[name]
		if !known {
			return nil, fmt.Errorf("test flag %q is not one gotest passes on (run, skip, timeout, parallel, cpu, list, shuffle, failfast, v, short, count); run `go test` for it", f)
		}
		if needs && !hasVal {
			if i+1 == len(flags) {
				return nil, fmt.Errorf("test flag %q needs a value", f)
			}
			i++
			val, hasVal = flags[i], true
		}
		if !hasVal {
			val = "true"
		}
		out = append(out, "-test."+name+"="+val)
	}
	return out, nil
}

func defaultBinDir() string {
	if d := os.Getenv("MESHCONFORM_TESTBIN"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "meshconform-testbin")
	}
	return filepath.Join(base, "meshconform", "testbin")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gotest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	par := fs.Int("p", max(2, runtime.NumCPU()+1), "test binaries run at a time")
	bin := fs.String("bin", defaultBinDir(), "where the test binaries are kept between runs")
	goCmd := fs.String("go", "go", "the go command")
	share := fs.Bool("share-apiservers", true, "tier-1 packages run on one API server per worker, reset between packages, instead of each starting its own")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	var patterns, testFlags []string
	for i, a := range rest {
		if a == "--" {
			testFlags = rest[i+1:]
			break
		}
		patterns = append(patterns, a)
	}
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	targs, err := TestArgs(testFlags)
	if err != nil {
		fmt.Fprintf(stderr, "gotest: %v\n", err)
		return 2
	}
	if *par < 1 {
		fmt.Fprintf(stderr, "gotest: -p %d: run at least one binary at a time\n", *par)
		return 2
	}
	if err := os.MkdirAll(*bin, 0o755); err != nil {
		fmt.Fprintf(stderr, "gotest: %v\n", err)
		return 1
	}
	// One make test at a time per binary directory: another checkout's run would relink the
	// binaries under this one's feet.
	unlock, err := lock(ctx, filepath.Join(*bin, ".lock"), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gotest: %v\n", err)
		return 1
	}
	defer unlock()

	pkgs, err := list(ctx, *goCmd, patterns)
	if err != nil {
		fmt.Fprintf(stderr, "gotest: %v\n", err)
		return 1
	}
	filtered := false
	for _, a := range targs {
		filtered = filtered || strings.HasPrefix(a, "-test.run=") || strings.HasPrefix(a, "-test.skip=") || strings.HasPrefix(a, "-test.list=")
	}
	tier1 := map[string]bool{}
	assets := os.Getenv(apitest.AssetsEnv)
	// A filtered run may select no tier-1 test at all: there each binary starts its own server
	// only when a test asks for one (apitest.Env), rather than every worker starting one.
	if *share && assets != "" && !filtered {
		if tier1, err = tier1Packages(ctx, *goCmd, patterns); err != nil {
			fmt.Fprintf(stderr, "gotest: %v\n", err)
			return 1
		}
	}
	began := time.Now()
	groups := Groups(pkgs)
	for i, g := range groups {
		dir := filepath.Join(*bin, fmt.Sprint(i)) + string(filepath.Separator)
		cmd := exec.CommandContext(ctx, *goCmd, append([]string{"test", "-c", "-o", dir}, importPaths(g)...)...)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "gotest: building the test binaries of %s: %v\n", strings.Join(importPaths(g), " "), err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gotest: %d test binaries built or found up to date in %s (%s)\n", len(pkgs), time.Since(began).Round(100*time.Millisecond), *bin)
	childrenBefore := childrenCPU()

	type result struct {
		pkg    Package
		out    []byte
		err    error
		took   time.Duration
		cpu    time.Duration // user + system, the binary's and its waited-for children's (its API servers)
		binary string
	}
	// Longest first (as the last run measured them, kept beside the binaries): the slowest
	// package then starts at once instead of last, which on 2 cores decides the wall time.
	timings := readTimings(filepath.Join(*bin, timingsFile))
	order := LongestFirst(pkgs, timings)
	jobs := make(chan int)
	results := make(chan result)
	var wg sync.WaitGroup
	binOf := map[string]string{}
	for i, g := range groups {
		for _, p := range g {
			binOf[p.ImportPath] = filepath.Join(*bin, fmt.Sprint(i), p.BinaryName())
		}
	}
	var sharedMu sync.Mutex
	var sharedStarts, sharedUses int
	var resetTime time.Duration
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var env *apitest.Shared
			defer func() {
				if env != nil {
					if err := env.Stop(); err != nil {
						fmt.Fprintf(stderr, "gotest: stopping a shared API server: %v\n", err)
					}
				}
			}()
			for i := range jobs {
				p := pkgs[i]
				r := result{pkg: p, binary: binOf[p.ImportPath]}
				var extra []string
				if tier1[p.ImportPath] && env == nil && ctx.Err() == nil {
					sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
					e, err := apitest.StartShared(sctx, assets)
					cancel()
					if err != nil {
						fmt.Fprintf(stderr, "gotest: no shared API server for %s, it starts its own: %v\n", p.ImportPath, err)
					} else {
						env = e
						sharedMu.Lock()
						sharedStarts++
						sharedMu.Unlock()
					}
				}
				if tier1[p.ImportPath] && env != nil {
					extra = []string{apitest.SharedEnv + "=" + env.File()}
				}
				start := time.Now()
				r.out, r.cpu, r.err = runBinary(ctx, r.binary, p.Dir, targs, extra)
				r.took = time.Since(start)
				results <- r
				if extra == nil {
					continue
				}
				start = time.Now()
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := env.Reset(rctx)
				cancel()
				sharedMu.Lock()
				sharedUses++
				resetTime += time.Since(start)
				sharedMu.Unlock()
				if err != nil {
					fmt.Fprintf(stderr, "gotest: after %s, its API server could not be reset and is stopped (the next package gets a new one): %v\n", p.ImportPath, err)
					if err := env.Stop(); err != nil {
						fmt.Fprintf(stderr, "gotest: stopping a shared API server: %v\n", err)
					}
					env = nil
				}
			}
		}()
	}
	go func() {
		for _, i := range order {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	var failed []string
	var cpu time.Duration
	verbose := false
	for _, a := range targs {
		verbose = verbose || a == "-test.v=true"
	}
	for r := range results {
		timings[r.pkg.ImportPath] = r.took.Seconds()
		cpu += r.cpu
		secs := fmt.Sprintf("%.3fs\tcpu %.1fs", r.took.Seconds(), r.cpu.Seconds())
		switch {
		case r.err != nil && errors.Is(r.err, errNoBinary):
			fmt.Fprintf(stdout, "%s\nFAIL\t%s\t%s\n", r.err, r.pkg.ImportPath, secs)
			failed = append(failed, r.pkg.ImportPath)
		case r.err != nil:
			stdout.Write(r.out)
			fmt.Fprintf(stdout, "FAIL\t%s\t%s\n", r.pkg.ImportPath, secs)
			failed = append(failed, r.pkg.ImportPath)
		default:
			if verbose {
				stdout.Write(r.out)
			}
			fmt.Fprintf(stdout, "ok  \t%s\t%s\n", r.pkg.ImportPath, secs)
		}
	}
	if ctx.Err() == nil && !filtered { // a filtered run's times say nothing of a whole one's
		writeTimings(filepath.Join(*bin, timingsFile), timings)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "gotest: interrupted")
		return 1
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		fmt.Fprintf(stdout, "FAIL: %d of %d packages: %s\n", len(failed), len(pkgs), strings.Join(failed, " "))
		return 1
	}
	if sharedStarts > 0 {
		fmt.Fprintf(stderr, "gotest: %d tier-1 packages ran on %d shared API servers; resetting them took %s; the servers used %s of CPU\n",
			sharedUses, sharedStarts, resetTime.Round(100*time.Millisecond), (childrenCPU() - childrenBefore - cpu).Round(100*time.Millisecond))
	}
	fmt.Fprintf(stderr, "gotest: %d packages passed in %s; the test binaries used %s of CPU\n", len(pkgs), time.Since(began).Round(100*time.Millisecond), cpu.Round(100*time.Millisecond))
	return 0
}

var errNoBinary = errors.New("no test binary")

// childrenCPU is the user + system time of every child process waited for so far (the
// test binaries, the builds, and the shared API servers once stopped).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runBinary runs a test binary as go test does: in the package's directory, with a timeout
// (go test's default 10m unless given), -test.paniconexit0 and -test.parallel=8 unless
// given. It returns the CPU time the binary and the children it waited for (etcd,
// kube-apiserver …) used.
func runBinary(ctx context.Context, binary, dir string, targs, env []string) ([]byte, time.Duration, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, 0, fmt.Errorf("%w: %s was not written by go test -c (%v)", errNoBinary, binary, err)
	}
	// -test.parallel=8: the t.Parallel tests here wait on API servers (the namespace
	// controller's 5 s and 16 s delays) far more than they compute, so more overlap than
	// GOMAXPROCS (go test's default) pays.
	args := []string{"-test.paniconexit0", "-test.timeout=10m", "-test.parallel=8"}
	args = append(args, targs...) // a later -test.timeout wins
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var cpu time.Duration
	if ps := cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	return out.Bytes(), cpu, err
}

// list returns the packages matched by patterns that have test files, in go list's order.
func list(ctx context.Context, goCmd string, patterns []string) ([]Package, error) {
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}\t{{.Dir}}{{end}}"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v\n%s", strings.Join(patterns, " "), err, stderr.String())
	}
	var pkgs []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if ip, dir, ok := strings.Cut(line, "\t"); ok {
			pkgs = append(pkgs, Package{ImportPath: ip, Dir: dir})
		}
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("go list %s: no package with tests", strings.Join(patterns, " "))
	}
	return pkgs, nil
}

// tier1Packages are the packages matched by patterns whose test binaries link
// internal/apitest, directly or through a helper package. The harness's own tests, and a
// package whose own code links it (this command), are left out: they start environments of
// their own, or none.
func tier1Packages(ctx context.Context, goCmd string, patterns []string) (map[string]bool, error) {
	const harness = "meshconform/internal/apitest"
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"list", "-test", "-f",
		`{{.ImportPath}}|{{.ForTest}}|{{range .Deps}}{{if eq . "` + harness + `"}}tier1{{end}}{{end}}`}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -test %s: %v\n%s", strings.Join(patterns, " "), err, stderr.String())
	}
	set, itself := map[string]bool{}, map[string]bool{harness: true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 || f[2] == "" {
			continue
		}
		if f[1] == "" { // the package itself, not a test variant
			itself[f[0]] = true
		} else {
			set[f[1]] = true
		}
	}
	for p := range itself {
		delete(set, p)
	}
	return set, nil
}

func importPaths(pkgs []Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.ImportPath)
	}
	return out
}

// lock takes an exclusive flock on file, saying once that it waits when another run holds it.
func lock(ctx context.Context, file string, stderr io.Writer) (func(), error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(stderr, "gotest: waiting for another run's lock on %s\n", file)
		done := make(chan error, 1)
		go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				return nil, err
			}
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		}
	}
	return func() { f.Close() }, nil
}

const timingsFile = "timings.json"

// LongestFirst orders pkgs' indexes by their last run time, longest first; a package never
// timed goes first of all (it may be the slowest), and ties keep go list's order.
func LongestFirst(pkgs []Package, seconds map[string]float64) []int {
	order := make([]int, len(pkgs))
	for i := range order {
		order[i] = i
	}
	key := func(i int) float64 {
		if s, ok := seconds[pkgs[i].ImportPath]; ok {
			return s
		}
		return math.Inf(1)
	}
	sort.SliceStable(order, func(a, b int) bool { return key(order[a]) > key(order[b]) })
	return order
}

func readTimings(file string) map[string]float64 {
	out := map[string]float64{}
	if data, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(data, &out) // unreadable: no order known, go list's is used
	}
	return out
}

func writeTimings(file string, seconds map[string]float64) {
	if data, err := json.MarshalIndent(seconds, "", "  "); err == nil {
		_ = os.WriteFile(file, data, 0o644) // only an order hint for the next run
	}
}
