package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

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

// nodeMajors is, for each action the workflows use, the first major that runs on Node 24
// (runs.using: node24 in its action.yml at that tag). GitHub removed Node 20 from its runners
// in September 2026, so anything older no longer runs there. Sources, read 2026-12-01: the tags
// of github.com/actions/{checkout,setup-go,cache,upload-artifact,download-artifact}:
// checkout v4 node20, v5-v7 node24; setup-go v5 node20, v6-v7 node24; cache v4 node20, v5-v6
// node24 (v6, June 2026: "Update packages, migrate to ESM", inputs unchanged); upload-artifact
// v5 node20 by default, v6-v7 node24; download-artifact v6 node20 by default, v7-v8 node24.
var nodeMajors = map[string]int{
	"actions/checkout":          5,
	"actions/setup-go":          6,
	"actions/cache":             5,
	"actions/upload-artifact":   6,
	"actions/download-artifact": 7,
}

// oldAction reports why a `uses:` reference is not on a Node 24 major, or "".
func oldAction(ref string) string {
	name, version, ok := strings.Cut(ref, "@v")
	if !ok {
		return ref + " is not pinned by major"
	}
	first, known := nodeMajors[name]
	if !known {
		return name + " is not in nodeMajors: add it with the first major that runs on node24"
	}
	major, err := strconv.Atoi(version)
	if err != nil || major < first {
		return fmt.Sprintf("%s: before v%d it runs on Node 20, which GitHub's runners no longer have", ref, first)
	}
	return ""
}

func TestActionsOnNode24Majors(t *testing.T) {
	uses := regexp.MustCompile(`uses:\s*(\S+)`)
	for _, f := range workflowFiles(t) {
		data, _ := os.ReadFile(f)
		for _, m := range uses.FindAllStringSubmatch(string(data), -1) {
			if why := oldAction(m[1]); why != "" {
				t.Errorf("%s: %s", f, why)
			}
		}
	}
}

// The check above can fail.
func TestOldActionDetector(t *testing.T) {
	for _, ref := range []string{"actions/checkout@v4", "actions/setup-go@v5", "actions/cache@v4", "actions/upload-artifact@v5", "actions/download-artifact@v6", "someone/else@v9"} {
		if oldAction(ref) == "" {
			t.Errorf("oldAction passes %s", ref)
		}
	}
	for _, ref := range []string{"actions/checkout@v7", "actions/setup-go@v6", "actions/download-artifact@v8"} {
		if why := oldAction(ref); why != "" {
			t.Errorf("oldAction flags %s: %s", ref, why)
		}
	}
}

// runsOn is a job's runner: a fixed image such as ubuntu-24.04, never a moving -latest label.
var fixedRunner = regexp.MustCompile(`^ubuntu-[0-9]+\.[0-9]+$`)

func TestJobsRunOnAFixedImage(t *testing.T) {
	runsOn := regexp.MustCompile(`(?m)^\s*runs-on:\s*(\S+)\s*$`)
	for _, f := range workflowFiles(t) {
		data, _ := os.ReadFile(f)
		found := runsOn.FindAllStringSubmatch(string(data), -1)
		if len(found) == 0 {
			t.Errorf("%s has no runs-on", f)
		}
		for _, m := range found {
			if !fixedRunner.MatchString(m[1]) {
				t.Errorf("%s runs on %s: pin a fixed image like ubuntu-24.04", f, m[1])
			}
		}
	}
	if fixedRunner.MatchString("ubuntu-latest") || !fixedRunner.MatchString("ubuntu-24.04") {
		t.Error("fixedRunner does not tell ubuntu-latest from ubuntu-24.04")
	}
}

