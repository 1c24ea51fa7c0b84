package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/baseline"
	"meshconform/framework/diag"
	"meshconform/framework/probe"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/workload"
)

// The baseline's targets on the plain httpbin (go-httpbin).
const (
	// closedPort is a port the httpbin pod does not listen on (go-httpbin serves 8080 only):
	// the pod's kernel refuses it with a RST, whatever the cluster's Service proxy mode.
	closedPort = "9"
	// slowDelay is how long go-httpbin's /delay/N waits (its maximum is 10s), above
	// slowMaxTime, curl's --max-time for that probe.
	slowDelay   = 5
	slowMaxTime = 2 * time.Second
)

// runBaseline checks plain reachability without the mesh, in a namespace of its own with
// injection disabled: the plain client and a plain httpbin, ready with no proxy in either
// pod, then the three probes of framework/baseline, each converging N times in a row with the
// run's waiter. Whatever fails (the workloads never get ready, a probe's outcome) is a failed
// baseline with its evidence, never an error: the report must say the cluster is at fault.
func runBaseline(ctx context.Context, st provision.State, skip bool) (b report.Baseline) {
	GinkgoHelper()
	if skip {
		return baseline.Skipped("BASELINE=0")
	}
	By("baseline: a plain client to a plain server, no mesh")
	start := time.Now()
	r, err := newRun(ctx, st)
	if err != nil {
		return setupFailed("connecting to the cluster", err)
	}
	ns, err := workload.Namespace(ctx, r.Kube, workload.NamespaceSpec{Prefix: "baseline", RunID: st.RunID, Injection: workload.InjectionOff})
	if err != nil {
		return setupFailed("creating the baseline namespace", err)
	}
	defer func() {
		// Without ctx's end (the cleanup runs after an interrupt too). Deleted, not waited
		// for: the specs start meanwhile, and the suite waits for it at its end
		// (awaitNamespaces); the posture audits, which read namespaces, read only their own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := workload.StartDeletion(ctx, r.Kube, ns); err != nil {
			fmt.Fprintf(GinkgoWriter, "baseline cleanup: %v\n", err)
		}
	}()
	// Runs before the namespace's deletion (LIFO): a failed baseline carries its dump.
	defer func() { dumpBaseline(r, ns, &b) }()
	hs, err := workload.Deploy(ctx, r.Kube, ns, workload.Httpbin, workload.PlainClient)
	if err != nil {
		return setupFailed("deploying the plain client and httpbin", err)
	}
	server, client := hs[0], hs[1]
	for _, h := range hs {
		// ProxyForbidden: a pod that got a sidecar anyway would put the mesh back in the path.
		if err := workload.WaitReady(ctx, r.Kube, ns, h.Selector, workload.Consecutive(r.Expect.Consecutive),
			workload.Timeout(readyTimeout), workload.Proxy(workload.ProxyForbidden)); err != nil {
			return setupFailed(fmt.Sprintf("%s ready without a sidecar", h.Sample), err)
		}
	}
	serverPod, err := workload.PodFor(ctx, r.Kube, ns, server.App)
	if err != nil || serverPod.Status.PodIP == "" {
		return setupFailed("finding the httpbin pod's IP", fmt.Errorf("pod %v: %w", serverPod, err))
	}
	clientPod, err := workload.PodFor(ctx, r.Kube, ns, client.App)
	if err != nil {
		return setupFailed("finding the plain client pod", err)
	}
	ex, err := probe.NewPodExecutor(r.Config, ns, clientPod.Name, client.Container)
	if err != nil {
		return setupFailed("exec into the plain client", err)
	}
	t := baseline.Targets{
		ServerURL:   server.URL("/get"),
		ClosedURL:   "http://" + net.JoinHostPort(serverPod.Status.PodIP, closedPort) + "/",
		SlowURL:     server.URL(fmt.Sprintf("/delay/%d", slowDelay)),
		SlowTimeout: slowMaxTime,
	}
	if err := t.Validate(); err != nil {
		return setupFailed("the baseline's targets", err)
	}
	b, err = baseline.Run(ctx, r.Expect, ex, baseline.Checks(t))
	if err != nil {
		return setupFailed("running the probes", err)
	}
	fmt.Fprintf(GinkgoWriter, "baseline %s in %s\n", b.Status, provision.Elapsed(time.Since(start)))
	return b
}

// dumpBaseline writes the diagnostics of a failed baseline (its namespace, with the nodes and
// the cluster's events) before the namespace is deleted, and records where they are.
func dumpBaseline(r *Run, ns string, b *report.Baseline) {
	if !b.Failed() || r == nil || ns == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), diagTimeout)
	defer cancel()
	sum, err := diag.Dump(ctx, diag.DumpOptions{Kube: r.Kube, Istio: r.Istio, RestConfig: r.Config,
		Namespaces: []string{ns}, IstioNamespace: r.State.Istio.Namespace, NoMesh: r.State.Settings.NoMesh(),
		Dir:        filepath.Join(r.ReportsDir, "diag", "baseline"),
		ReportsDir: r.ReportsDir, ProxyExec: diag.PodExec(r.Config)})
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "baseline diagnostics incomplete: %v\n", err)
	}
	b.Diagnostics = sum.String()
}

// setupFailed is a baseline that could not reach its probes: the cluster could not run two
// plain pods, which is the cluster's fault as much as a failed probe is.
func setupFailed(step string, err error) report.Baseline {
	return baseline.Judge([]report.BaselineProbe{{Name: "plain workloads (" + step + ")", Result: report.Fail,
		Reason: err.Error(), Evidence: report.Evidence{Text: err.Error()}}})
}
