package behaviors

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/dataplane"
	"meshconform/framework/expect"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// neverReadyWindow is how long PROBE-002's pod must stay unready once its containers run.
const neverReadyWindow = 45 * time.Second

var _ = e2e.Register(e2e.Behavior{
	ID: "PROBE-002", Name: "with the rewrite off, kubelet's plaintext probes fail under STRICT",
	Requires: cases.Requires{Mode: dataplane.ModeSidecar}, Timeout: 15 * time.Minute,
	Namespaces: strictServerNamespace, Objects: namespaceStrict,
	Run: func(ctx context.Context, t *e2e.T) {
		t.Apply(ctx, namespaceStrict(t.Env))
		h := t.DeployNoWait(ctx, cases.Server, workload.ProbeNoRewrite)[0]
		var events []string
		err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
			var err error
			events, err = ReadinessProbeFailed(ctx, t.Run.Kube, h.Namespace, h.Selector)
			return err
		})
		fields := map[string]string{"events": strings.Join(events, "\n")}
		if err != nil {
			t.Check(err, "", fields)
		}
		By(fmt.Sprintf("the pod stays unready for %s", neverReadyWindow))
		err = NeverReady(ctx, t.Run.Kube, h.Namespace, h.Selector, neverReadyWindow, probePoll)
		if err == nil {
			var pods []corev1.Pod
			pods, err = listPods(ctx, t.Run.Kube, h.Namespace, h.Selector)
			switch {
			case err != nil:
			case len(pods) == 0:
				err = fmt.Errorf("no pod matches %s in %s", h.Selector, h.Namespace)
			default:
				err = CheckNotRewritten(&pods[0], appContainer)
			}
		}
		t.Check(err, "never Ready; kubelet reported the readiness probe failed; probes not rewritten", fields)
	},
})