// Every CI e2e run is on a pair Istio supports: the nightly matrix is in range by construction
// (meshconform versions matrix), the PR run takes the newest node image in the default Istio's
// range, and the upgrade gate the image its pair computed.
func TestWorkflowsRunSupportedPairs(t *testing.T) {
	for name, wants := range map[string][]string{
		"pr.yml":           {"versions default-node-image", "K8S_NODE_IMAGE"},
		"upgrade-gate.yml": {"versions upgrades", "K8S_NODE_IMAGE: ${{ matrix.node_image }}", `K8S_NODE_IMAGE="$K8S_NODE_IMAGE"`},
		"nightly.yml":      {"versions matrix", "K8S_NODE_IMAGE: ${{ matrix.node_image }}"},
	} {
		data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(string(data), want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
}

// The nightly runs `meshconform versions check` first, in a job that fails with the command
// (its output in the log and the job summary), and the matrix runs after it whatever it found:
// the versions job needs the check but runs unless cancelled, and e2e (whose default
// success() would look at the check too) asks only for the versions job's success.
func TestNightlyChecksVersionsFirst(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "nightly.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Needs any    `json:"needs"`
			If    string `json:"if"`
			Steps []struct {
				Run string `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	checkJob := ""
	for name, j := range wf.Jobs {
		for _, st := range j.Steps {
			if strings.Contains(st.Run, "meshconform versions check") {
				checkJob = name
				if !strings.Contains(st.Run, `exit "$status"`) || !strings.Contains(st.Run, "GITHUB_STEP_SUMMARY") {
					t.Errorf("job %s runs versions check without failing with it and showing its output in the summary:\n%s", name, st.Run)
				}
			}
		}
	}
	if checkJob == "" {
		t.Fatal("nightly.yml does not run `meshconform versions check`")
	}
	if v := wf.Jobs["versions"]; fmt.Sprint(v.Needs) != checkJob || v.If != "${{ !cancelled() }}" {
		t.Errorf("the versions job needs %v and runs if %q; want it after %s, unless cancelled", v.Needs, v.If, checkJob)
	}
	if e := wf.Jobs["e2e"]; !strings.Contains(e.If, "needs.versions.result == 'success'") {
		t.Errorf("the e2e job runs if %q: a failed check would skip the matrix", e.If)
	}
}

// collectDiagnostics runs the workflows' diagnostics script with a fake kubectl and docker
// first on PATH, in a fresh working directory $DIR that setup (if any) fills; kubectlExit is
// what the fake kubectl exits with. It returns the exit code, stderr and the fake kubectl's log
// (its KUBECONFIG and arguments, a line per call), with $DIR for the directory.
func collectDiagnostics(t *testing.T, env map[string]string, kubectlExit int, setup func(dir string)) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	if setup != nil {
		setup(dir)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "kubectl.log")
	fake := fmt.Sprintf("#!/usr/bin/env bash\necho \"KUBECONFIG=$KUBECONFIG $*\" >>%q\necho fake kubectl output\nexit %d\n", log, kubectlExit)
	for name, body := range map[string]string{"kubectl": fake, "docker": "#!/usr/bin/env bash\necho fake docker\n"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs(filepath.Join(repoRoot, ".github", "workflows", "collect-diagnostics.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, "meshconform-ci", filepath.Join(dir, "out"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+strings.ReplaceAll(v, "$DIR", dir))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	logged, _ := os.ReadFile(log)
	return code, strings.ReplaceAll(stderr.String(), dir, "$DIR"), strings.ReplaceAll(string(logged), dir, "$DIR")
}

func writeKubeconfig(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// With no cluster (no run kubeconfig) the script collects nothing from it, and says so with a
// non-zero exit instead of a quiet 0.
func TestCollectDiagnosticsWithoutACluster(t *testing.T) {
	code, stderr, _ := collectDiagnostics(t, map[string]string{"REPORTS_DIR": "$DIR/reports"}, 0, nil)
	if code != 1 || !strings.Contains(stderr, "no readable kubeconfig at $DIR/reports/run/kubeconfig") || !strings.Contains(stderr, "nothing collected") {
		t.Errorf("exit %d, stderr %q; want 1 and the missing kubeconfig named", code, stderr)
	}
	// A kubeconfig whose cluster does not answer: every kubectl fails.
	code, stderr, _ = collectDiagnostics(t, map[string]string{"REPORTS_DIR": "$DIR/reports"}, 1, func(dir string) {
		writeKubeconfig(t, filepath.Join(dir, "reports", "run", "kubeconfig"))
	})
	if code != 1 || !strings.Contains(stderr, "every kubectl command failed against context kind-meshconform-ci") {
		t.Errorf("exit %d, stderr %q; want 1 and the failure named", code, stderr)
	}
}

// The script reads the cluster through the run's kubeconfig, reports/run/kubeconfig (under
// REPORTS_DIR), or $KUBECONFIG when set.
func TestCollectDiagnosticsUsesTheRunsKubeconfig(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"reports dir": {map[string]string{"REPORTS_DIR": "$DIR/reports"}, "KUBECONFIG=$DIR/reports/run/kubeconfig --context kind-meshconform-ci get nodes -o wide"},
		"default":     {map[string]string{}, "KUBECONFIG=reports/run/kubeconfig --context kind-meshconform-ci get nodes -o wide"},
		"KUBECONFIG":  {map[string]string{"KUBECONFIG": "$DIR/elsewhere/kubeconfig", "REPORTS_DIR": "$DIR/reports"}, "KUBECONFIG=$DIR/elsewhere/kubeconfig --context kind-meshconform-ci get nodes -o wide"},
	} {
		t.Run(name, func(t *testing.T) {
			// Both kubeconfigs exist (the relative default under the working directory $DIR):
			// the log shows which one kubectl was given.
			code, stderr, logged := collectDiagnostics(t, c.env, 0, func(dir string) {
				for _, p := range []string{"reports/run/kubeconfig", "elsewhere/kubeconfig"} {
					writeKubeconfig(t, filepath.Join(dir, p))
				}
			})
			if code != 0 || !strings.Contains(logged, c.want) {
				t.Errorf("exit %d (stderr %q); kubectl calls:\n%s\nwant a call %q", code, stderr, logged, c.want)
			}
		})
	}
}
