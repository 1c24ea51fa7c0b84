package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	kindmanifests "meshconform/manifests/kind"
)

// KindConfig is a kind cluster config, decoded and checked, with the bytes handed to kind.
type KindConfig struct {
	// Source is the embedded name or the file it came from, for messages.
	Source string
	Raw    []byte
	// Cluster is Raw decoded with kind's v1alpha4 types and kind's defaults applied.
	Cluster *v1alpha4.Cluster
}

// LoadKindConfig returns the embedded config called nameOrPath (see manifests/kind) or, when
// no embedded config has that name, the file at that path; "" is the default config.
func LoadKindConfig(nameOrPath string) (KindConfig, error) {
	if nameOrPath == "" {
		nameOrPath = kindmanifests.Default
	}
	for _, n := range kindmanifests.Names() {
		if n == nameOrPath {
			raw, err := kindmanifests.Config(n)
			if err != nil {
				return KindConfig{}, err
			}
			return ParseKindConfig(n+" (embedded)", raw)
		}
	}
	raw, err := os.ReadFile(nameOrPath)
	if err != nil {
		return KindConfig{}, fmt.Errorf("kind config %q: %w: set KIND_CONFIG to a readable file or to one of %s",
			nameOrPath, err, strings.Join(kindmanifests.Names(), ", "))
	}
	return ParseKindConfig(nameOrPath, raw)
}

// ParseKindConfig decodes raw strictly (unknown fields are errors, as in kind) into kind's
// v1alpha4 types, applies kind's defaults and checks what kind would reject at create time,
// after minutes of work, plus meshconform's own needs. All problems are reported at once.
func ParseKindConfig(source string, raw []byte) (KindConfig, error) {
	var tm v1alpha4.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return KindConfig{}, fmt.Errorf("kind config %s: not YAML: %w", source, err)
	}
	if tm.Kind != "Cluster" || tm.APIVersion != "kind.x-k8s.io/v1alpha4" {
		return KindConfig{}, fmt.Errorf("kind config %s: kind %q, apiVersion %q: use kind: Cluster, apiVersion: kind.x-k8s.io/v1alpha4",
			source, tm.Kind, tm.APIVersion)
	}
	c := &v1alpha4.Cluster{}
	if err := yaml.UnmarshalStrict(raw, c); err != nil {
		return KindConfig{}, fmt.Errorf("kind config %s: %w", source, err)
	}
	v1alpha4.SetDefaultsCluster(c)
	if err := checkKindConfig(c); err != nil {
		return KindConfig{}, fmt.Errorf("kind config %s: %w", source, err)
	}
	return KindConfig{Source: source, Raw: raw, Cluster: c}, nil
}

func checkKindConfig(c *v1alpha4.Cluster) error {
	var errs []error
	if c.Name != "" {
		// CLUSTER_NAME decides; a name in the file would silently lose, so refuse it.
		errs = append(errs, fmt.Errorf("sets name %q: remove it, the cluster name comes from CLUSTER_NAME", c.Name))
	}
	controlPlanes := 0
	type bind struct {
		addr string
		port int32
	}
	bound := map[bind]string{}
	for i, n := range c.Nodes {
		where := fmt.Sprintf("nodes[%d]", i)
		switch n.Role {
		case v1alpha4.ControlPlaneRole:
			controlPlanes++
		case v1alpha4.WorkerRole:
		default:
			errs = append(errs, fmt.Errorf("%s: role %q: use control-plane or worker", where, n.Role))
		}
		for j, m := range n.ExtraPortMappings {
			at := fmt.Sprintf("%s.extraPortMappings[%d]", where, j)
			if m.ContainerPort < 1 || m.ContainerPort > 65535 {
				errs = append(errs, fmt.Errorf("%s: containerPort %d is not a port (1-65535)", at, m.ContainerPort))
			}
			if m.HostPort < -1 || m.HostPort > 65535 {
				errs = append(errs, fmt.Errorf("%s: hostPort %d is not a port (0-65535, or -1 for any)", at, m.HostPort))
			}
			switch strings.ToUpper(string(m.Protocol)) {
			case "", "TCP", "UDP", "SCTP":
			default:
				errs = append(errs, fmt.Errorf("%s: protocol %q: use TCP, UDP or SCTP", at, m.Protocol))
			}
			if m.HostPort > 0 {
				b := bind{m.ListenAddress, m.HostPort}
				if prev, dup := bound[b]; dup {
					errs = append(errs, fmt.Errorf("%s: hostPort %d on %q is already mapped by %s", at, m.HostPort, m.ListenAddress, prev))
				}
				bound[b] = at
			}
		}
	}
	if controlPlanes == 0 {
		errs = append(errs, errors.New("has no control-plane node: add one with role: control-plane"))
	}
	if controlPlanes > 1 {
		// Several control planes put a load balancer container in front: more memory than a
		// small runner has to spare, and nothing the suite tests needs it.
		errs = append(errs, fmt.Errorf("has %d control-plane nodes: use one (a small runner cannot hold more)", controlPlanes))
	}
	return errors.Join(errs...)
}

