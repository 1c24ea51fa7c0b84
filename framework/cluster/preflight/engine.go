package preflight

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"meshconform/framework/cluster"
	"meshconform/framework/settings"
)

// notChecked is the outcome of a check that needs `docker info` when it failed: the docker
// check reports why, once.
func notChecked(error) outcome {
	return outcome{skipped: true, detail: "not checked: docker info did not answer (see the docker check)"}
}

// imageStoreCheck names the engine's image store. Under the containerd image store a
// multi-arch image loads into kind only when `docker save --platform` can pick the node's
// platform (kind issue 3795), which takes an engine API of 1.48 or newer.
func imageStoreCheck(ctx context.Context, e *engine) outcome {
	info, err := e.Info(ctx)
	if err != nil {
		return notChecked(err)
	}
	store := info.ImageStore()
	if !info.ContainerdStore() {
		return found(store)
	}
	api, err := e.docker.APIVersion(ctx)
	if err == nil && cluster.APIAtLeast(api, cluster.SavePlatformAPI) {
		return found(fmt.Sprintf("%s; images are saved for the nodes' platform (engine API %s)", store, api))
	}
	if err != nil {
		api = "unknown (" + firstLine(err.Error()) + ")"
	}
	return outcome{detail: store, warning: fmt.Sprintf(
		"engine API %s is older than %s, so docker save cannot pick a platform: multi-arch images may fail to load into the nodes (kind issue 3795), which then pull them; update Docker to an engine with API %s or newer",
		api, cluster.SavePlatformAPI, cluster.SavePlatformAPI)}
}

// KubeletRefusesCgroupV1 is the first Kubernetes minor whose kubelet does not start on a
// cgroup v1 host by default: failCgroupV1 defaults to true from 1.35 (KEP-5573, kubernetes
// PR 134298; k8s.io/kubelet config/v1beta1 FailCgroupV1 "Default: true"; the kubelet's
// validation: "kubelet is configured to not run on a host using cgroup v1").
const KubeletRefusesCgroupV1 = "1.35"

// cgroupCheck reports the engine's cgroup version and fails when a cgroup v1 engine meets a
// node image whose kubelet refuses cgroup v1.
//
// Decision: preflight fails rather than patching failCgroupV1: false into the kind config
// itself. Kubernetes calls cgroup v1 unsupported from 1.35 (KEP-5573), kind's maintainers
// chose not to work around it (kind PR 4077), and a conformance run should not silently
// change the kubelet it tests. A user who wants it anyway sets the patch in KIND_CONFIG
// (kind sets kubeadm's skipPhases: preflight, so kubeadm's own cgroup v1 error does not
// stop it); preflight recognises that and only warns.
func cgroupCheck(ctx context.Context, s settings.Settings, e *engine) outcome {
	info, err := e.Info(ctx)
	if err != nil {
		return notChecked(err)
	}
	switch info.CgroupVersion {
	case "1":
	case "":
		return found("cgroup version not reported by the engine")
	default:
		return found("cgroup v" + info.CgroupVersion)
	}
	const deprecated = "cgroup v1 is deprecated; kubelets from Kubernetes " + KubeletRefusesCgroupV1 + " refuse it unless failCgroupV1 is false"
	if exists, _ := e.ClusterExists(ctx); exists && s.ReuseCluster {
		return outcome{detail: "cgroup v1", warning: deprecated + "; reusing the existing cluster, whose kubelet runs"}
	}
	if c, err := cluster.LoadKindConfig(s.KindConfig); err == nil && AllowsCgroupV1(c) {
		return outcome{detail: "cgroup v1", warning: fmt.Sprintf("%s; kind config %s sets failCgroupV1: false", deprecated, c.Source)}
	}
	k := s.NodeKubernetesVersion()
	if k == "" {
		return outcome{detail: "cgroup v1", warning: fmt.Sprintf("%s, and the Kubernetes version of node image %s is unknown (its tag is not vX.Y.Z)", deprecated, s.NodeImage)}
	}
	if !minorAtLeast(k, KubeletRefusesCgroupV1) {
		return outcome{detail: "cgroup v1", warning: deprecated}
	}
	return found("cgroup v1", Problem{
		Check: "cgroup",
		Detail: fmt.Sprintf("the Docker engine uses cgroup v1 and node image %s runs Kubernetes %s, whose kubelet does not start on cgroup v1 (failCgroupV1 is true by default from Kubernetes %s)",
			s.NodeImage, k, KubeletRefusesCgroupV1),
		Fix: "Run Docker on a cgroup v2 host, or set K8S_NODE_IMAGE to a node image for Kubernetes 1.34 or older, " +
			"or set KIND_CONFIG to a config with kubeadmConfigPatches: [\"kind: KubeletConfiguration\\nfailCgroupV1: false\"] (cgroup v1 is unsupported from Kubernetes 1.35)",
	})
}

