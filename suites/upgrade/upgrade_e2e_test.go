//go:build e2e

// The upgrade suite: the version-skew checks of `make e2e-upgrade`, one phase per run (see
// framework/gate). Its specs carry the behaviour IDs they re-check (MTLS-004, MTLS-002) and the
// label upgrade, so the phase's report names behaviours and report diff gates them with the rest.
package upgrade

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/catalog"
	"meshconform/framework/diag"
	"meshconform/framework/expect"
	"meshconform/framework/gate"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/report"
	"meshconform/framework/workload"
	"meshconform/suites/internal/e2e"
	"meshconform/suites/internal/record"
)

var _ = e2e.Bootstrap(gate.ReportsSubdir)

// suiteEnv is the driver's word on the phase and the versions (checked in TestUpgrade).
var suiteEnv gate.Env

func TestUpgrade(t *testing.T) {
	RegisterFailHandler(Fail)
	if cfg, _ := GinkgoConfiguration(); !cfg.DryRun {
		// Without the driver's state, Bootstrap would bring up a cluster of its own and the
		// phases would have nothing to compare: stop here, before anything is created.
		var err error
		if suiteEnv, err = gate.CheckEnv(os.Getenv); err != nil {
			t.Fatalf("meshconform upgrade suite:\n%v", err)
		}
	}
	RunSpecs(t, "meshconform upgrade")
}

const (
	setupTimeout   = 15 * time.Minute
	specTimeout    = 10 * time.Minute
	readyTimeout   = 5 * time.Minute
	requestTimeout = 10 * time.Second
	cleanupTimeout = 5 * time.Minute
	diagTimeout    = 2 * time.Minute
)

var _ = Describe("upgrade", Label("upgrade"), func() {
	for _, p := range gate.PhasesToRegister(os.Getenv(gate.SuitePhaseEnv)) {
		switch p {
		case gate.Before:
			phaseBefore()
		case gate.AfterInPlace:
			phaseAfterInPlace()
		case gate.AfterCanary:
			phaseAfterCanary()
		}
	}
})

// Phase before, on Istio FROM: the skew workloads are deployed and their proxies recorded.
func phaseBefore() {
	Describe("phase before (Istio FROM)", Ordered, func() {
		w := &world{phase: gate.Before}
		BeforeAll(func(ctx SpecContext) {
			w.init(ctx)
			Expect(w.ns).To(BeEmpty(), "skew namespaces of run %s exist already: phase before runs once per run", w.r.State.RunID)
			for _, role := range []Role{Server, Client} {
				w.create(ctx, role)
			}
			w.strict(ctx, Server)
			w.waitReady(ctx, Server, Client)
			for _, role := range []Role{Server, Client} {
				rec, err := RecordPod(ctx, w.r.Kube, w.pod(ctx, role, w.refs[role]), gate.Before)
				Expect(err).NotTo(HaveOccurred())
				fmt.Fprintf(GinkgoWriter, "recorded %s: pod %s (uid %s), proxy %s (Istio %s)\n", role, rec.Pod, rec.UID, rec.Image, rec.Version)
			}
		}, NodeTimeout(setupTimeout))
		AfterEach(func() { w.dumpOnFailure() })

		It("MTLS-004 on FROM: the mesh client and the STRICT server run FROM's proxy and the client gets 200",
			e2e.IDLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				client := w.fromProxies(ctx)
				w.converge(ctx, "MTLS-004", "mesh client (FROM) → server (FROM)", client, w.refs[Client].Container, w.url(Server), catalog.Allowed)
			})

		It("MTLS-004 injected spec on FROM: the mesh client and the server were injected with FROM's proxy",
			e2e.InjectedSpecLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				w.fromProxies(ctx)
			})

		It("MTLS-002 on FROM: a plain client is reset by the STRICT server",
			e2e.IDLabels("MTLS-002", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				w.converge(ctx, "MTLS-002", "plain client → server (FROM)", w.plainClient(ctx), w.plain.Container, w.url(Server), catalog.PlaintextRejected)
			})
	})
}

