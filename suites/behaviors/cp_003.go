package behaviors

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
	"meshconform/suites/internal/e2e"
)

// CP-003 scans istiod's logs for a rejected CSR in what istiod 1.30 and 1.31 print
// (PatternCAAuthFailed) and in seed 000's older wording; the evidence says which matched.
var _ = e2e.Register(e2e.Behavior{
	ID: "CP-003", Name: "no CA authentication failures",
	Serial: true,
	Run: func(ctx context.Context, t *e2e.T) {
		f, err := scanRun(ctx, t)
		if err != nil {
			t.Unjudged(fmt.Errorf("reading istiod's logs: %w", err), nil)
		}
		t.Check(f.CAAuthFailed.Absent(), "no CA authentication failures, in today's wording or the seed's", findingFields(f.CAAuthFailed, f.Lines))
	},
})

// WrongAudience is the audience of the CP-003 control's token: not istiod's (istio-ca, the
// TokenReview's audience: pkg/security/security.go:139 TokenAudiences), so istiod must refuse it.
const WrongAudience = "meshconform-not-istio-ca"

// BadTokenControl turns a pod the injector gave the grpc-agent template (injected: what a
// server-side dry run of a grpc-agent pod returns) into CP-003's negative control: the same
// containers, environment and volumes, but a projected istio-token whose audience istiod
// refuses, and marked not to be injected again (a hand-built pod: the injector leaves it alone).
// Its pilot-agent then sends CSRs istiod must reject, each logged as
// "Failed to authenticate client from …" (pkg/security/authentication.go:60). The pod is a copy,
// named name, ready to create; an error when the injected pod has no projected istio-token.
func BadTokenControl(injected *corev1.Pod, name string) (*corev1.Pod, error) {
	p := handBuilt(injected, name)
	found := false
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		if v.Name != AgentTokenVolume || v.Projected == nil {
			continue
		}
		for j := range v.Projected.Sources {
			if t := v.Projected.Sources[j].ServiceAccountToken; t != nil {
				t.Audience = WrongAudience
				found = true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("CP-003 control: pod %s/%s has no projected %s volume with a service account token (was it injected with the %s template?)",
			injected.Namespace, injected.Name, AgentTokenVolume, istionames.GRPCAgentTemplate)
	}
	return p, nil
}

// handBuilt is a copy of a pod the injector made, named name, marked not to be injected again
// (a hand-built pod: the injector leaves it alone) and not bound to the injected pod's node.
func handBuilt(injected *corev1.Pod, name string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: injected.Namespace,
			Labels:      maps.Clone(injected.Labels),
			Annotations: maps.Clone(injected.Annotations),
		},
		Spec: *injected.Spec.DeepCopy(),
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Labels[istionames.InjectLabel] = "false"
	p.Annotations[istionames.InjectLabel] = "false"
	p.Spec.NodeName = ""
	return p
}

// AgentTokenVolume is the injected pod's projected token volume that the agent sends to the CA
// (istio-discovery/files/grpc-agent.yaml, mounted at /var/run/secrets/tokens).
const AgentTokenVolume = "istio-token"

// StartBadTokenControl creates CP-003's control in namespace ns (labelled for injection): a
// server-side dry run of a grpc-agent pod with service account sa and pilot-agent from
// agentImage gives the injector's pod, which BadTokenControl turns into the control, created as
// name. It returns the created pod.
func StartBadTokenControl(ctx context.Context, kube kubernetes.Interface, ns, sa, name, agentImage string) (*corev1.Pod, error) {
	injected, err := injectedGRPCAgent(ctx, kube, ns, sa, name, agentImage)
	if err != nil {
		return nil, fmt.Errorf("CP-003 control: %w", err)
	}
	control, err := BadTokenControl(injected, name)
	if err != nil {
		return nil, err
	}
	return kube.CoreV1().Pods(ns).Create(ctx, control, metav1.CreateOptions{})
}

// injectedGRPCAgent is what the injector in ns makes of the grpc-agent sample's pod named name,
// with service account sa (and pilot-agent from agentImage when set): a server-side dry run,
// nothing created.
func injectedGRPCAgent(ctx context.Context, kube kubernetes.Interface, ns, sa, name, agentImage string) (*corev1.Pod, error) {
	m, err := workload.Load(workload.GRPCAgent)
	if err != nil {
		return nil, err
	}
	tmpl := m.Deployments[0].Spec.Template
	tmpl.Spec.ServiceAccountName = sa
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: tmpl.Labels, Annotations: tmpl.Annotations}, Spec: tmpl.Spec}
	if agentImage != "" {
		pod.Annotations[istionames.ProxyImageAnnotation] = agentImage
	}
	injected, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry run of a %s pod in %s: %w", istionames.GRPCAgentTemplate, ns, err)
	}
	return injected, nil
}

// AwaitCAAuthFailure waits until istiod's logs since since show a rejected CSR (CP-003's pattern)
// and returns the most recent such line: the proof that a control was refused.
func AwaitCAAuthFailure(ctx context.Context, kube kubernetes.Interface, istioNamespace string, since time.Time, timeout time.Duration) (string, error) {
	res, err := wait.Until(ctx, wait.Config{Timeout: timeout, Poll: time.Second, Consecutive: 1},
		func(ctx context.Context) (Finding, error) {
			text, err := IstiodLogs(ctx, kube, istioNamespace, "", since)
			return ScanIstiodLog(text).CAAuthFailed, err
		}, func(f Finding) bool { return f.Count > 0 })
	if err != nil {
		return "", fmt.Errorf("CP-003 control: istiod logged no line matching %q within %v: %w", PatternCAAuthFailed, timeout, err)
	}
	ex := res.Last().Value.Examples
	return ex[len(ex)-1], nil
}
