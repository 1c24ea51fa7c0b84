package apitest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Controllers are the kube-controller-manager controllers tier-1 tests rely on: namespace
// deletion finishes (namespace), owned objects go with their owners (garbage collector),
// namespaces get their default ServiceAccount and its legacy token signer
// (serviceaccount, serviceaccount-token) and the kube-root-ca.crt ConfigMap.
var Controllers = []string{
	"namespace-controller",
	"garbage-collector-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
}

// controllerManager is a kube-controller-manager child process in its own process group.
type controllerManager struct {
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	mu      sync.Mutex
	waitErr error
}

func startControllerManager(binary, kubeconfig, saKey, dir string) (*controllerManager, error) {
	logPath := filepath.Join(dir, "kube-controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("apitest: %w", err)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(Controllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + saKey,
		// No serving: nothing scrapes it, and a fixed port would collide between packages.
		"--secure-port=0",
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-namespace-syncs=5",
		"--v=2",
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that stop (and the reaper) can signal it and anything it forks.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("apitest: cannot run %s: %w\n%s", binary, err, rebuildHint(filepath.Dir(binary)))
	}
	c := &controllerManager{cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

func (c *controllerManager) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (c *controllerManager) exited() (bool, string) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.waitErr != nil {
			return true, c.waitErr.Error()
		}
		return true, "exit status 0"
	default:
		return false, ""
	}
}

// stop sends SIGTERM to the process group and, after grace, SIGKILL.
func (c *controllerManager) stop(grace time.Duration) error {
	defer c.logFile.Close()
	if done, _ := c.exited(); done {
		return nil
	}
	pgid := c.pid()
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("apitest: signalling kube-controller-manager (pgid %d): %w", pgid, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.done:
		return nil
	case <-timer.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	kill := time.NewTimer(5 * time.Second)
	defer kill.Stop()
	select {
	case <-c.done:
		return fmt.Errorf("apitest: kube-controller-manager ignored SIGTERM for %s and was killed", grace)
	case <-kill.C:
		return fmt.Errorf("apitest: kube-controller-manager (pid %d) survived SIGKILL", pgid)
	}
}