// Phase after-inplace, on TO upgraded in place: the client keeps its FROM proxy (not
// restarted) and calls a server deployed now, with TO's proxy.
func phaseAfterInPlace() {
	Describe("phase after-inplace (Istio TO in place, old client not restarted)", Ordered, func() {
		w := &world{phase: gate.AfterInPlace}
		BeforeAll(func(ctx SpecContext) {
			w.init(ctx)
			Expect(w.ns.Require(w.r.State.RunID, Server, Client)).To(Succeed())
			Expect(w.ns).NotTo(HaveKey(NewServer), "the new server's namespace exists already: phase after-inplace runs once per run")
			w.create(ctx, NewServer)
			w.strict(ctx, NewServer)
			w.waitReady(ctx, NewServer)
		}, NodeTimeout(setupTimeout))
		AfterEach(func() { w.dumpOnFailure() })

		It("MTLS-004 after the in-place upgrade: the old-proxy client (FROM) gets 200 from a new-proxy server (TO) under STRICT",
			e2e.IDLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				client := w.inPlaceProxies(ctx)
				w.expectProxy("MTLS-004", "old server", w.pod(ctx, Server, w.refs[Server]), suiteEnv.From)
				w.converge(ctx, "MTLS-004", "old mesh client (FROM) → new server (TO)", client, w.refs[Client].Container, w.url(NewServer), catalog.Allowed)
				w.converge(ctx, "MTLS-004", "old mesh client (FROM) → old server (FROM) under istiod TO", client, w.refs[Client].Container, w.url(Server), catalog.Allowed)
			})

		It("MTLS-004 injected spec after the in-place upgrade: a new server gets TO's proxy, the old client keeps FROM's",
			e2e.InjectedSpecLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				w.inPlaceProxies(ctx)
			})

		It("MTLS-002 after the in-place upgrade: a plain client is still reset by the new-proxy server and the old one",
			e2e.IDLabels("MTLS-002", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				plain := w.plainClient(ctx)
				w.converge(ctx, "MTLS-002", "plain client → new server (TO)", plain, w.plain.Container, w.url(NewServer), catalog.PlaintextRejected)
				w.converge(ctx, "MTLS-002", "plain client → old server (FROM)", plain, w.plain.Container, w.url(Server), catalog.PlaintextRejected)
			})
	})
}

