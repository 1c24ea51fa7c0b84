package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meshconform/framework/diag"
	"meshconform/framework/gatewayapi"
	"meshconform/framework/ownership"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/record"
)

// Timeouts of the steps a spec waits on besides probes (which use Run.Expect).
const (
	readyTimeout   = 5 * time.Minute
	requestTimeout = 10 * time.Second
	cleanupTimeout = 3 * time.Minute
	diagTimeout    = 2 * time.Minute
)

// Scenario is one spec's world: its namespaces and deployed samples.
type Scenario struct {
	Run     *Run
	Env     cases.Env
	Handles map[cases.Role]map[workload.Sample]workload.Handle
	applier *policy.Applier
	// waypointServices is set once PutWaypoint put a waypoint in the server's path: Apply
	// then attaches policies to it (WaypointObjects).
	waypointServices map[string]map[string]string
}

// Setup creates the case's namespaces and workloads, waits until they (and their proxies)
// are ready, and registers the cleanup and the failure diagnostics. Call it inside an It.
func Setup(ctx context.Context, r *Run, id string, nss []cases.Namespace) *Scenario {
	GinkgoHelper()
	defer record.Timed(record.Setup)()
	s := &Scenario{Run: r, Handles: map[cases.Role]map[workload.Sample]workload.Handle{},
		applier: policy.NewApplier(r.Istio, r.State.RunID)}
	s.Env = cases.Env{Namespaces: map[cases.Role]string{}, TrustDomain: r.State.Istio.TrustDomain,
		RootNamespace: r.State.Istio.RootNamespace, Gateway: r.Gateway}
	var created []string
	DeferCleanup(func() {
		defer record.Timed(record.Teardown)()
		ctx, cancel := context.WithTimeout(record.Metered(context.Background()), cleanupTimeout)
		defer cancel()
		// Deleted, not waited for: the suite waits once for every spec's namespaces at its end
		// (awaitNamespaces), while here the next spec can start.
		if err := workload.StartDeletion(ctx, r.Kube, created...); err != nil {
			fmt.Fprintf(GinkgoWriter, "cleanup: %v\n", err)
		}
	})
	// Registered after the namespace cleanup, so it runs first (LIFO), while they exist.
	DeferCleanup(func() { s.dumpOnFailure() })

	for _, n := range nss {
		inj := r.DataPlane.Injection(n.Meshed, r.State.Istio.Revision)
		ns, err := workload.Namespace(ctx, r.Kube, workload.NamespaceSpec{
			Prefix: strings.ToLower(id) + "-" + string(n.Role), RunID: r.State.RunID, Injection: inj})
		must(err, "creating the %s namespace", n.Role)
		created = append(created, ns)
		s.Env.Namespaces[n.Role] = ns
	}
	if s.Env.Gateway.GatewayAPI() {
		// Gateway-API ingress: the spec's own Gateway, in its server namespace.
		s.Env.Gateway.Namespace = s.Env.Namespaces[cases.Server]
	}
	for _, n := range nss {
		if len(n.Samples) > 0 {
			s.Deploy(ctx, n.Role, n.Samples...)
		}
	}
	return s
}

// Deploy deploys samples into role's namespace and waits until they and their proxies are
// ready (N observations in a row). On a run without a data plane (DATAPLANE=0) it waits
// until the pods are admitted with the proxy where it belongs (workload.ProxyAdmitted): the
// specs that then run read what the injector wrote, not traffic.
func (s *Scenario) Deploy(ctx context.Context, role cases.Role, samples ...workload.Sample) []workload.Handle {
	GinkgoHelper()
	defer record.Timed(record.Setup)()
	hs := s.DeployNoWait(ctx, role, samples...)
	what := "their proxies"
	if s.Run.State.Settings.NoDataPlane {
		what = "their injected specs (DATAPLANE=0: nothing runs a proxy)"
	}
	By(fmt.Sprintf("waiting for %v and %s", samples, what))
	for _, h := range hs {
		err := workload.WaitReady(ctx, s.Run.Kube, h.Namespace, h.Selector,
			workload.Consecutive(s.Run.Expect.Consecutive), workload.Timeout(readyTimeout), workload.Proxy(s.Run.DataPlane.Readiness()))
		must(err, "%s in %s is not ready", h.Sample, h.Namespace)
	}
	return hs
}

// DeployNoWait deploys samples into role's namespace without waiting (for pods that are
// expected never to become ready).
func (s *Scenario) DeployNoWait(ctx context.Context, role cases.Role, samples ...workload.Sample) []workload.Handle {
	GinkgoHelper()
	defer record.Timed(record.Setup)()
	ns := s.Env.NS(role)
	hs, err := workload.DeployWith(ctx, s.Run.Kube, ns, workload.DeployOptions{AgentImage: s.Run.State.Settings.AgentImage, EchoImage: s.Run.State.Settings.EchoImage}, samples...)
	must(err, "deploying %v into %s", samples, ns)
	if s.Handles[role] == nil {
		s.Handles[role] = map[workload.Sample]workload.Handle{}
	}
	for _, h := range hs {
		s.Handles[role][h.Sample] = h
	}
	return hs
}

