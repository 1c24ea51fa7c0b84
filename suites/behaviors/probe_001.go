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

// PROBE-001 has two specs: the traffic one (kubelet's probes keep the pod Ready through the
// rewrite), and the half the control plane alone decides (the injector's rewrite, read from the
// admitted pod), which runs without a data plane too (DATAPLANE=0: the pod never starts).
var (
	_ = e2e.Register(e2e.Behavior{
		ID: "PROBE-001", Name: "HTTP probes keep working under STRICT through the probe rewrite",
		Requires: cases.Requires{Mode: dataplane.ModeSidecar}, Timeout: 15 * time.Minute,
		Namespaces: strictServerNamespace, Objects: namespaceStrict,
		Run: func(ctx context.Context, t *e2e.T) {
			soakRewritten(ctx, t, workload.ProbeServer, httpRewritten, "rewritten to /app-health/app/readyz on 15020")
		},
	})

	_ = e2e.Register(e2e.Behavior{
		ID: "PROBE-001", Part: "injected spec", InjectedSpec: true,
		Name:       "the injector rewrites the HTTP probes to /app-health/app/readyz on 15020",
		Requires:   cases.Requires{Mode: dataplane.ModeSidecar},
		Namespaces: strictServerNamespace, Objects: namespaceStrict,
		Run: func(ctx context.Context, t *e2e.T) {
			injectedRewrite(ctx, t, workload.ProbeServer, httpRewritten, "rewritten to /app-health/app/readyz on 15020 by the injector")
		},
	})
)

// httpRewritten judges the probe-server sample's injected pod.
func httpRewritten(pod *corev1.Pod) error { return CheckProbeRewritten(pod, appContainer) }
