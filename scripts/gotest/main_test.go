package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGroupsSeparateSameNamedBinaries(t *testing.T) {
	pkgs := []Package{{ImportPath: "m"}, {ImportPath: "m/cmd/m"}, {ImportPath: "m/a/e2e"}, {ImportPath: "m/b/e2e"}, {ImportPath: "m/c/e2e"}, {ImportPath: "m/x"}}
	got := Groups(pkgs)
	want := [][]Package{
		{{ImportPath: "m"}, {ImportPath: "m/a/e2e"}, {ImportPath: "m/x"}},
		{{ImportPath: "m/cmd/m"}, {ImportPath: "m/b/e2e"}},
		{{ImportPath: "m/c/e2e"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Groups = %v\nwant %v", got, want)
	}
}

func TestLongestFirst(t *testing.T) {
	pkgs := []Package{{ImportPath: "a"}, {ImportPath: "b"}, {ImportPath: "c"}, {ImportPath: "d"}, {ImportPath: "e"}}
	got := LongestFirst(pkgs, map[string]float64{"a": 1, "b": 120, "c": 1, "e": 30})
	if want := []int{3, 1, 4, 0, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("LongestFirst = %v, want %v (never timed first, then longest, ties in order)", got, want)
	}
}

func TestTestArgs(t *testing.T) {
	got, err := TestArgs([]string{"-count=1", "-run", "TestX|TestY", "-v", "-timeout=5m", "-count", "3", "-short"})
	want := []string{"-test.run=TestX|TestY", "-test.v=true", "-test.timeout=5m", "-test.short=true"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("TestArgs = %q, %v; want %q", got, err, want)
	}
	for _, bad := range [][]string{{"-race"}, {"-run"}, {"./..."}} {
		if _, err := TestArgs(bad); err == nil {
			t.Errorf("TestArgs(%q) accepted", bad)
		}
	}
}

// A module of its own: two packages whose binaries share a name, one failing. The run fails
// naming that package and printing its output; fixed, it passes, and a second run relinks
// nothing (the binaries' modification times stay).
func TestRunBuildsOnceAndReportsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	mod := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(mod, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module m\n\ngo 1.22\n")
	write("a/e2e/e2e_test.go", "package e2e\nimport (\"os\"; \"testing\")\nfunc TestHere(t *testing.T) { if _, err := os.Stat(\"e2e_test.go\"); err != nil { t.Fatal(\"not run in its package directory\") } }\n")
	write("b/e2e/e2e_test.go", "package e2e\nimport \"testing\"\nfunc TestBroken(t *testing.T) { t.Fatal(\"b is broken on purpose\") }\n")
	write("c/c.go", "package c\n") // no tests: no binary, not run
	bin := t.TempDir()
	chdir(t, mod)

	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code := run(ctx, []string{"-bin", bin, "./...", "--", "-count=1"}, &out, &errs); code != 1 {
		t.Fatalf("exit %d with a failing package; stdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"ok  \tm/a/e2e\t", "b is broken on purpose", "FAIL\tm/b/e2e\t", "FAIL: 1 of 2 packages: m/b/e2e"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "m/c") {
		t.Errorf("a package without tests was run:\n%s", out.String())
	}

	write("b/e2e/e2e_test.go", "package e2e\nimport \"testing\"\nfunc TestBroken(t *testing.T) {}\n")
	out.Reset()
	if code := run(ctx, []string{"-bin", bin, "./..."}, &out, &errs); code != 0 {
		t.Fatalf("exit %d once fixed:\n%s\n%s", code, out.String(), errs.String())
	}
	var binaries []string
	filepath.Walk(bin, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".test") {
			binaries = append(binaries, p)
		}
		return nil
	})
	if len(binaries) != 2 {
		t.Fatalf("binaries %v, want two (same name, two groups)", binaries)
	}
	out.Reset()
	if code := run(ctx, []string{"-bin", bin, "./...", "--", "-run", "TestHere", "-v"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d on the third run:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "=== RUN   TestHere") || strings.Contains(out.String(), "TestBroken") {
		t.Errorf("-run/-v not passed on:\n%s", out.String())
	}
	// Nothing changed since: building into the same directory links nothing (what saves the
	// ~240 CPU-seconds); go test -c -x prints each command it runs.
	x := exec.CommandContext(ctx, "go", "test", "-c", "-x", "-o", filepath.Join(bin, "0")+"/", "./a/e2e")
	trace, err := x.CombinedOutput()
	if err != nil {
		t.Fatalf("go test -c -x: %v\n%s", err, trace)
	}
	if strings.Contains(string(trace), "/link ") {
		t.Errorf("an up-to-date test binary was linked again:\n%s", trace)
	}
}

func chdir(t *testing.T, dir string) {
	old, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(old) })
}

// The packages that get a shared API server are those whose test binaries link the tier-1
// harness, directly or through a helper package; the harness's own tests start their own.
func TestTier1PackagesAreThoseLinkingTheHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := tier1Packages(ctx, "go", []string{
		"meshconform/framework/diag",                   // imports apitest in its tests
		"meshconform/framework/gatewayapi/ingresstest", // through a helper
		"meshconform/framework/report",                 // no tier-1 test
		"meshconform/internal/apitest",                 // the harness
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"meshconform/framework/diag": true, "meshconform/framework/gatewayapi/ingresstest": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tier1Packages = %v, want %v", got, want)
	}
}
