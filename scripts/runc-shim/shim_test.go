package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The testdata files are what dockerd 20.10.24 (Debian 12's docker.io) handed runc for
// `docker run --privileged` and `docker exec --privileged`, captured by a runtime that copied them.

// decode reads JSON keeping numbers exact (an rlimit of 2^64-1 must survive the shim).
func decode(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode: %v\n%s", err, data)
	}
	return v
}

// capsOf returns the capabilities object of a process object.
func capsOf(t *testing.T, proc any) map[string]any {
	t.Helper()
	c, ok := proc.(map[string]any)["capabilities"].(map[string]any)
	if !ok {
		t.Fatalf("no capabilities object in %v", proc)
	}
	return c
}

// checkDropped asserts that after holds no dropCap in any set, that each set lost exactly that
// capability and kept the others in order, and that everything outside the sets is unchanged.
func checkDropped(t *testing.T, beforeProc, afterProc any, wantSets []string) {
	t.Helper()
	bc, ac := capsOf(t, beforeProc), capsOf(t, afterProc)
	for _, set := range wantSets {
		want := []any{}
		for _, c := range bc[set].([]any) {
			if c != dropCap {
				want = append(want, c)
			}
		}
		if !slices.Contains(bc[set].([]any), any(dropCap)) {
			t.Fatalf("fixture's %s set lacks %s; the test proves nothing", set, dropCap)
		}
		got, _ := ac[set].([]any)
		if slices.Contains(got, any(dropCap)) {
			t.Errorf("%s still holds %s after the shim", set, dropCap)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v\nwant %v", set, got, want)
		}
	}
	if len(ac) != len(bc) {
		t.Errorf("capability sets: got %d, want %d", len(ac), len(bc))
	}
	// Everything but the capabilities is untouched.
	strip := func(proc any) map[string]any {
		m := map[string]any{}
		for k, v := range proc.(map[string]any) {
			if k != "capabilities" {
				m[k] = v
			}
		}
		return m
	}
	if !reflect.DeepEqual(strip(beforeProc), strip(afterProc)) {
		t.Errorf("the process changed outside its capabilities:\nbefore %v\nafter  %v", strip(beforeProc), strip(afterProc))
	}
}

func TestDropFromDockerPrivilegedConfig(t *testing.T) {
	in, err := os.ReadFile("testdata/docker20-privileged-config.json")
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := dropFromConfig(in, dropCap)
	if err != nil || !changed {
		t.Fatalf("dropFromConfig: changed=%v err=%v", changed, err)
	}
	before, after := decode(t, in).(map[string]any), decode(t, out).(map[string]any)
	checkDropped(t, before["process"], after["process"], []string{"bounding", "effective", "permitted"})
	for k := range before {
		if k != "process" && !reflect.DeepEqual(before[k], after[k]) {
			t.Errorf("%q changed", k)
		}
	}
	if len(before) != len(after) {
		t.Errorf("top-level keys: got %d, want %d", len(after), len(before))
	}
	// The rest of the privileged set is still there: the shim drops one capability, not all.
	if n := len(capsOf(t, after["process"])["bounding"].([]any)); n != 37 {
		t.Errorf("bounding set has %d capabilities, want 37 (docker's 38 less one)", n)
	}
}

func TestDropFromDockerPrivilegedExecProcess(t *testing.T) {
	in, err := os.ReadFile("testdata/docker20-privileged-exec-process.json")
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := dropFromProcess(in, dropCap)
	if err != nil || !changed {
		t.Fatalf("dropFromProcess: changed=%v err=%v", changed, err)
	}
	checkDropped(t, decode(t, in), decode(t, out), []string{"bounding", "effective", "permitted"})
}

// allSetsConfig holds the capability in all five sets (docker fills three; other tools all five)
// and values a careless re-encoding would change: a 2^64-1 rlimit, HTML characters, unicode.
const allSetsConfig = `{
  "ociVersion": "1.0.2",
  "process": {
    "args": ["sh", "-c", "echo <a&b> ü"],
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1048576}],
    "capabilities": {
      "bounding":    ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"],
      "effective":   ["CAP_SYS_RESOURCE", "CAP_CHOWN"],
      "inheritable": ["CAP_SYS_RESOURCE"],
      "permitted":   ["CAP_CHOWN", "CAP_SYS_RESOURCE"],
      "ambient":     ["CAP_SYS_RESOURCE", "CAP_NET_RAW"]
    },
    "oomScoreAdj": 0
  },
  "linux": {"resources": {"memory": {"limit": 9223372036854771712}}},
  "annotations": {"x": "y"}
}`