// Phase after-canary, with TO installed as a canary revision: the client's namespace is
// relabelled to the canary and its Deployment restarted; the new pod must carry the canary's
// proxy and still reach both servers.
func phaseAfterCanary() {
	Describe("phase after-canary (client moved to the canary revision)", Ordered, func() {
		w := &world{phase: gate.AfterCanary}
		var (
			before Record      // the client as phase before recorded it
			moved  *corev1.Pod // the client's pod after the move
		)
		BeforeAll(func(ctx SpecContext) {
			w.init(ctx)
			rev := w.r.State.Istio.Revision
			Expect(rev).NotTo(BeEmpty(), "phase after-canary runs against the canary revision, but the run's state names none (Istio.Revision): run it through make e2e-upgrade")
			Expect(w.ns.Require(w.r.State.RunID, Server, Client, NewServer)).To(Succeed())
			var err error
			before, err = Recorded(ctx, w.r.Kube, w.ns[Client], w.refs[Client].App)
			Expect(err).NotTo(HaveOccurred())

			By(fmt.Sprintf("relabelling namespace %s for revision %s and restarting deployment %s", w.ns[Client], rev, w.refs[Client].Deployment))
			_, err = MoveToRevision(ctx, w.r.Kube, w.ns[Client], rev)
			Expect(err).NotTo(HaveOccurred())
			stamp, err := RolloutRestart(ctx, w.r.Kube, w.ns[Client], w.refs[Client].Deployment, time.Now())
			Expect(err).NotTo(HaveOccurred())
			pod, err := WaitRestarted(ctx, w.r.Kube, w.ns[Client], w.refs[Client].Deployment, stamp, w.noDataPlane(), readyTimeout, 500*time.Millisecond)
			Expect(err).NotTo(HaveOccurred())
			w.waitReady(ctx, Client)
			moved, err = w.r.Kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(setupTimeout))
		AfterEach(func() { w.dumpOnFailure() })
		AfterAll(func(ctx SpecContext) {
			if w.r == nil {
				return
			}
			ctx2, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			Expect(Cleanup(ctx2, w.r.Kube, w.r.State.RunID)).To(Succeed(), "deleting the skew namespaces")
		}, NodeTimeout(cleanupTimeout+time.Minute))

		It("MTLS-004 after the canary move: the restarted client has TO's proxy from the canary and gets 200 from both servers",
			e2e.IDLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				w.canaryProxy(ctx, moved, before)
				w.converge(ctx, "MTLS-004", "moved client (TO, canary) → new server (TO)", moved, w.refs[Client].Container, w.url(NewServer), catalog.Allowed)
				w.converge(ctx, "MTLS-004", "moved client (TO, canary) → old server (FROM)", moved, w.refs[Client].Container, w.url(Server), catalog.Allowed)
			})

		It("MTLS-004 injected spec after the canary move: the restarted client was injected by the canary with TO's proxy",
			e2e.InjectedSpecLabels("MTLS-004", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				w.canaryProxy(ctx, moved, before)
			})

		It("MTLS-002 after the canary move: a plain client in the moved namespace is still reset",
			e2e.IDLabels("MTLS-002", "upgrade"), SpecTimeout(specTimeout), func(ctx SpecContext) {
				plain := w.plainClient(ctx)
				_, _, has := workload.ProxyContainer(plain)
				Expect(has).To(BeFalse(), "plain client %s/%s has a sidecar after the move", plain.Namespace, plain.Name)
				w.converge(ctx, "MTLS-002", "plain client → new server (TO)", plain, w.plain.Container, w.url(NewServer), catalog.PlaintextRejected)
			})
	})
}

// world is what a phase works on: the run, the skew namespaces found, the samples' refs.
type world struct {
	phase gate.Phase
	r     *e2e.Run
	ns    Namespaces
	refs  map[Role]Ref // the role's first sample: the server, or the mesh client
	plain Ref
}

func (w *world) init(ctx context.Context) {
	GinkgoHelper()
	w.r = e2e.Current
	Expect(w.r).NotTo(BeNil(), "no run: the suite's SynchronizedBeforeSuite did not complete")
	var err error
	w.ns, err = FindNamespaces(ctx, w.r.Kube, w.r.State.RunID)
	Expect(err).NotTo(HaveOccurred())
	w.refs = map[Role]Ref{}
	for _, role := range []Role{Server, Client, NewServer} {
		w.refs[role], err = RefOf(SamplesOf(role)[0])
		Expect(err).NotTo(HaveOccurred())
	}
	w.plain, err = RefOf(workload.PlainClient)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "phase %s: Istio %s (revision %q), FROM %s, TO %s, skew namespaces %v\n",
		w.phase, w.r.State.Istio.Version, w.r.State.Istio.Revision, suiteEnv.From, suiteEnv.To, w.ns)
}

// create makes role's namespace, injected by the run's control plane, and deploys its samples.
func (w *world) create(ctx context.Context, role Role) {
	GinkgoHelper()
	inj := workload.InjectionOn
	if rev := w.r.State.Istio.Revision; rev != "" {
		inj = workload.Revision(rev)
	}
	ns, err := CreateNamespace(ctx, w.r.Kube, w.r.State.RunID, role, inj)
	Expect(err).NotTo(HaveOccurred(), "creating the %s namespace", role)
	w.ns[role] = ns
	_, err = workload.Deploy(ctx, w.r.Kube, ns, SamplesOf(role)...)
	Expect(err).NotTo(HaveOccurred(), "deploying %v into %s", SamplesOf(role), ns)
}

