package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// dropCap is the capability the shim removes: a kernel (or VM) whose bounding set lacks it makes
// runc fail every privileged container with "unable to apply caps: operation not permitted".
const dropCap = "CAP_SYS_RESOURCE"

// capSets are the capability sets of an OCI process (runtime-spec config.md, "capabilities").
var capSets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// runcGlobalsWithValue are runc's global flags that take a value (runc 1.1 `runc --help`); the
// first argument that is neither one of them, its value, nor another flag is the subcommand.
var runcGlobalsWithValue = map[string]bool{
	"log": true, "log-format": true, "root": true, "criu": true, "rootless": true,
}

// subcommandFlagsWithValue are the flags of runc 1.1's create, run and exec that take a value.
var subcommandFlagsWithValue = map[string]map[string]bool{
	"create": {"bundle": true, "b": true, "console-socket": true, "pid-file": true, "preserve-fds": true},
	"run":    {"bundle": true, "b": true, "console-socket": true, "pid-file": true, "preserve-fds": true},
	"exec": {"console-socket": true, "cwd": true, "env": true, "e": true, "user": true, "u": true,
		"additional-gids": true, "g": true, "process": true, "p": true, "process-label": true,
		"apparmor": true, "cap": true, "c": true, "pid-file": true, "preserve-fds": true, "cgroup": true},
}

// invocation is what the shim needs from runc's command line.
type invocation struct {
	Command string // runc subcommand: create, run, exec, start, delete, ...
	Bundle  string // create/run: the bundle directory (--bundle, default ".")
	Process string // exec: the --process JSON file ("" when exec got its process as arguments)
	Log     string // global --log file, where runc (and so the shim) reports errors for containerd
	LogJSON bool   // --log-format json
}

// flagName returns the name of a flag argument ("--bundle=x" → "bundle", "-b" → "b") and its
// inline value; ok is false for a non-flag.
func flagName(arg string) (name, value string, inline, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], name[i+1:], true, true
	}
	return name, "", false, true
}

// parseArgs reads runc's arguments (without argv[0]) the way runc does, as far as the shim needs.
func parseArgs(args []string) invocation {
	var inv invocation
	i := 0
	for ; i < len(args); i++ {
		name, value, inline, ok := flagName(args[i])
		if !ok {
			break
		}
		if runcGlobalsWithValue[name] && !inline && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "log":
			inv.Log = value
		case "log-format":
			inv.LogJSON = value == "json"
		}
	}
	if i >= len(args) {
		return inv
	}
	inv.Command = args[i]
	valued := subcommandFlagsWithValue[inv.Command]
	rest := args[i+1:]
	// Like runc's flag parser, stop at the first positional argument (the container id): what
	// follows it (exec's command line) is not runc's.
	for j := 0; j < len(rest); j++ {
		if rest[j] == "--" {
			break
		}
		name, value, inline, ok := flagName(rest[j])
		if !ok {
			break
		}
		if valued[name] && !inline && j+1 < len(rest) {
			j++
			value = rest[j]
		}
		switch {
		case (inv.Command == "create" || inv.Command == "run") && (name == "bundle" || name == "b"):
			inv.Bundle = value
		case inv.Command == "exec" && (name == "process" || name == "p"):
			inv.Process = value
		}
	}
	if (inv.Command == "create" || inv.Command == "run") && inv.Bundle == "" {
		inv.Bundle = "."
	}
	return inv
}

// specFile is the file the shim edits before runc reads it, or "".
func (inv invocation) specFile() (path string, isProcess bool) {
	switch {
	case inv.Command == "create" || inv.Command == "run":
		return filepath.Join(inv.Bundle, "config.json"), false
	case inv.Command == "exec" && inv.Process != "":
		return inv.Process, true
	}
	return "", false
}

// marshal encodes v without json.Marshal's HTML escaping, so strings in the spec (args, env)
// keep their bytes.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// dropFromCapabilities removes capability from every set of an OCI "capabilities" object. Only
// the sets that held it are re-encoded; everything else is kept byte for byte.
func dropFromCapabilities(raw json.RawMessage, capability string) (json.RawMessage, bool, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return raw, false, nil
	}
	var caps map[string]json.RawMessage
	if err := json.Unmarshal(raw, &caps); err != nil {
		return nil, false, fmt.Errorf("capabilities: %w", err)
	}
	changed := false
	for _, set := range capSets {
		r, ok := caps[set]
		if !ok || string(bytes.TrimSpace(r)) == "null" {
			continue
		}
		var names []string
		if err := json.Unmarshal(r, &names); err != nil {
			return nil, false, fmt.Errorf("capabilities.%s: %w", set, err)
		}
		kept := names[:0:0]
		for _, n := range names {
			if n != capability {
				kept = append(kept, n)
			}
		}
		if len(kept) == len(names) {
			continue
		}
		b, err := marshal(kept)
		if err != nil {
			return nil, false, err
		}
		caps[set] = b
		changed = true
	}
	if !changed {
		return raw, false, nil
	}
	b, err := marshal(caps)
	return b, err == nil, err
}

// dropFromProcess removes capability from an OCI process object (an exec --process file).
func dropFromProcess(data []byte, capability string) ([]byte, bool, error) {
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(data, &proc); err != nil {
		return nil, false, err
	}
	caps, changed, err := dropFromCapabilities(proc["capabilities"], capability)
	if err != nil || !changed {
		return data, false, err
	}
	proc["capabilities"] = caps
	out, err := marshal(proc)
	return out, err == nil, err
}

// dropFromConfig removes capability from the process of an OCI bundle's config.json.
func dropFromConfig(data []byte, capability string) ([]byte, bool, error) {
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, false, err
	}
	p, ok := spec["process"]
	if !ok || string(bytes.TrimSpace(p)) == "null" {
		return data, false, nil
	}
	proc, changed, err := dropFromProcess(p, capability)
	if err != nil {
		return nil, false, fmt.Errorf("process: %w", err)
	}
	if !changed {
		return data, false, nil
	}
	spec["process"] = proc
	out, err := marshal(spec)
	return out, err == nil, err
}

// rewrite edits the spec file in place (a same-directory rename, keeping its mode); a file that
// does not hold the capability is left alone.
func rewrite(path string, isProcess bool, capability string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	drop := dropFromConfig
	if isProcess {
		drop = dropFromProcess
	}
	out, changed, err := drop(data, capability)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".shim-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// findRunc returns the runc to exec: $MESHCONFORM_RUNC, else the first "runc" on PATH that is
// not this program (the shim may itself be installed under the name runc).
func findRunc(self string) (string, error) {
	if p := os.Getenv("MESHCONFORM_RUNC"); p != "" {
		return p, nil
	}
	selfInfo, _ := os.Stat(self)
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, "runc")
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			continue
		}
		if selfInfo != nil && os.SameFile(st, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", errors.New(`no runc on PATH (set MESHCONFORM_RUNC to the real runc)`)
}
