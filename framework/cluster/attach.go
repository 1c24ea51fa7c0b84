package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform"
)

// Attached is an existing cluster reached through a kubeconfig context: nothing at cluster
// level is created or deleted through it.
type Attached struct {
	// Kubeconfig is the file list the context was read from ("" when client-go's default).
	Kubeconfig string
	Context    string
	Server     string
	Config     *rest.Config
	// ServerVersion is the API server's gitVersion (e.g. v1.37.2).
	ServerVersion string
}

// DefaultReachTimeout bounds the reachability check: an API server answers /version in
// milliseconds, and a dead one should not hold the run for long.
const DefaultReachTimeout = 5 * time.Second

// Attach reads context from kubeconfig (a path list, "" for client-go's default rules) and
// checks that its API server answers /version within timeout (0: DefaultReachTimeout).
func Attach(ctx context.Context, kubeconfig, kubeContext string, timeout time.Duration) (*Attached, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.Precedence = filepath.SplitList(kubeconfig)
		rules.ExplicitPath = ""
	}
	where := kubeconfig
	if where == "" {
		where = strings.Join(rules.GetLoadingPrecedence(), string(filepath.ListSeparator))
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w: set KUBECONFIG to a readable kubeconfig file", where, err)
	}
	if kubeContext == "" {
		kubeContext = raw.CurrentContext
	}
	if _, ok := raw.Contexts[kubeContext]; !ok || kubeContext == "" {
		var names []string
		for n := range raw.Contexts {
			names = append(names, n)
		}
		slices.Sort(names)
		have := "no contexts"
		if len(names) > 0 {
			have = "contexts " + strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("context %q is not in kubeconfig %s (it has %s): set KUBE_CONTEXT to one of them, or KUBECONFIG to the file that has it",
			kubeContext, where, have)
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*raw, kubeContext, &clientcmd.ConfigOverrides{}, rules).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q in kubeconfig %s: %w", kubeContext, where, err)
	}
	a := &Attached{Kubeconfig: kubeconfig, Context: kubeContext, Server: rc.Host, Config: rc}
	v, err := ServerVersion(ctx, rc, timeout)
	if err != nil {
		return nil, fmt.Errorf("context %q (server %s) is not reachable: %v: start that cluster or fix KUBE_CONTEXT/KUBECONFIG, or unset KUBE_CONTEXT to let the suite create a kind cluster",
			kubeContext, rc.Host, err)
	}
	a.ServerVersion = v
	return a, nil
}

// ServerVersion GETs /version within timeout (0: DefaultReachTimeout) and returns gitVersion.
func ServerVersion(ctx context.Context, rc *rest.Config, timeout time.Duration) (string, error) {
	if timeout <= 0 {
		timeout = DefaultReachTimeout
	}
	cfg := rest.CopyConfig(rc)
	// ctx enforces the deadline; the client's own timeout only backs it up.
	cfg.Timeout = timeout + time.Second
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return "", fmt.Errorf("no answer to GET /version within %s", timeout)
		}
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.GitVersion == "" {
		return "", fmt.Errorf("GET /version: not a Kubernetes version answer: %.100q", body)
	}
	return v.GitVersion, nil
}

// NodeImageFor is the kind node image versions.yaml pins for a Kubernetes version
// ("1.36.4" or "v1.36.4").
func NodeImageFor(version string) (string, error) {
	version = strings.TrimPrefix(version, "v")
	var known []string
	for _, n := range meshconform.SupportedVersions().Kubernetes {
		if n.Version == version {
			return n.Image, nil
		}
		known = append(known, n.Version)
	}
	return "", fmt.Errorf("no kind node image for Kubernetes %q in versions.yaml: use one of %s, or set K8S_NODE_IMAGE",
		version, strings.Join(known, ", "))
}
