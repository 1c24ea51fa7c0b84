// Command runc-shim is an OCI runtime for dockerd that removes CAP_SYS_RESOURCE from a
// container's capabilities and then execs the real runc with the same arguments.
//
// Some machines (VMs, sandboxes) run without CAP_SYS_RESOURCE in the bounding set. There runc
// fails every privileged container, and so every kind node, with "unable to apply caps: operation
// not permitted": --privileged asks for all capabilities, and a process cannot gain one its
// bounding set lacks. scripts/local-engine.sh registers this program as dockerd's default runtime
// only on such a machine. It edits, before runc reads them, the bundle's config.json (create, run)
// and the --process file (exec), removing the capability from every set (bounding, effective,
// inheritable, permitted, ambient) and leaving the rest of the spec as it was. Everything else is
// runc's: the shim execs it, so pid, exit code, stdio and signals are runc's own.
//
// The real runc is $MESHCONFORM_RUNC, else the first runc on PATH that is not this program.
//
//	go build -o <dir>/meshconform-runc ./scripts/runc-shim
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	inv := parseArgs(args)
	if path, isProcess := inv.specFile(); path != "" {
		if err := rewrite(path, isProcess, dropCap); err != nil {
			fail(inv, fmt.Errorf("runc-shim: removing %s: %w", dropCap, err))
		}
	}
	self, _ := os.Executable()
	runc, err := findRunc(self)
	if err != nil {
		fail(inv, fmt.Errorf("runc-shim: %w", err))
	}
	err = syscall.Exec(runc, append([]string{runc}, args...), os.Environ())
	fail(inv, fmt.Errorf("runc-shim: exec %s: %w", runc, err))
}

// fail reports err where containerd looks for runc's errors (the --log file, which it quotes in
// "OCI runtime create failed: ..."), and on stderr, and exits 1 as runc does.
func fail(inv invocation, err error) {
	fmt.Fprintln(os.Stderr, err)
	if inv.Log != "" {
		if f, ferr := os.OpenFile(inv.Log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); ferr == nil {
			if inv.LogJSON {
				line, _ := json.Marshal(map[string]string{
					"level": "error", "msg": err.Error(), "time": time.Now().UTC().Format(time.RFC3339Nano),
				})
				fmt.Fprintf(f, "%s\n", line)
			} else {
				fmt.Fprintln(f, err)
			}
			f.Close()
		}
	}
	os.Exit(1)
}