// strict applies seed 001's namespace-wide STRICT policy in role's namespace.
func (w *world) strict(ctx context.Context, role Role) {
	GinkgoHelper()
	pa := policy.PeerAuthentication(w.ns[role], "namespace-policy", policy.Mode(policy.MTLSStrict))
	Expect(policy.NewApplier(w.r.Istio, w.r.State.RunID).Apply(ctx, pa)).To(Succeed(), "applying STRICT in %s", w.ns[role])
}

// noDataPlane says the run has no data plane (DATAPLANE=0): injected pods are admitted, never
// run, so only the injected-spec specs are judged.
func (w *world) noDataPlane() bool { return w.r.State.Settings.NoDataPlane }

func (w *world) waitReady(ctx context.Context, roles ...Role) {
	GinkgoHelper()
	mode, what := workload.ProxyAuto, "their proxies"
	if w.noDataPlane() {
		mode, what = workload.ProxyAdmitted, "their injected specs (DATAPLANE=0: nothing runs a proxy)"
	}
	By(fmt.Sprintf("waiting for the workloads of %v and %s", roles, what))
	for _, role := range roles {
		for _, s := range SamplesOf(role) {
			ref, err := RefOf(s)
			Expect(err).NotTo(HaveOccurred())
			err = workload.WaitReady(ctx, w.r.Kube, w.ns[role], ref.Selector(),
				workload.Consecutive(w.r.Expect.Consecutive), workload.Timeout(readyTimeout), workload.Proxy(mode))
			Expect(err).NotTo(HaveOccurred(), "%s in %s is not ready", s, w.ns[role])
		}
	}
}

func (w *world) pod(ctx context.Context, role Role, ref Ref) *corev1.Pod {
	GinkgoHelper()
	podFor := workload.PodFor
	if w.noDataPlane() {
		podFor = workload.AdmittedPodFor
	}
	p, err := podFor(ctx, w.r.Kube, w.ns[role], ref.App)
	Expect(err).NotTo(HaveOccurred())
	return p
}

func (w *world) plainClient(ctx context.Context) *corev1.Pod {
	GinkgoHelper()
	return w.pod(ctx, Client, w.plain)
}

func (w *world) url(role Role) string { return w.refs[role].URL(w.ns[role], "") }

// fromProxies: on FROM, the mesh client and the server were injected with FROM's proxy. It
// returns the client.
func (w *world) fromProxies(ctx context.Context) *corev1.Pod {
	GinkgoHelper()
	client := w.pod(ctx, Client, w.refs[Client])
	w.expectProxy("MTLS-004", "mesh client", client, suiteEnv.From)
	w.expectProxy("MTLS-004", "server", w.pod(ctx, Server, w.refs[Server]), suiteEnv.From)
	return client
}

// inPlaceProxies: after the in-place upgrade, the mesh client is the pod phase before recorded,
// still with FROM's proxy, and the server deployed since has TO's. It returns the client.
func (w *world) inPlaceProxies(ctx context.Context) *corev1.Pod {
	GinkgoHelper()
	client := w.pod(ctx, Client, w.refs[Client])
	rec, err := Recorded(ctx, w.r.Kube, w.ns[Client], w.refs[Client].App)
	Expect(err).NotTo(HaveOccurred())
	Expect(string(client.UID)).To(Equal(rec.UID),
		"the mesh client was replaced since phase before (pod %s then, %s now): the skew check needs the pod that kept FROM's proxy", rec.Pod, client.Name)
	w.expectProxy("MTLS-004", "old mesh client", client, suiteEnv.From)
	w.expectProxy("MTLS-004", "new server", w.pod(ctx, NewServer, w.refs[NewServer]), suiteEnv.To)
	return client
}

