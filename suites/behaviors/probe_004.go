package behaviors

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/dataplane"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// PROBE-004: the injector rewrites TCP probes as it does HTTP ones (pkg/kube/inject/app_probe.go
// convertAppProberTCPSocket; Istio's golden testdata/inject/tcp-probes.yaml.injected): kubelet
// asks the agent over HTTP on 15020, and the agent dials the app's port. Like PROBE-001, the
// half the injector alone decides runs without a data plane.
var (
	_ = e2e.Register(e2e.Behavior{
		ID: "PROBE-004", Name: "TCP probes are rewritten too: Ready under STRICT with no restart",
		Requires: cases.Requires{Mode: dataplane.ModeSidecar}, Timeout: 15 * time.Minute,
		Namespaces: strictServerNamespace, Objects: namespaceStrict,
		Run: func(ctx context.Context, t *e2e.T) {
			soakRewritten(ctx, t, workload.ProbeTCP, checkTCPRewritten, "tcpSocket probes rewritten to /app-health/app/{readyz,livez} on 15020")
		},
	})

	_ = e2e.Register(e2e.Behavior{
		ID: "PROBE-004", Part: "injected spec", InjectedSpec: true,
		Name:       "the injector rewrites tcpSocket probes to httpGet /app-health/app/livez and readyz on 15020",
		Requires:   cases.Requires{Mode: dataplane.ModeSidecar},
		Namespaces: strictServerNamespace, Objects: namespaceStrict,
		Run: func(ctx context.Context, t *e2e.T) {
			injectedRewrite(ctx, t, workload.ProbeTCP, checkTCPRewritten,
				"tcpSocket probes rewritten to httpGet /app-health/app/{readyz,livez} on 15020 by the injector, the originals kept for the agent")
		},
	})
)

// checkTCPRewritten judges the probe-tcp sample's injected pod against its manifest.
func checkTCPRewritten(pod *corev1.Pod) error {
	m, err := workload.Load(workload.ProbeTCP)
	if err != nil {
		return err
	}
	return CheckProbeRewritten(pod, appContainer, WantOriginal(m.Deployments[0].Spec.Template.Spec.Containers[0]))
}
