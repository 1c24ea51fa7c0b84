package apitest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A test binary that panics, or that `go test -timeout` ends, never runs TestMain's cleanup,
// and envtest's etcd and kube-apiserver would outlive it (they run in their own process
// groups). The reaper is this same test binary re-run in a reaper mode (Main checks
// reaperEnv first): it reads "group <pgid>" and "dir <path>" lines on stdin and, when stdin
// closes without a "done" line — its parent died, however — kills those groups and removes
// those directories.
const reaperEnv = "MESHCONFORM_APITEST_REAPER"

type reaper struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	w   io.WriteCloser
}

// startReaper starts the reaper process; nil (and no error) when it cannot be used.
func startReaper() (*reaper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("apitest: locating the test binary for the reaper: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), reaperEnv+"=1")
	// Its own group: a Ctrl-C meant for the tests must not kill the one who cleans up after them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Not the test's stdout: `go test` waits for that pipe to close.
	cmd.Stdout, cmd.Stderr = nil, nil
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("apitest: starting the reaper: %w", err)
	}
	return &reaper{cmd: cmd, w: w}, nil
}

func (r *reaper) send(line string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != nil {
		_, _ = io.WriteString(r.w, line+"\n")
	}
}

func (r *reaper) watchGroup(pgid int) {
	if pgid > 1 {
		r.send("group " + strconv.Itoa(pgid))
	}
}

func (r *reaper) watchDir(path string) {
	if path != "" && !strings.ContainsRune(path, '\n') {
		r.send("dir " + path)
	}
}

// release tells the reaper that everything was cleaned up, and waits for it to exit.
func (r *reaper) release() {
	if r == nil {
		return
	}
	r.send("done")
	r.mu.Lock()
	_ = r.w.Close()
	r.w = nil
	r.mu.Unlock()
	_ = r.cmd.Wait()
}

// abandon closes stdin without "done", as the death of this process would (for tests).
func (r *reaper) abandon() error {
	r.mu.Lock()
	_ = r.w.Close()
	r.w = nil
	r.mu.Unlock()
	return r.cmd.Wait()
}

// runReaper is the reaper's main: it returns the process exit code.
func runReaper(in io.Reader) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)
	var groups []int
	var dirs []string
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		kind, arg, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "done":
			return 0
		case "group":
			if pgid, err := strconv.Atoi(arg); err == nil && pgid > 1 {
				groups = append(groups, pgid)
			}
		case "dir":
			dirs = append(dirs, arg)
		}
	}
	killGroups(groups, 5*time.Second)
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
	return 0
}

// killGroups stops groups in reverse order of registration (kube-controller-manager, then
// kube-apiserver, then etcd: an API server whose etcd is gone is slow to shut down), each
// with SIGTERM and, after grace, SIGKILL.
func killGroups(groups []int, grace time.Duration) {
	for i := len(groups) - 1; i >= 0; i-- {
		killGroup(groups[i], grace)
	}
}

func killGroup(pgid int, grace time.Duration) {
	gone := func() bool { return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) }
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !gone() {
		select {
		case <-deadline.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-tick.C:
		}
	}
}

// childGroups lists this process's children that lead their own process group (envtest
// starts etcd and kube-apiserver that way), read from /proc; empty where there is no /proc.
func childGroups() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	me := os.Getpid()
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state ppid pgrp ...
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if ppid == me && pgrp == pid {
			out = append(out, pid)
		}
	}
	sort.Ints(out) // start order, near enough: etcd before kube-apiserver
	return out
}
