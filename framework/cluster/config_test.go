package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	kindmanifests "meshconform/manifests/kind"
)

// The embedded configs decode with kind's types, with the shape the suite relies on.
func TestEmbeddedKindConfigs(t *testing.T) {
	for _, name := range kindmanifests.Names() {
		c, err := LoadKindConfig(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Cluster.Nodes[0].Role != v1alpha4.ControlPlaneRole {
			t.Errorf("%s: first node is %q", name, c.Cluster.Nodes[0].Role)
		}
		for _, port := range []int32{kindmanifests.IngressHTTPNodePort, kindmanifests.IngressHTTPSNodePort} {
			addr, ok := c.HostPort(port)
			if !ok || addr != "127.0.0.1:"+itoa(port) {
				t.Errorf("%s: nodePort %d mapped to %q, %v; want 127.0.0.1:%d (loopback only)", name, port, addr, ok, port)
			}
		}
		if strings.Contains(string(c.Raw), "\n    image:") || strings.Contains(string(c.Raw), "\n  - image:") {
			t.Errorf("%s: a node sets an image; K8S_NODE_IMAGE must decide", name)
		}
		if c.Cluster.Networking.IPFamily != v1alpha4.IPv4Family {
			t.Errorf("%s: defaults not applied: %+v", name, c.Cluster.Networking)
		}
	}
	single, _ := LoadKindConfig("")
	if len(single.Cluster.Nodes) != 1 || !strings.HasPrefix(single.Source, "single") {
		t.Errorf("default config: %s with %d nodes, want single with 1", single.Source, len(single.Cluster.Nodes))
	}
	multi, _ := LoadKindConfig("multinode")
	if len(multi.Cluster.Nodes) != 2 || multi.Cluster.Nodes[1].Role != v1alpha4.WorkerRole {
		t.Errorf("multinode: %+v", multi.Cluster.Nodes)
	}
	// offline: one node, no kindnet (not on the Go module proxy), kubelet allowed on cgroup v1.
	offline, _ := LoadKindConfig("offline")
	if len(offline.Cluster.Nodes) != 1 || !offline.Cluster.Networking.DisableDefaultCNI ||
		len(offline.Cluster.KubeadmConfigPatches) != 1 || !strings.Contains(offline.Cluster.KubeadmConfigPatches[0], "failCgroupV1: false") {
		t.Errorf("offline: nodes %d, networking %+v, patches %q", len(offline.Cluster.Nodes), offline.Cluster.Networking, offline.Cluster.KubeadmConfigPatches)
	}
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

func TestParseKindConfigRejects(t *testing.T) {
	head := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
	tests := []struct{ name, yaml, want string }{
		{"wrong apiVersion", "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n", `apiVersion "kind.x-k8s.io/v1alpha3": use kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4`},
		{"wrong kind", "kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n", `kind "Pod"`},
		{"unknown field", head + "nodes:\n- role: control-plane\n  extraPortMapping: []\n", `unknown field "extraPortMapping"`},
		{"name set", head + "name: other\n", `sets name "other": remove it`},
		{"no control plane", head + "nodes:\n- role: worker\n", "has no control-plane node"},
		{"two control planes", head + "nodes:\n- role: control-plane\n- role: control-plane\n", "has 2 control-plane nodes"},
		{"bad role", head + "nodes:\n- role: master\n", `role "master"`},
		{"port out of range", head + "nodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 70000\n", "containerPort 70000 is not a port"},
		{"duplicate host port", head + "nodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 30080, hostPort: 8080}\n  - {containerPort: 30443, hostPort: 8080}\n",
			"hostPort 8080 on \"\" is already mapped by nodes[0].extraPortMappings[0]"},
		{"bad protocol", head + "nodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 1, protocol: ICMP}\n", `protocol "ICMP"`},
		{"not yaml", "\t: :", "not YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKindConfig("test.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "test.yaml") {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
	// Several problems are reported together.
	_, err := ParseKindConfig("x", []byte(head+"name: n\nnodes:\n- role: worker\n"))
	if err == nil || !strings.Contains(err.Error(), "sets name") || !strings.Contains(err.Error(), "no control-plane") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestLoadKindConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kind.yaml")
	os.WriteFile(path, []byte("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n"), 0o644)
	c, err := LoadKindConfig(path)
	if err != nil || len(c.Cluster.Nodes) != 3 || c.Source != path {
		t.Fatalf("LoadKindConfig(%s) = %+v, %v", path, c, err)
	}
	if _, ok := c.HostPort(30080); ok {
		t.Error("a config without mappings maps nothing")
	}
	_, err = LoadKindConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "one of multinode, offline, single") {
		t.Fatalf("missing file: %v", err)
	}
}

// kind names nodes per role in config order; a hostPort of 0 is looked up with docker port on
// the node that maps it, a fixed one is taken from the config.
func TestIngressAddress(t *testing.T) {
	raw := `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
  extraPortMappings:
  - {containerPort: 30080, hostPort: 0, listenAddress: "127.0.0.1"}
  - {containerPort: 30443, hostPort: 8443, listenAddress: "127.0.0.1"}
`
	c, err := ParseKindConfig("test", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.NodeNames("mc"), ","); got != "mc-control-plane,mc-worker,mc-worker2" {
		t.Errorf("NodeNames = %s", got)
	}
	docker := newFakeDocker(t, 0)
	os.WriteFile(filepath.Join(docker.dir, "published"), []byte("mc-worker2 30080/tcp 0.0.0.0:41234\nmc-worker2 30080/tcp [::]:41234\n"), 0o644)
	d := Docker{Path: docker.bin}
	for port, want := range map[int32]string{30080: "127.0.0.1:41234", 30443: "127.0.0.1:8443", 15021: ""} {
		got, err := c.IngressAddress(context.Background(), d, "mc", port)
		if err != nil || got != want {
			t.Errorf("IngressAddress(%d) = %q, %v; want %q", port, got, err, want)
		}
	}
	if strings.Count(docker.read("calls"), "port ") != 1 {
		t.Errorf("docker calls:\n%s", docker.read("calls"))
	}
	_, err = c.IngressAddress(context.Background(), d, "other", 30080)
	if err == nil || !strings.Contains(err.Error(), "No public port '30080/tcp' published for other-worker2") {
		t.Errorf("unpublished: %v", err)
	}
}