// Namespaces the scenario created, for diagnostics.
func (s *Scenario) Namespaces() []string {
	var out []string
	for _, ns := range s.Env.Namespaces {
		out = append(out, ns)
	}
	return out
}

func (s *Scenario) dumpOnFailure() {
	rep := CurrentSpecReport()
	if !rep.Failed() {
		return
	}
	defer record.Timed(record.Diagnostics)()
	ctx, cancel := context.WithTimeout(record.Metered(context.Background()), diagTimeout)
	defer cancel()
	dir := filepath.Join(s.Run.ReportsDir, "diag", diag.Slug(rep.FullText()))
	sum, err := diag.Dump(ctx, diag.DumpOptions{Kube: s.Run.Kube, Istio: s.Run.Istio, RestConfig: s.Run.Config,
		Namespaces: s.Namespaces(), IstioNamespace: s.Run.State.Istio.Namespace, Dir: dir,
		ReportsDir: s.Run.ReportsDir, ProxyExec: diag.PodExec(s.Run.Config)})
	if err != nil {
		fmt.Fprintf(GinkgoWriter, "diagnostics incomplete: %v\n", err)
	}
	AddReportEntry("diagnostics", sum.String())
}

// Apply applies objects and registers their deletion; objects in a case's own namespaces go
// with the namespace, so only the others (the root namespace) need it. A Gateway API Gateway
// among them (INGRESS_API=gateway-api) is then awaited until istiod has programmed it and
// accepted the HTTPRoutes applied with it (gatewayapi.AwaitIngress).
func (s *Scenario) Apply(ctx context.Context, objs []policy.Object) {
	GinkgoHelper()
	if s.waypointServices != nil {
		var err error
		objs, err = WaypointObjects(s.Env, s.waypointServices, objs)
		must(err, "attaching the spec's policies to the waypoint")
	}
	var gateways []*unstructured.Unstructured
	routes := map[string][]string{} // namespace -> HTTPRoutes applied there
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GroupVersionKind().Group == gatewayapi.Group {
			must(s.applyGatewayAPI(ctx, u), "applying %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
			switch u.GetKind() {
			case "Gateway":
				gateways = append(gateways, u)
			case "HTTPRoute":
				routes[u.GetNamespace()] = append(routes[u.GetNamespace()], u.GetName())
			}
			continue
		}
		must(s.applier.Apply(ctx, o), "applying %s %s/%s", kindOf(o), o.GetNamespace(), o.GetName())
	}
	for _, gw := range gateways {
		By(fmt.Sprintf("waiting for Gateway %s/%s Programmed and its HTTPRoutes %v accepted", gw.GetNamespace(), gw.GetName(), routes[gw.GetNamespace()]))
		must(gatewayapi.AwaitIngress(ctx, wait.Config{Timeout: readyTimeout}, s.Run.Dynamic, gw.GetNamespace(), gw.GetName(), routes[gw.GetNamespace()]),
			"the Gateway-API ingress of INGRESS_API=gateway-api")
	}
}

// applyGatewayAPI server-side applies a Gateway API object, labelled as the run's.
func (s *Scenario) applyGatewayAPI(ctx context.Context, u *unstructured.Unstructured) error {
	u.SetLabels(ownership.Stamp(u.GetLabels(), s.Run.State.RunID))
	_, err := s.Run.Dynamic.Resource(gatewayAPIResource(u)).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u,
		metav1.ApplyOptions{FieldManager: "meshconform", Force: true})
	return err
}

func gatewayAPIResource(u *unstructured.Unstructured) schema.GroupVersionResource {
	gvk := u.GroupVersionKind()
	return gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind) + "s") // gateways, httproutes
}

// Delete deletes objects.
func (s *Scenario) Delete(ctx context.Context, objs []policy.Object) {
	GinkgoHelper()
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GroupVersionKind().Group == gatewayapi.Group {
			err := s.Run.Dynamic.Resource(gatewayAPIResource(u)).Namespace(u.GetNamespace()).Delete(ctx, u.GetName(), metav1.DeleteOptions{})
			must(err, "deleting %s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
			continue
		}
		must(s.applier.Delete(ctx, o), "deleting %s %s/%s", kindOf(o), o.GetNamespace(), o.GetName())
	}
}

// Pod is a ready pod of sample in role's namespace.
func (s *Scenario) Pod(ctx context.Context, role cases.Role, sample workload.Sample) (*corev1.Pod, workload.Handle) {
	GinkgoHelper()
	h, ok := s.Handles[role][sample]
	if !ok {
		Fail(fmt.Sprintf("case did not deploy %s in role %s", sample, role))
	}
	pod, err := s.Run.DataPlane.Pod(ctx, s.Run.Kube, h.Namespace, h.App)
	must(err, "finding a pod of %s", sample)
	return pod, h
}