func TestDropFromAllFiveSetsKeepsTheRestExact(t *testing.T) {
	out, changed, err := dropFromConfig([]byte(allSetsConfig), dropCap)
	if err != nil || !changed {
		t.Fatalf("dropFromConfig: changed=%v err=%v", changed, err)
	}
	before, after := decode(t, []byte(allSetsConfig)).(map[string]any), decode(t, out).(map[string]any)
	checkDropped(t, before["process"], after["process"], capSets)
	if !reflect.DeepEqual(before["linux"], after["linux"]) || !reflect.DeepEqual(before["annotations"], after["annotations"]) {
		t.Errorf("linux or annotations changed:\n%s", out)
	}
	for _, exact := range []string{`18446744073709551615`, `9223372036854771712`, `"echo <a&b> ü"`} {
		if !strings.Contains(string(out), exact) {
			t.Errorf("output lost %s byte for byte:\n%s", exact, out)
		}
	}
	inh := capsOf(t, after["process"])["inheritable"]
	if l, ok := inh.([]any); !ok || len(l) != 0 {
		t.Errorf("inheritable: got %#v, want an empty list (not null)", inh)
	}
}

func TestNothingToDropLeavesFileAlone(t *testing.T) {
	for name, in := range map[string]string{
		"unprivileged": `{"process":{"capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"]}},"root":{"path":"rootfs"}}`,
		"no caps":      `{"process":{"args":["true"]}}`,
		"null caps":    `{"process":{"capabilities":null}}`,
		"no process":   `{"ociVersion":"1.0.2"}`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		st0, _ := os.Stat(path)
		if err := rewrite(path, false, dropCap); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := os.ReadFile(path)
		st1, _ := os.Stat(path)
		if string(got) != in || !os.SameFile(st0, st1) {
			t.Errorf("%s: the file was rewritten though it holds no %s:\n%s", name, dropCap, got)
		}
	}
}

func TestRewriteKeepsModeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(allSetsConfig), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := rewrite(path, false, dropCap); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode: got %v, want 0640", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only config.json", len(ents))
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), dropCap) {
		t.Errorf("rewritten file still holds %s", dropCap)
	}
}

