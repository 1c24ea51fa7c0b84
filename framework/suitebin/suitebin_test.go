package suitebin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// module writes a small module: a suite package (with a test and an embedded file) that imports
// a library package of the same module, and returns its root.
func module(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"go.mod":              "module example.com/m\n\ngo 1.26\n",
		"lib/lib.go":          "package lib\n\nfunc Answer() int { return 42 }\n",
		"lib/lib_test.go":     "package lib\n\nimport \"testing\"\n\nfunc TestLib(t *testing.T) {}\n",
		"suite/suite.go":      "package suite\n\nimport _ \"embed\"\n\n//go:embed data.txt\nvar Data string\n",
		"suite/data.txt":      "one\n",
		"suite/s_test.go":     "//go:build e2e\n\npackage suite\n\nimport (\n\t\"testing\"\n\n\t\"example.com/m/lib\"\n)\n\nfunc TestAnswer(t *testing.T) {\n\tif lib.Answer() != 42 {\n\t\tt.Fatal(\"no\")\n\t}\n\tt.Log(Data)\n}\n",
		"suite/notag_test.go": "package suite\n",
	}
	for name, body := range files {
		write(t, filepath.Join(root, name), body)
	}
	return root
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// The binary is linked once; an unchanged source finds it; each kind of input the build reads
// (the suite's test file, a library package of the module, an embedded file, go.mod, the tags)
// gives a new key and a new link; a library's own test file does not; and the binary runs.
func TestBinaryCachedByWhatTheBuildReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test -c")
	}
	root := module(t)
	s := Suite{Root: root, Package: "./suite", Tags: []string{"e2e"}, Dir: t.TempDir()}
	first, err := s.Binary(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if first.Cached {
		t.Fatal("the first build says it was cached")
	}
	out, err := exec.Command(first.Path, "-test.run=TestAnswer", "-test.v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "one") {
		t.Fatalf("the binary does not run the tagged suite with its embedded file: %v\n%s", err, out)
	}
	again, err := s.Binary(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Path != first.Path || again.Key != first.Key {
		t.Fatalf("unchanged source: got %+v, want the cached %s", again, first.Path)
	}

	// A library's test file is not in the binary: same key.
	write(t, filepath.Join(root, "lib/lib_test.go"), "package lib\n\nimport \"testing\"\n\nfunc TestLib2(t *testing.T) {}\n")
	if b, err := s.Binary(ctx(t)); err != nil || !b.Cached {
		t.Fatalf("a library's test file changed the key: %+v %v", b, err)
	}

	seen := map[string]string{first.Key: "first"}
	for _, c := range []struct {
		name string
		edit func()
	}{
		{"suite test file", func() {
			write(t, filepath.Join(root, "suite/s_test.go"), strings.Replace(readFile(t, filepath.Join(root, "suite/s_test.go")), "no", "not 42", 1))
		}},
		{"library package", func() {
			write(t, filepath.Join(root, "lib/lib.go"), "package lib\n\nfunc Answer() int { return 6 * 7 }\n")
		}},
		{"embedded file", func() { write(t, filepath.Join(root, "suite/data.txt"), "two\n") }},
		{"go.mod", func() { write(t, filepath.Join(root, "go.mod"), "module example.com/m\n\ngo 1.26.0\n") }},
	} {
		c.edit()
		b, err := s.Binary(ctx(t))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if b.Cached {
			t.Errorf("%s changed: the old binary was reused (key %s)", c.name, b.Key[:12])
		}
		if prev, ok := seen[b.Key]; ok {
			t.Errorf("%s changed: same key as after %s", c.name, prev)
		}
		seen[b.Key] = c.name
	}
	if out, err := exec.Command(filepath.Join(s.Dir, "suite-"+mustKey(t, s)[:20], "suite.test"), "-test.run=TestAnswer", "-test.v").CombinedOutput(); err != nil || !strings.Contains(string(out), "two") {
		t.Fatalf("the newest binary does not hold the newest embedded file: %v\n%s", err, out)
	}

	untagged := s
	untagged.Tags = nil
	if k := mustKey(t, untagged); k == mustKey(t, s) {
		t.Error("the build tags are not in the key")
	}

	// Only the newest few binaries stay.
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != keep {
		t.Errorf("%d cached binaries after %d builds, want the newest %d", len(entries), len(seen), keep)
	}
}

func mustKey(t *testing.T, s Suite) string {
	t.Helper()
	k, err := s.Key(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A suite that does not compile is an error naming the command and what the compiler said.
func TestBinaryCompileError(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test -c")
	}
	root := module(t)
	write(t, filepath.Join(root, "lib/lib.go"), "package lib\n\nfunc Answer() int { return \"x\" }\n")
	_, err := Suite{Root: root, Package: "./suite", Tags: []string{"e2e"}, Dir: t.TempDir()}.Binary(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "compiling the suite ./suite") || !strings.Contains(err.Error(), "lib.go") {
		t.Fatalf("got %v, want the compile error with the command and the file", err)
	}
}

// The key reads go list's output restricted to listed's fields (-json=…, which makes go list
// skip the rest of its work): every package must decode exactly as from the full -json, the
// replaced module and the suite's test files included, for this module's own e2e suite.
func TestListedFieldsReadAsFullJSON(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s := Suite{Root: root, Package: "./suites", Tags: []string{"e2e"}}
	decode := func(flag string) []listed {
		out, err := s.run(ctx(t), "list", "-deps", "-test", flag, "-tags", "e2e", "./suites")
		if err != nil {
			t.Fatal(err)
		}
		pkgs, err := decodeListed(out)
		if err != nil {
			t.Fatal(err)
		}
		return pkgs
	}
	full, some := decode("-json"), decode("-json="+listedFields)
	if len(full) < 100 {
		t.Fatalf("go list -deps -test ./suites: %d packages, want the suite's whole build", len(full))
	}
	if !reflect.DeepEqual(full, some) {
		for i := range min(len(full), len(some)) {
			if !reflect.DeepEqual(full[i], some[i]) {
				t.Fatalf("package %d differs:\n-json:   %+v\n-json=…: %+v", i, full[i], some[i])
			}
		}
		t.Fatalf("-json listed %d packages, -json=%s %d", len(full), listedFields, len(some))
	}
}
