// Package probes registers the health-probe specs (PROBE-001..003): kubelet's plaintext
// probes against workloads in a STRICT namespace, with and without Istio's probe rewrite.
package probes

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/expect"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/checks"
	"meshconform/suites/internal/e2e"
)

const (
	// soak is how long a rewritten pod must stay Ready with no restart: several of the
	// samples' probe periods (2s) and failure thresholds (3), so a failing probe would show.
	soak = 45 * time.Second
	// neverReadyWindow is how long PROBE-002's pod must stay unready once its containers run.
	neverReadyWindow = 45 * time.Second
	poll             = time.Second
	appContainer     = "app"
)

// strictNamespace is a meshed namespace made STRICT before anything is deployed in it, so
// the very first probe already meets mTLS enforcement.
func strictNamespace(ctx context.Context, id string) *e2e.Scenario {
	s := e2e.Setup(ctx, e2e.Current, id, []cases.Namespace{{Role: cases.Server, Meshed: true}})
	ns := s.Env.NS(cases.Server)
	s.Apply(ctx, []policy.Object{cases.NamespaceStrict(ns)})
	return s
}

func record(id string, err error, ok string, fields map[string]string) {
	if err != nil {
		e2e.RecordFields(id, expect.Deviation, err.Error(), fields)
		Fail(fmt.Sprintf("%s: %v", id, err))
	}
	e2e.RecordFields(id, expect.Documented, ok, fields)
}

var _ = Describe("probes", func() {
	It("PROBE-001: HTTP probes keep working under STRICT through the probe rewrite", e2e.IDLabels("PROBE-001"), SpecTimeout(15*time.Minute), func(ctx SpecContext) {
		s := strictNamespace(ctx, "PROBE-001")
		h := s.Deploy(ctx, cases.Server, workload.ProbeServer)[0]
		pod, _ := s.Pod(ctx, cases.Server, workload.ProbeServer)
		fields := map[string]string{"pod": pod.Namespace + "/" + pod.Name, "readinessProbe": probeOf(pod.Spec.Containers, appContainer).String()}
		if err := checks.CheckProbeRewritten(pod, appContainer); err != nil {
			record("PROBE-001", err, "", fields)
		}
		By(fmt.Sprintf("soaking %s: Ready with no restart", soak))
		record("PROBE-001", checks.SoakReady(ctx, s.Run.Kube, h.Namespace, h.Selector, soak, poll),
			"rewritten to /app-health/app/readyz on 15020; Ready with no restart for "+soak.String(), fields)
	})

	// The half of PROBE-001 the control plane alone decides: the injector's rewrite, read from
	// the admitted pod. It runs without a data plane too (DATAPLANE=0: the pod never starts).
	It("PROBE-001 injected spec: the injector rewrites the HTTP probes to /app-health/app/readyz on 15020", e2e.InjectedSpecLabels("PROBE-001"), func(ctx SpecContext) {
		s := strictNamespace(ctx, "PROBE-001")
		s.Deploy(ctx, cases.Server, workload.ProbeServer)
		pod, _ := s.Pod(ctx, cases.Server, workload.ProbeServer)
		fields := map[string]string{"pod": pod.Namespace + "/" + pod.Name, "readinessProbe": probeOf(pod.Spec.Containers, appContainer).String()}
		record("PROBE-001", checks.CheckProbeRewritten(pod, appContainer), "rewritten to /app-health/app/readyz on 15020 by the injector", fields)
	})

	It("PROBE-002: with the rewrite off, kubelet's plaintext probes fail under STRICT", e2e.IDLabels("PROBE-002"), SpecTimeout(15*time.Minute), func(ctx SpecContext) {
		s := strictNamespace(ctx, "PROBE-002")
		h := s.DeployNoWait(ctx, cases.Server, workload.ProbeNoRewrite)[0]
		var events []string
		err := expect.ConvergeFunc(ctx, s.Run.Expect, func(ctx context.Context) error {
			var err error
			events, err = checks.ReadinessProbeFailed(ctx, s.Run.Kube, h.Namespace, h.Selector)
			return err
		})
		fields := map[string]string{"events": strings.Join(events, "\n")}
		if err != nil {
			record("PROBE-002", err, "", fields)
		}
		By(fmt.Sprintf("the pod stays unready for %s", neverReadyWindow))
		err = checks.NeverReady(ctx, s.Run.Kube, h.Namespace, h.Selector, neverReadyWindow, poll)
		if err == nil {
			pod, perr := firstPod(ctx, s, h)
			if perr != nil {
				err = perr
			} else {
				err = checks.CheckNotRewritten(pod, appContainer)
			}
		}
		record("PROBE-002", err, "never Ready; kubelet reported the readiness probe failed; probes not rewritten", fields)
	})

	It("PROBE-003: a probe port outside STRICT keeps the pod Ready", e2e.IDLabels("PROBE-003"), SpecTimeout(15*time.Minute), func(ctx SpecContext) {
		s := strictNamespace(ctx, "PROBE-003")
		ns := s.Env.NS(cases.Server)
		By("portLevelMtls PERMISSIVE on the probe port 8081")
		s.Apply(ctx, []policy.Object{cases.ProbePortPermissive(ns)})
		s.Deploy(ctx, cases.Server, workload.ProbePort)
		By("excludeInboundPorts on the probe port 8081")
		s.Deploy(ctx, cases.Server, workload.ProbePortExcluded)
		record("PROBE-003", nil, "Ready with the probe port PERMISSIVE (portLevelMtls) and with it excluded from capture", nil)
	})
})

func firstPod(ctx context.Context, s *e2e.Scenario, h workload.Handle) (*corev1.Pod, error) {
	pods, err := s.Run.Kube.CoreV1().Pods(h.Namespace).List(ctx, metav1.ListOptions{LabelSelector: h.Selector})
	if err != nil {
		return nil, err
	}
	if len(pods.Items) == 0 {
		return nil, fmt.Errorf("no pod matches %s in %s", h.Selector, h.Namespace)
	}
	return &pods.Items[0], nil
}

func probeOf(cs []corev1.Container, name string) *corev1.Probe {
	for _, c := range cs {
		if c.Name == name && c.ReadinessProbe != nil {
			return c.ReadinessProbe
		}
	}
	return nil
}