func TestMalformedSpecIsAnError(t *testing.T) {
	for _, in := range []string{`{`, `{"process":{"capabilities":{"bounding":"CAP_SYS_RESOURCE"}}}`, `{"process":[]}`} {
		if _, _, err := dropFromConfig([]byte(in), dropCap); err == nil {
			t.Errorf("dropFromConfig(%s): no error", in)
		}
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args string
		want invocation
	}{
		// containerd-shim-runc-v2 1.6, as captured from dockerd 20.10.
		{"--root /r/moby --log /t/log.json --log-format json create --bundle /t/b --pid-file /t/init.pid abc",
			invocation{Command: "create", Bundle: "/t/b", Log: "/t/log.json", LogJSON: true}},
		{"--root /r/moby --log /t/log.json --log-format json exec --process /tmp/runc-process1 --detach --pid-file /t/x.pid abc",
			invocation{Command: "exec", Process: "/tmp/runc-process1", Log: "/t/log.json", LogJSON: true}},
		{"--root /r --log /t/log.json --log-format json delete --force abc",
			invocation{Command: "delete", Log: "/t/log.json", LogJSON: true}},
		{"--systemd-cgroup --debug --root=/r run -b=/b --console-socket /s abc", invocation{Command: "run", Bundle: "/b"}},
		{"create --pid-file /p abc", invocation{Command: "create", Bundle: "."}},
		{"--log-format text exec -p /p abc", invocation{Command: "exec", Process: "/p"}},
		// exec's command line after the container id is not runc's.
		{"exec --tty abc sh -c --process /nope", invocation{Command: "exec"}},
		{"exec --cwd /x --env A=B --user 0 -p=/q abc", invocation{Command: "exec", Process: "/q"}},
		{"--version", invocation{}},
	} {
		if got := parseArgs(strings.Fields(tc.args)); got != tc.want {
			t.Errorf("parseArgs(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
}

// TestShimExecsRuncWithSameArgs builds the shim and runs it the way containerd does, with a fake
// runc that records its argv, environment and the spec it was given.
func TestShimExecsRuncWithSameArgs(t *testing.T) {
	dir := t.TempDir()
	shim := filepath.Join(dir, "meshconform-runc")
	if out, err := exec.Command("go", "build", "-o", shim, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fakeBin := filepath.Join(dir, "bin")
	if err := os.Mkdir(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "record")
	// The fake runc prints its argv one per line, then the spec files it would read.
	fake := `#!/bin/sh
{ for a in "$0" "$@"; do echo "arg:$a"; done; echo "env:$SHIM_TEST_MARK"; } > ` + record + `
prev=
for a in "$@"; do
  case "$prev" in --bundle) cat "$a/config.json" > ` + record + `.spec ;; --process) cat "$a" > ` + record + `.spec ;; esac
  prev=$a
done
exit 7
`
	if err := os.WriteFile(filepath.Join(fakeBin, "runc"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	config, _ := os.ReadFile("testdata/docker20-privileged-config.json")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	process := filepath.Join(dir, "runc-process1")
	procData, _ := os.ReadFile("testdata/docker20-privileged-exec-process.json")
	if err := os.WriteFile(process, procData, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		spec []byte // the spec before the shim, nil for none
		proc func(any) any
	}{
		{"create", []string{"--root", "/r/moby", "--log", filepath.Join(dir, "log.json"), "--log-format", "json",
			"create", "--bundle", bundle, "--pid-file", filepath.Join(dir, "init.pid"), "abc"},
			config, func(v any) any { return v.(map[string]any)["process"] }},
		{"exec", []string{"--root", "/r/moby", "--log", filepath.Join(dir, "log.json"), "--log-format", "json",
			"exec", "--process", process, "--detach", "--pid-file", filepath.Join(dir, "x.pid"), "abc"},
			procData, func(v any) any { return v }},
		{"delete", []string{"--root", "/r/moby", "delete", "--force", "abc"}, nil, nil},
	} {
		os.Remove(record + ".spec")
		cmd := exec.Command(shim, tc.args...)
		cmd.Env = append(os.Environ(), "PATH="+fakeBin+":/usr/bin:/bin", "SHIM_TEST_MARK=kept", "MESHCONFORM_RUNC=")
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("%s: want the fake runc's exit code 7, got %v", tc.name, err)
		}
		rec, _ := os.ReadFile(record)
		want := "arg:" + filepath.Join(fakeBin, "runc") + "\n"
		for _, a := range tc.args {
			want += "arg:" + a + "\n"
		}
		want += "env:kept\n"
		if string(rec) != want {
			t.Errorf("%s: runc got\n%s\nwant\n%s", tc.name, rec, want)
		}
		if tc.spec == nil {
			continue
		}
		got, err := os.ReadFile(record + ".spec")
		if err != nil {
			t.Fatalf("%s: runc read no spec: %v", tc.name, err)
		}
		if bytes.Contains(got, []byte(dropCap)) {
			t.Errorf("%s: runc was given %s", tc.name, dropCap)
		}
		checkDropped(t, tc.proc(decode(t, tc.spec)), tc.proc(decode(t, got)), []string{"bounding", "effective", "permitted"})
	}
}

// A spec the shim cannot read fails the container with a message containerd quotes from runc's
// JSON log, and runc is not run.
func TestShimReportsErrorsInRuncLog(t *testing.T) {
	dir := t.TempDir()
	shim := filepath.Join(dir, "meshconform-runc")
	if out, err := exec.Command("go", "build", "-o", shim, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{not json"), 0o644)
	log := filepath.Join(dir, "log.json")
	cmd := exec.Command(shim, "--log", log, "--log-format", "json", "create", "--bundle", bundle, "abc")
	cmd.Env = append(os.Environ(), "MESHCONFORM_RUNC=/bin/false-should-not-run")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v (%s)", err, out)
	}
	data, _ := os.ReadFile(log)
	var entry map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(data), &entry); err != nil || entry["level"] != "error" ||
		!strings.Contains(entry["msg"], "removing CAP_SYS_RESOURCE") || !strings.Contains(entry["msg"], "config.json") {
		t.Errorf("log.json: %s (%v)", data, err)
	}
}

func TestFindRuncSkipsItself(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	os.WriteFile(filepath.Join(a, "runc"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(b, "runc"), []byte("#!/bin/sh\n"), 0o755)
	t.Setenv("MESHCONFORM_RUNC", "")
	t.Setenv("PATH", a+":"+b)
	if got, err := findRunc(filepath.Join(a, "runc")); err != nil || got != filepath.Join(b, "runc") {
		t.Errorf("shim installed as a/runc: got %q, %v; want b/runc", got, err)
	}
	if got, err := findRunc("/elsewhere/meshconform-runc"); err != nil || got != filepath.Join(a, "runc") {
		t.Errorf("got %q, %v; want a/runc", got, err)
	}
	t.Setenv("PATH", a)
	if _, err := findRunc(filepath.Join(a, "runc")); err == nil {
		t.Error("only itself on PATH: want an error")
	}
	t.Setenv("MESHCONFORM_RUNC", "/x/runc")
	if got, _ := findRunc("/y"); got != "/x/runc" {
		t.Errorf("MESHCONFORM_RUNC: got %q", got)
	}
}
