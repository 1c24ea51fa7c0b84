package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"meshconform"
)

const repoRoot = "../.."

func workflowFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow files under .github/workflows (%v)", err)
	}
	return files
}

// actionlint runs `go tool actionlint` (pinned in go.mod's tool block) from the repository
// root on the files named (relative to the root, or absolute).
func actionlint(t *testing.T, files ...string) (string, error) {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Fatal("no go binary to run go tool actionlint")
		}
	}
	cmd := exec.Command(goBin, append([]string{"tool", "actionlint", "-no-color"}, files...)...)
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The workflows pass actionlint (which runs shellcheck on run: scripts where shellcheck is
// installed).
func TestWorkflowsPassActionlint(t *testing.T) {
	files := workflowFiles(t)
	rel := make([]string, len(files))
	for i, f := range files {
		rel[i] = strings.TrimPrefix(f, repoRoot+"/")
	}
	if out, err := actionlint(t, rel...); err != nil {
		t.Fatalf("actionlint found problems in the workflows (%v):\n%s", err, out)
	}
}

// The linter is live: a broken workflow fails it, so the test above can fail.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	dir := t.TempDir()
	wf := filepath.Join(dir, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	broken := "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
	if err := os.WriteFile(filepath.Join(wf, "broken.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := actionlint(t, filepath.Join(wf, "broken.yml"))
	if err == nil || !strings.Contains(out, "matrix") {
		t.Fatalf("actionlint passed a workflow that uses an undefined matrix (err %v):\n%s", err, out)
	}
}

var (
	// An Istio- or Kubernetes-like release (1.31.1, v1.37.0); action refs are @v4, never x.y.z.
	versionLike = regexp.MustCompile(`\bv?[0-9]+\.[0-9]+\.[0-9]+\b`)
	nodeImage   = regexp.MustCompile(`kindest/node|@sha256:`)
)

// versions.yaml is the only place versions are written: the workflows compute theirs with
// `meshconform versions`.
func TestWorkflowsWriteNoVersions(t *testing.T) {
	v := meshconform.SupportedVersions()
	known := append([]string{}, v.Istio...)
	for _, k := range v.Kubernetes {
		known = append(known, k.Version, k.Image)
	}
	files := workflowFiles(t)
	scripts, _ := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.sh"))
	for _, f := range append(files, scripts...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			if m := versionLike.FindString(line); m != "" {
				t.Errorf("%s:%d writes the version %s; take it from versions.yaml (meshconform versions): %s", f, n+1, m, strings.TrimSpace(line))
			}
			if nodeImage.MatchString(line) {
				t.Errorf("%s:%d names a node image; take it from versions.yaml (meshconform versions): %s", f, n+1, strings.TrimSpace(line))
			}
			for _, k := range known {
				if strings.Contains(line, k) {
					t.Errorf("%s:%d repeats %s from versions.yaml: %s", f, n+1, k, strings.TrimSpace(line))
				}
			}
		}
	}
	// And they do read the file: the matrix and the pairs come from it.
	read := map[string]string{"nightly.yml": "versions matrix", "upgrade-gate.yml": "versions upgrades", "pr.yml": "versions default-istio"}
	for name, want := range read {
		data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "meshconform "+want) {
			t.Errorf("%s does not run `meshconform %s`", name, want)
		}
	}
}

// The detector finds what it must, so the test above can fail.
func TestVersionDetector(t *testing.T) {
	for _, line := range []string{"ISTIO_VERSION: 1.31.1", "image: kindest/node:v1.37.0", "istio: [\"1.30.5\"]"} {
		if versionLike.FindString(line) == "" && !nodeImage.MatchString(line) {
			t.Errorf("detector misses %q", line)
		}
	}
	for _, line := range []string{"uses: actions/checkout@v4", "timeout-minutes: 90", `cron: "17 2 * * *"`} {
		if versionLike.FindString(line) != "" || nodeImage.MatchString(line) {
			t.Errorf("detector flags %q", line)
		}
	}
}

// Actions are pinned by major version, as the workflows promise.
func TestActionsPinnedByMajor(t *testing.T) {
	uses := regexp.MustCompile(`uses:\s*(\S+)`)
	pinned := regexp.MustCompile(`^[\w.-]+/[\w./-]+@v[0-9]+$`)
	for _, f := range workflowFiles(t) {
		data, _ := os.ReadFile(f)
		for _, m := range uses.FindAllStringSubmatch(string(data), -1) {
			if !pinned.MatchString(m[1]) {
				t.Errorf("%s uses %s: pin actions by major version (owner/name@vN)", f, m[1])
			}
		}
	}
}
