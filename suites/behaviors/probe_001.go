package behaviors

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

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
			t.Apply(ctx, namespaceStrict(t.Env))
			h := t.Deploy(ctx, cases.Server, workload.ProbeServer)[0]
			pod, _ := t.Pod(ctx, cases.Server, workload.ProbeServer)
			fields := probeFields(pod)
			if err := CheckProbeRewritten(pod, appContainer); err != nil {
				t.Check(err, "", fields)
			}
			By(fmt.Sprintf("soaking %s: Ready with no restart", soak))
			t.Check(SoakReady(ctx, t.Run.Kube, h.Namespace, h.Selector, soak, probePoll),
				"rewritten to /app-health/app/readyz on 15020; Ready with no restart for "+soak.String(), fields)
		},
	})

	_ = e2e.Register(e2e.Behavior{
		ID: "PROBE-001", Part: "injected spec", InjectedSpec: true,
		Name:       "the injector rewrites the HTTP probes to /app-health/app/readyz on 15020",
		Requires:   cases.Requires{Mode: dataplane.ModeSidecar},
		Namespaces: strictServerNamespace, Objects: namespaceStrict,
		Run: func(ctx context.Context, t *e2e.T) {
			t.Apply(ctx, namespaceStrict(t.Env))
			t.Deploy(ctx, cases.Server, workload.ProbeServer)
			pod, _ := t.Pod(ctx, cases.Server, workload.ProbeServer)
			t.Check(CheckProbeRewritten(pod, appContainer), "rewritten to /app-health/app/readyz on 15020 by the injector", probeFields(pod))
		},
	})
)
