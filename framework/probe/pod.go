package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"meshconform/framework/istionames"
)

// PodExecutor runs commands in one container of a pod through the API server's exec
// subresource: WebSocket (v5) first, SPDY when the server cannot upgrade, as kubectl does.
type PodExecutor struct {
	cfg                       *rest.Config
	client                    rest.Interface
	Namespace, Pod, Container string
}

// NewPodExecutor builds an executor for container in ns/pod. It does not contact the
// cluster; the first Exec does.
func NewPodExecutor(cfg *rest.Config, ns, pod, container string) (*PodExecutor, error) {
	if cfg == nil {
		return nil, errors.New("pod executor: nil rest.Config (build one from the kubeconfig with clientcmd)")
	}
	if ns == "" || pod == "" || container == "" {
		return nil, fmt.Errorf("pod executor: namespace %q, pod %q and container %q must all be set", ns, pod, container)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("pod executor: %w", err)
	}
	return &PodExecutor{cfg: cfg, client: cs.CoreV1().RESTClient(), Namespace: ns, Pod: pod, Container: container}, nil
}

func (p *PodExecutor) String() string {
	return fmt.Sprintf("pod %s/%s container %s", p.Namespace, p.Pod, p.Container)
}

// ExecURL is the exec subresource URL for cmd: stdout and stderr, no stdin, no TTY (a TTY
// would merge stderr into stdout and lose curl's error line).
func (p *PodExecutor) ExecURL(cmd []string) *url.URL {
	return p.client.Post().
		Resource("pods").Namespace(p.Namespace).Name(p.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: p.Container,
			Command:   cmd,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec).
		URL()
}

// Exec implements Executor. The exit code comes from the status the API server sends
// (exec.CodeExitError); -1 when the stream ended without one.
func (p *PodExecutor) Exec(ctx context.Context, cmd []string) (ExecResult, error) {
	res := ExecResult{ExitCode: -1}
	if len(cmd) == 0 {
		return res, errors.New("pod exec: empty command")
	}
	u := p.ExecURL(cmd)
	ws, err := remotecommand.NewWebSocketExecutor(p.cfg, "GET", u.String())
	if err != nil {
		return res, fmt.Errorf("%s: websocket executor: %w", p, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(p.cfg, "POST", u)
	if err != nil {
		return res, fmt.Errorf("%s: spdy executor: %w", p, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", p, err)
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	return res, p.exitStatus(&res, err)
}

// exitStatus turns the stream's error into an exit code, or a transport error.
func (p *PodExecutor) exitStatus(res *ExecResult, err error) error {
	if err == nil {
		res.ExitCode = 0
		return nil
	}
	var code utilexec.CodeExitError
	if errors.As(err, &code) {
		res.ExitCode = code.Code
		return nil
	}
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		res.ExitCode = exitErr.ExitStatus()
		return nil
	}
	return fmt.Errorf("%s: exec: %w", p, err)
}

// ProxyContainer finds Istio's sidecar in a pod: a regular container, or (Istio ≥ 1.27 on
// Kubernetes ≥ 1.33) a native sidecar, i.e. an init container with restartPolicy Always.
// An istio-proxy init container without restartPolicy Always is not a running proxy.
func ProxyContainer(pod *corev1.Pod) (name string, native bool, ok bool) {
	if pod == nil {
		return "", false, false
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == istionames.ProxyContainerName {
			return c.Name, false, true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == istionames.ProxyContainerName && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return c.Name, true, true
		}
	}
	return "", false, false
}
