// Package kindtest holds the test helpers that packages driving kind and the docker CLI share:
// distinct free loopback ports, kind configs on them, and a docker CLI pointed at no engine.
package kindtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FreePort is a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts is n distinct loopback TCP ports that were free a moment ago. All n listeners are
// held until the last is chosen: a port closed and asked for again can come back (two single
// FreePort calls returned the same port about once in 10,000, and a kind config mapping one
// host port twice fails preflight).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// PortsConfig writes a kind config of nodes nodes whose control plane maps the ingress
// nodePorts (30080, 30443) to httpPort and httpsPort on 127.0.0.1, as the embedded configs do;
// extra is written before the nodes (e.g. kubeadmConfigPatches). It returns the file's path.
func PortsConfig(t testing.TB, nodes, httpPort, httpsPort int, extra ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
	for _, e := range extra {
		b.WriteString(e)
	}
	fmt.Fprintf(&b, `nodes:
- role: control-plane
  extraPortMappings:
  - {containerPort: 30080, hostPort: %d, listenAddress: "127.0.0.1"}
  - {containerPort: 30443, hostPort: %d, listenAddress: "127.0.0.1"}
`, httpPort, httpsPort)
	for i := 1; i < nodes; i++ {
		b.WriteString("- role: worker\n")
	}
	path := filepath.Join(t.TempDir(), "kind.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// FreePortsConfig is a one-node PortsConfig on free ports: preflight checks the host ports a
// config maps, and the embedded configs' 30080/30443 may be held on this machine (by another
// kind cluster), so tests that are not about ports use this.
func FreePortsConfig(t testing.TB) string {
	t.Helper()
	return FreePortsConfigOf(t, 1)
}

// FreePortsConfigOf is PortsConfig on two distinct free ports.
func FreePortsConfigOf(t testing.TB, nodes int, extra ...string) string {
	t.Helper()
	p := FreePorts(t, 2)
	return PortsConfig(t, nodes, p[0], p[1], extra...)
}

// NoEngine points the real docker CLI (and kind's library, which runs it) at a socket that
// does not exist, so a test about a missing engine holds whether or not this machine runs one
// (scripts/local-engine.sh, or another process, may run an engine at the default socket).
func NoEngine(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on PATH")
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	t.Setenv("DOCKER_CONTEXT", "")
}