// Executor runs commands in src's pod and container.
func (s *Scenario) Executor(ctx context.Context, src cases.Source) probe.Executor {
	GinkgoHelper()
	pod, h := s.Pod(ctx, src.Role, src.Sample)
	container := h.Container
	if src.Proxy {
		name, err := s.Run.DataPlane.ProxyContainer(pod)
		must(err, "probing from the proxy of %s", src.Sample)
		container = name
	}
	ex, err := probe.NewPodExecutor(s.Run.Config, pod.Namespace, pod.Name, container)
	must(err, "exec into %s/%s", pod.Namespace, pod.Name)
	return ex
}

// Request builds the curl request of a probe.
func (s *Scenario) Request(p cases.Probe) probe.HTTPRequest {
	GinkgoHelper()
	req := probe.HTTPRequest{Method: p.Method, Timeout: requestTimeout, CaptureHeaders: p.CaptureHeaders}
	if p.To.RawPath {
		req.ExtraArgs = append(req.ExtraArgs, "--path-as-is")
	}
	if p.Headers != nil {
		req.Headers = p.Headers(s.Env)
	}
	if p.To.ViaGateway {
		gw := s.Env.Gateway
		if gw.Service == "" {
			// Validate refuses a gateway probe without Requires.IngressGateway, and the runner
			// leaves such a behaviour out when the run has no gateway: this is a bug.
			Fail(fmt.Sprintf("probe %q goes through the ingress gateway, and the run has none: %v", p.Name, s.Run.GatewayErr))
		}
		if p.To.HTTPS {
			// The URL names the host, so that curl sends it as SNI and checks the certificate
			// against it; --connect-to sends the connection to the gateway's Service.
			req.URL = fmt.Sprintf("https://%s:%d%s", p.To.Host, gw.HTTPSPort, p.To.Path)
			req.ExtraArgs = append(req.ExtraArgs, "--connect-to", fmt.Sprintf("%s:%d:%s.%s:%d", p.To.Host, gw.HTTPSPort, gw.Service, gw.Namespace, gw.HTTPSPort))
			if p.CACert != nil {
				req.CACert = p.CACert(s.Env)
			}
			return req
		}
		req.URL = fmt.Sprintf("http://%s.%s:%d%s", gw.Service, gw.Namespace, gw.Port, p.To.Path)
		if req.Headers == nil {
			req.Headers = map[string]string{}
		}
		req.Headers["Host"] = p.To.Host
		return req
	}
	h, ok := s.Handles[p.To.Role][p.To.Sample]
	if !ok || h.Service == "" {
		Fail(fmt.Sprintf("probe %q targets %s in role %s, which has no Service in this case", p.Name, p.To.Sample, p.To.Role))
	}
	port := p.To.Port
	if port == 0 {
		port = h.Ports[0]
	}
	req.URL = fmt.Sprintf("http://%s:%d%s", h.Host(), port, p.To.Path)
	return req
}

// GRPCRequest builds the echo-client call of a probe: through the client pod's xDS bootstrap
// (xds:///<svc>.<ns>.svc.cluster.local:<port>, istiod's listeners, clusters and TLS) from a
// proxyless client, plain gRPC (grpc://) from the uninjected one (workload.EchoPlain).
func (s *Scenario) GRPCRequest(p cases.Probe) probe.GRPCRequest {
	GinkgoHelper()
	h, ok := s.Handles[p.To.Role][p.To.Sample]
	if !ok || h.Service == "" {
		Fail(fmt.Sprintf("probe %q targets %s in role %s, which has no Service in this case", p.Name, p.To.Sample, p.To.Role))
	}
	port := p.To.Port
	if port == 0 {
		port = h.Ports[0]
	}
	req := probe.GRPCRequest{Timeout: requestTimeout}
	if p.Headers != nil {
		req.Headers = p.Headers(s.Env)
	}
	scheme := "xds:///"
	if p.From.Sample == workload.EchoPlain {
		scheme = "grpc://"
	}
	req.URL = fmt.Sprintf("%s%s:%d", scheme, s.Env.FQDN(p.To.Role, h.Service), port)
	return req
}

// ProtectRootNamespace snapshots the root namespace's policies and restores them after the
// spec, whatever happened.
func (s *Scenario) ProtectRootNamespace(ctx context.Context) {
	GinkgoHelper()
	snap, err := s.applier.Snapshot(ctx, s.Env.RootNamespace)
	must(err, "snapshot of %s's policies", s.Env.RootNamespace)
	DeferCleanup(func() {
		defer record.Timed(record.Teardown)()
		ctx, cancel := context.WithTimeout(record.Metered(context.Background()), cleanupTimeout)
		defer cancel()
		rep, err := s.applier.Restore(ctx, snap)
		if err != nil {
			Fail(fmt.Sprintf("restoring %s's policies: %v (%+v)", s.Env.RootNamespace, err, rep))
		}
	})
}

func kindOf(o policy.Object) string { return o.GetObjectKind().GroupVersionKind().Kind }

func must(err error, format string, args ...any) {
	GinkgoHelper()
	if err != nil {
		Fail(fmt.Sprintf(format, args...) + ": " + err.Error())
	}
}