// AllowsCgroupV1 reports whether the kind config patches failCgroupV1: false into every
// node's KubeletConfiguration (a cluster-wide kubeadmConfigPatches entry, or one per node).
// kind matches a patch without apiVersion by kind alone (sigs.k8s.io/kind
// pkg/internal/patch/resource.go, matches).
func AllowsCgroupV1(c cluster.KindConfig) bool {
	if patchesAllowCgroupV1(c.Cluster.KubeadmConfigPatches) {
		return true
	}
	for _, n := range c.Cluster.Nodes {
		if !patchesAllowCgroupV1(n.KubeadmConfigPatches) {
			return false
		}
	}
	return len(c.Cluster.Nodes) > 0
}

func patchesAllowCgroupV1(patches []string) bool {
	for _, p := range patches {
		var doc struct {
			Kind         string `json:"kind"`
			FailCgroupV1 *bool  `json:"failCgroupV1"`
		}
		if yaml.Unmarshal([]byte(p), &doc) == nil && doc.Kind == "KubeletConfiguration" && doc.FailCgroupV1 != nil && !*doc.FailCgroupV1 {
			return true
		}
	}
	return false
}

// minorAtLeast compares the major.minor of version "X.Y[.Z]" with min "X.Y".
func minorAtLeast(version, min string) bool {
	parse := func(v string) (int, int, bool) {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return 0, 0, false
		}
		a, err1 := strconv.Atoi(parts[0])
		b, err2 := strconv.Atoi(parts[1])
		return a, b, err1 == nil && err2 == nil
	}
	va, vb, ok1 := parse(version)
	ma, mb, ok2 := parse(min)
	return ok1 && ok2 && (va > ma || va == ma && vb >= mb)
}

// hostPortsCheck tries to bind every host port the kind config maps, on its listen address,
// as the node container will: a taken port would fail kind's create after minutes of work.
func hostPortsCheck(ctx context.Context, s settings.Settings, e *engine) outcome {
	c, err := cluster.LoadKindConfig(s.KindConfig)
	if err != nil {
		return outcome{skipped: true, detail: "not checked: the kind config does not load (see the kind config check)"}
	}
	type taken struct {
		addr, network, where string
		port, containerPort  int32
		err                  error
	}
	var free []string
	var busy []taken
	for i, n := range c.Cluster.Nodes {
		for j, m := range n.ExtraPortMappings {
			if m.HostPort <= 0 {
				continue // 0 and -1: a free port is picked when the node is created
			}
			network := strings.ToLower(string(m.Protocol))
			switch network {
			case "", "tcp":
				network = "tcp"
			case "udp":
			default:
				continue // SCTP: not probed
			}
			host := m.ListenAddress
			if host == "" {
				host = "0.0.0.0"
			}
			addr := net.JoinHostPort(host, strconv.Itoa(int(m.HostPort)))
			l, err := listen(network, addr)
			if err != nil {
				busy = append(busy, taken{addr, network, fmt.Sprintf("nodes[%d].extraPortMappings[%d]", i, j), m.HostPort, m.ContainerPort, err})
				continue
			}
			l.Close()
			free = append(free, addr+"/"+network)
		}
	}
	if len(busy) == 0 {
		if len(free) == 0 {
			return found("no fixed host ports mapped")
		}
		return found(strings.Join(free, ", ") + " free")
	}
	if exists, _ := e.ClusterExists(ctx); exists {
		// The existing cluster's nodes hold them; the docker check says whether it may be reused.
		return found(fmt.Sprintf("held by the existing kind cluster %q", s.ClusterName))
	}
	var problems []Problem
	for _, b := range busy {
		problems = append(problems, Problem{
			Check:  "host ports",
			Detail: fmt.Sprintf("%s/%s (kind config %s, %s) is taken: %v", b.addr, b.network, c.Source, b.where, b.err),
			Fix: fmt.Sprintf("Stop what listens there (lsof -i :%d names it), or set KIND_CONFIG to a copy of the config with hostPort: 0 for containerPort %d (kind then picks a free port; the run state records it)",
				b.port, b.containerPort),
		})
	}
	return found("", problems...)
}

func listen(network, addr string) (io.Closer, error) {
	if network == "udp" {
		return net.ListenPacket(network, addr)
	}
	return net.Listen(network, addr)
}