// HostPort returns the host address mapped to containerPort on some node, if any.
func (k KindConfig) HostPort(containerPort int32) (string, bool) {
	for _, n := range k.Cluster.Nodes {
		for _, m := range n.ExtraPortMappings {
			if m.ContainerPort == containerPort && m.HostPort > 0 {
				addr := m.ListenAddress
				if addr == "" || addr == "0.0.0.0" {
					addr = "127.0.0.1"
				}
				return net.JoinHostPort(addr, strconv.Itoa(int(m.HostPort))), true
			}
		}
	}
	return "", false
}

// NodeNames are the container names kind gives the config's nodes in cluster name: per role,
// "<name>-<role>", then "<name>-<role>2", … in config order (sigs.k8s.io/kind
// pkg/cluster/internal/providers/common/namer.go, MakeNodeNamer).
func (k KindConfig) NodeNames(name string) []string {
	count := map[string]int{}
	var out []string
	for _, n := range k.Cluster.Nodes {
		role := string(n.Role)
		count[role]++
		suffix := ""
		if count[role] > 1 {
			suffix = strconv.Itoa(count[role])
		}
		out = append(out, name+"-"+role+suffix)
	}
	return out
}

// IngressAddress is the host address that reaches containerPort of the kind cluster name:
// the config's fixed hostPort, or, for a hostPort of 0 or -1 (kind or Docker picks a free
// port when the node is created), the port Docker published (docker port). "" when the config
// does not map containerPort.
func (k KindConfig) IngressAddress(ctx context.Context, d Docker, name string, containerPort int32) (string, error) {
	if addr, ok := k.HostPort(containerPort); ok {
		return addr, nil
	}
	names := k.NodeNames(name)
	for i, n := range k.Cluster.Nodes {
		for _, m := range n.ExtraPortMappings {
			if m.ContainerPort != containerPort || m.HostPort > 0 {
				continue
			}
			proto := strings.ToLower(string(m.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			out, err := d.Run(ctx, "port", names[i], fmt.Sprintf("%d/%s", containerPort, proto))
			if err != nil {
				return "", fmt.Errorf("host port of %s's containerPort %d: %w", names[i], containerPort, err)
			}
			// One line per binding, e.g. "127.0.0.1:41234" or "0.0.0.0:41234" and "[::]:41234".
			for line := range strings.Lines(string(out)) {
				host, port, err := net.SplitHostPort(strings.TrimSpace(line))
				if err != nil || net.ParseIP(host).To4() == nil {
					continue
				}
				if host == "0.0.0.0" {
					host = "127.0.0.1"
				}
				return net.JoinHostPort(host, port), nil
			}
			return "", fmt.Errorf("host port of %s's containerPort %d: docker port printed no IPv4 address: %q", names[i], containerPort, strings.TrimSpace(string(out)))
		}
	}
	return "", nil
}