// canaryProxy: after the move, the client's namespace is labelled for the canary revision
// alone, and its pod is a new one, injected by the canary with TO's proxy.
func (w *world) canaryProxy(ctx context.Context, moved *corev1.Pod, before Record) {
	GinkgoHelper()
	rev := w.r.State.Istio.Revision
	Expect(string(moved.UID)).NotTo(Equal(before.UID), "the client pod is still %s from phase before: the restart did not replace it", before.Pod)
	w.expectProxy("MTLS-004", "moved mesh client", moved, suiteEnv.To)
	got, from := InjectedRevision(moved)
	AddReportEntry(report.EntryEvidence, report.Evidence{Fields: map[string]string{"moved client injected by": got + " (" + from + ")"}}.For("MTLS-004"), ReportEntryVisibilityFailureOrVerbose)
	Expect(got).To(Equal(rev), "pod %s/%s was injected by revision %q (%s), want the canary %q", moved.Namespace, moved.Name, got, from, rev)
	ns, err := w.r.Kube.CoreV1().Namespaces().Get(ctx, w.ns[Client], metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(ns.Labels).To(HaveKeyWithValue(istionames.RevisionLabel, rev))
	Expect(ns.Labels).NotTo(HaveKey(istionames.InjectionLabel))
}

// expectProxy asserts a pod's istio-proxy image is Istio version, and records what it saw.
func (w *world) expectProxy(id, what string, pod *corev1.Pod, version string) {
	GinkgoHelper()
	p, err := ProxyOf(pod)
	AddReportEntry(report.EntryEvidence, report.Evidence{Fields: map[string]string{
		what + " proxy": fmt.Sprintf("%s in pod %s/%s", p, pod.Namespace, pod.Name)}}.For(id), ReportEntryVisibilityFailureOrVerbose)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.Is(version)).To(BeTrue(), "%s %s/%s runs %s, want Istio %s", what, pod.Namespace, pod.Name, p, version)
}

// converge runs curl from a pod until it converges on e, records the outcome in the report and
// fails with the full evidence when it does not.
func (w *world) converge(ctx context.Context, id, name string, from *corev1.Pod, container, url string, e catalog.Expectation) {
	GinkgoHelper()
	By(fmt.Sprintf("%s: %s expects %s", id, name, e.Name))
	ex, err := probe.NewPodExecutor(w.r.Config, from.Namespace, from.Name, container)
	Expect(err).NotTo(HaveOccurred())
	req := probe.HTTPRequest{URL: url, Timeout: requestTimeout}
	res, err := expect.Converge(ctx, w.r.Expect, w.r.Mode, e, func(ctx context.Context) (probe.Outcome, error) {
		return probe.Curl(ctx, ex, req)
	})
	// One recording path with the other suites: a probe that did not converge is recorded
	// with its last observation, history and verdict, never as an empty result.
	record.Convergence(id, e.Name, res, err)
	if err != nil {
		Fail(fmt.Sprintf("%s: %s: %v", id, name, err))
	}
}

func (w *world) dumpOnFailure() {
	rep := CurrentSpecReport()
	if !rep.Failed() || w.r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), diagTimeout)
	defer cancel()
	dir := filepath.Join(w.r.ReportsDir, "diag", diag.Slug(rep.FullText()))
	sum, err := diag.Dump(ctx, diag.DumpOptions{Kube: w.r.Kube, Istio: w.r.Istio, RestConfig: w.r.Config,
		Namespaces: w.ns.Names(), IstioNamespace: w.r.State.Istio.Namespace, Dir: dir,
		ReportsDir: w.r.ReportsDir, ProxyExec: diag.PodExec(w.r.Config)})
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "diagnostics incomplete: %v\n", err)
	}
	AddReportEntry("diagnostics", sum.String())
}
