package behaviors

import (
	. "github.com/onsi/ginkgo/v2"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// KubeAppProbersEnv is the istio-proxy environment variable holding the original probers,
// JSON keyed by the rewritten path.
const KubeAppProbersEnv = "ISTIO_KUBE_APP_PROBERS"

// ProberPaths are the paths the injector rewrites a container's readiness and liveness
// probes to (pilot-agent's status.FormatProberURL).
func ProberPaths(container string) (readyz, livez string) {
	return istionames.AppHealthPathPrefix + container + "/readyz", istionames.AppHealthPathPrefix + container + "/livez"
}

// AppProber is one original prober as the injector records it in KubeAppProbersEnv.
type AppProber struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

func (p AppProber) String() string {
	switch {
	case p.HTTPGet != nil:
		return fmt.Sprintf("httpGet %s on port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.TCPSocket != nil:
		return "tcpSocket on port " + p.TCPSocket.Port.String()
	case p.GRPC != nil:
		return fmt.Sprintf("grpc on port %d", p.GRPC.Port)
	}
	return "no action"
}

// AppProbers reads KubeAppProbersEnv from the pod's istio-proxy container (a regular
// container, or a native sidecar). ok is false when the pod has no proxy; an absent or
// empty variable is an empty map.
func AppProbers(pod *corev1.Pod) (probers map[string]AppProber, ok bool, err error) {
	proxy := findContainer(pod, istionames.ProxyContainerName)
	if _, _, injected := probe.ProxyContainer(pod); !injected || proxy == nil {
		return nil, false, nil
	}
	probers = map[string]AppProber{}
	for _, e := range proxy.Env {
		if e.Name != KubeAppProbersEnv || strings.TrimSpace(e.Value) == "" {
			continue
		}
		if err := json.Unmarshal([]byte(e.Value), &probers); err != nil {
			return nil, true, fmt.Errorf("%s of %s is not the injector's JSON: %w (value %q)", KubeAppProbersEnv, istionames.ProxyContainerName, err, clip(e.Value, 300))
		}
	}
	return probers, true, nil
}

// RewriteOption tunes CheckProbeRewritten.
type RewriteOption func(*rewriteConfig)

type rewriteConfig struct{ original *corev1.Container }

// WantOriginal compares the recorded probers with the container as written before
// injection (from the sample's manifest): same path and port (named ports resolved).
func WantOriginal(c corev1.Container) RewriteOption {
	return func(rc *rewriteConfig) { rc.original = c.DeepCopy() }
}

// CheckProbeRewritten is PROBE-001's and PROBE-004's spec half: in the injected pod, container's readiness
// probe is an httpGet of /app-health/<container>/readyz on the status port (15020, or the
// pod's status.sidecar.istio.io/port), its liveness probe (when it has one)
// /app-health/<container>/livez, and istio-proxy's ISTIO_KUBE_APP_PROBERS holds the
// original probers under those paths (with WantOriginal: the manifest's own, httpGet or
// tcpSocket, with named ports resolved).
func CheckProbeRewritten(pod *corev1.Pod, container string, opts ...RewriteOption) error {
	var cfg rewriteConfig
	for _, o := range opts {
		o(&cfg)
	}
	c, probers, err := injectedContainer(pod, container)
	if err != nil {
		return err
	}
	port, err := statusPort(pod)
	if err != nil {
		return err
	}
	readyz, livez := ProberPaths(container)
	var problems []string
	kinds := []struct {
		kind     string
		path     string
		got      *corev1.Probe
		original *corev1.Probe
		required bool
	}{
		{"readiness", readyz, c.ReadinessProbe, originalProbe(cfg.original, true), true},
		{"liveness", livez, c.LivenessProbe, originalProbe(cfg.original, false), cfg.original != nil && cfg.original.LivenessProbe != nil},
	}
	for _, k := range kinds {
		if k.got == nil {
			if k.required {
				problems = append(problems, fmt.Sprintf("container %s has no %s probe", container, k.kind))
			}
			continue
		}
		if h := k.got.HTTPGet; h == nil || h.Path != k.path || h.Port != intstr.FromInt32(port) {
			problems = append(problems, fmt.Sprintf("%s probe is %s, want httpGet %s on port %d", k.kind, describeProbe(k.got), k.path, port))
		}
		rec, found := probers[k.path]
		if !found {
			problems = append(problems, fmt.Sprintf("%s has no %q entry for the original %s probe (keys: %s)",
				KubeAppProbersEnv, k.path, k.kind, keys(probers)))
			continue
		}
		if rec.HTTPGet == nil && rec.TCPSocket == nil && rec.GRPC == nil {
			problems = append(problems, fmt.Sprintf("%s[%q] has no probe action", KubeAppProbersEnv, k.path))
			continue
		}
		if rec.HTTPGet != nil && rec.HTTPGet.Port == intstr.FromInt32(port) {
			problems = append(problems, fmt.Sprintf("%s[%q] is %s: the status port itself, not the app's", KubeAppProbersEnv, k.path, rec))
		}
		if k.original != nil {
			if want, ok := resolvedHTTPGet(k.original, cfg.original); ok {
				if rec.HTTPGet == nil || rec.HTTPGet.Path != want.Path || rec.HTTPGet.Port != want.Port {
					problems = append(problems, fmt.Sprintf("%s[%q] is %s, want the original httpGet %s on port %s",
						KubeAppProbersEnv, k.path, rec, want.Path, want.Port.String()))
				}
			}
			// A TCP probe is rewritten too (app_probe.go convertAppProberTCPSocket): the
			// agent then dials the original port (PROBE-004).
			if want, ok := resolvedTCPPort(k.original, cfg.original); ok {
				if rec.TCPSocket == nil || rec.TCPSocket.Port != want {
					problems = append(problems, fmt.Sprintf("%s[%q] is %s, want the original tcpSocket on port %s",
						KubeAppProbersEnv, k.path, rec, want.String()))
				}
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the injector did not rewrite container %s's probes in pod %s/%s: %s%s",
			container, pod.Namespace, pod.Name, strings.Join(problems, "; "), rewriteHint(pod))
	}
	return nil
}

// CheckNotRewritten is PROBE-002's spec half: with the rewrite off, the pod is injected but
// container's probes still point at the app (not /app-health/ on the status port) and
// ISTIO_KUBE_APP_PROBERS has no entry for the container.
func CheckNotRewritten(pod *corev1.Pod, container string) error {
	c, probers, err := injectedContainer(pod, container)
	if err != nil {
		return err
	}
	port, err := statusPort(pod)
	if err != nil {
		return err
	}
	var problems []string
	if c.ReadinessProbe == nil {
		problems = append(problems, fmt.Sprintf("container %s has no readiness probe", container))
	}
	for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if strings.HasPrefix(p.HTTPGet.Path, istionames.AppHealthPathPrefix) || p.HTTPGet.Port == intstr.FromInt32(port) {
			problems = append(problems, fmt.Sprintf("%s probe is %s: rewritten to the proxy", kind, describeProbe(p)))
		}
	}
	prefix := istionames.AppHealthPathPrefix + container + "/"
	for k := range probers {
		if strings.HasPrefix(k, prefix) {
			problems = append(problems, fmt.Sprintf("%s has an entry %q", KubeAppProbersEnv, k))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("PROBE-002: container %s's probes in pod %s/%s were rewritten although %s=%q: %s",
			container, pod.Namespace, pod.Name, istionames.RewriteAppHTTPProbersAnnotation, pod.Annotations[istionames.RewriteAppHTTPProbersAnnotation], strings.Join(problems, "; "))
	}
	return nil
}

func injectedContainer(pod *corev1.Pod, container string) (*corev1.Container, map[string]AppProber, error) {
	if pod == nil {
		return nil, nil, errors.New("nil pod")
	}
	probers, injected, err := AppProbers(pod)
	if err != nil {
		return nil, nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if !injected {
		return nil, nil, fmt.Errorf("pod %s/%s has no %s container (nor native sidecar): it was not injected, so its probes say nothing about the mesh; label the namespace for injection",
			pod.Namespace, pod.Name, istionames.ProxyContainerName)
	}
	c := findContainer(pod, container)
	if c == nil {
		return nil, nil, fmt.Errorf("pod %s/%s has no container %s (containers: %s)", pod.Namespace, pod.Name, container, containerNames(pod))
	}
	return c, probers, nil
}

func statusPort(pod *corev1.Pod) (int32, error) {
	v, ok := pod.Annotations[istionames.StatusPortAnnotation]
	if !ok {
		return istionames.StatusPort, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("pod %s/%s: annotation %s=%q is not a port", pod.Namespace, pod.Name, istionames.StatusPortAnnotation, v)
	}
	return int32(n), nil
}

func originalProbe(c *corev1.Container, readiness bool) *corev1.Probe {
	if c == nil {
		return nil
	}
	if readiness {
		return c.ReadinessProbe
	}
	return c.LivenessProbe
}

// resolvedHTTPGet is p's httpGet with a named port turned into the container's number, as
// the injector records it.
func resolvedHTTPGet(p *corev1.Probe, c *corev1.Container) (corev1.HTTPGetAction, bool) {
	if p == nil || p.HTTPGet == nil {
		return corev1.HTTPGetAction{}, false
	}
	h := *p.HTTPGet
	h.Port = resolvePort(h.Port, c)
	return h, true
}

// resolvedTCPPort is p's tcpSocket port with a named port turned into the container's number,
// as the injector records it.
func resolvedTCPPort(p *corev1.Probe, c *corev1.Container) (intstr.IntOrString, bool) {
	if p == nil || p.TCPSocket == nil {
		return intstr.IntOrString{}, false
	}
	return resolvePort(p.TCPSocket.Port, c), true
}

func resolvePort(port intstr.IntOrString, c *corev1.Container) intstr.IntOrString {
	if port.Type == intstr.String && c != nil {
		for _, cp := range c.Ports {
			if cp.Name == port.StrVal {
				return intstr.FromInt32(cp.ContainerPort)
			}
		}
	}
	return port
}

func rewriteHint(pod *corev1.Pod) string {
	if v, ok := pod.Annotations[istionames.RewriteAppHTTPProbersAnnotation]; ok {
		return fmt.Sprintf(" (the pod has %s=%q)", istionames.RewriteAppHTTPProbersAnnotation, v)
	}
	return " (rewrite is on by default; was it turned off in the mesh's injection values, sidecarInjectorWebhook.rewriteAppHTTPProbe?)"
}

func describeProbe(p *corev1.Probe) string {
	switch {
	case p == nil:
		return "none"
	case p.HTTPGet != nil:
		return fmt.Sprintf("httpGet %s on port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.TCPSocket != nil:
		return "tcpSocket on port " + p.TCPSocket.Port.String()
	case p.GRPC != nil:
		return fmt.Sprintf("grpc on port %d", p.GRPC.Port)
	case p.Exec != nil:
		return fmt.Sprintf("exec %q", p.Exec.Command)
	}
	return "no action"
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func containerNames(pod *corev1.Pod) string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func keys(m map[string]AppProber) string {
	if len(m) == 0 {
		return "none"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// SoakReady is PROBE-001's readiness half: for the whole window, every pod matching
// selector in ns stays Ready, with no container restarting and no pod replaced. It polls
// every poll and fails on the first observation that breaks this, naming the pod, what
// changed and when; it passes once an observation at or after the end of the window holds.
// Call it after the pods became Ready (workload.WaitReady): the first observation must hold.
func SoakReady(ctx context.Context, kube kubernetes.Interface, ns, selector string, window, poll time.Duration) error {
	var baseline map[string]map[string]int32 // pod → container → restarts
	err := wait.Throughout(ctx, window, poll, func(ctx context.Context, n int, since time.Duration) error {
		pods, err := listPods(ctx, kube, ns, selector)
		if err != nil {
			return fmt.Errorf("soak of %s in %s, observation %d at +%v: %w", selector, ns, n, since.Round(100*time.Millisecond), err)
		}
		at := fmt.Sprintf("observation %d at +%v of a %v soak", n, since.Round(100*time.Millisecond), window)
		if len(pods) == 0 {
			return fmt.Errorf("soak: no pod matches %s in %s (%s)", selector, ns, at)
		}
		current := map[string]map[string]int32{}
		for i := range pods {
			p := &pods[i]
			current[p.Name] = restartCounts(p)
			if p.DeletionTimestamp != nil {
				return fmt.Errorf("soak: pod %s is being deleted (%s)\n%s", p.Name, at, workload.DescribePod(p))
			}
			if !podReady(p) {
				return fmt.Errorf("soak: pod %s is not Ready (%s)\n%s", p.Name, at, workload.DescribePod(p))
			}
			if baseline == nil {
				continue
			}
			before, known := baseline[p.Name]
			if !known {
				return fmt.Errorf("soak: pod %s appeared during the soak (a replaced pod?) (%s)\n%s", p.Name, at, workload.DescribePod(p))
			}
			for c, r := range current[p.Name] {
				if r > before[c] {
					return fmt.Errorf("soak: container %s of pod %s restarted (restarts %d → %d) (%s)\n%s", c, p.Name, before[c], r, at, workload.DescribePod(p))
				}
			}
		}
		if baseline == nil {
			baseline = current
			return nil
		}
		for name := range baseline {
			if _, ok := current[name]; !ok {
				return fmt.Errorf("soak: pod %s disappeared during the soak (%s)", name, at)
			}
		}
		return nil
	})
	var in *wait.Interrupted
	if errors.As(err, &in) {
		return fmt.Errorf("soak of %s in %s interrupted after %v of %v (%d observations, all Ready): %w", selector, ns, in.After.Round(100*time.Millisecond), window, in.Observations, in.Err)
	}
	return err
}

// NeverReady is PROBE-002's readiness half: for the whole window, no pod matching selector
// in ns is Ready. A pod whose containers never ran proves nothing about probes (an image
// that cannot be pulled is never Ready either), so the window must also see every
// matching pod's containers running at least once. Pair it with ReadinessProbeFailed.
func NeverReady(ctx context.Context, kube kubernetes.Interface, ns, selector string, window, poll time.Duration) error {
	ran := map[string]bool{}
	var last []corev1.Pod
	err := wait.Throughout(ctx, window, poll, func(ctx context.Context, n int, since time.Duration) error {
		pods, err := listPods(ctx, kube, ns, selector)
		if err != nil {
			return fmt.Errorf("never-ready of %s in %s, observation %d at +%v: %w", selector, ns, n, since.Round(100*time.Millisecond), err)
		}
		last = pods
		for i := range pods {
			p := &pods[i]
			if podReady(p) {
				return fmt.Errorf("never-ready: pod %s became Ready (observation %d at +%v of a %v window): its readiness probe passed\n%s",
					p.Name, n, since.Round(100*time.Millisecond), window, workload.DescribePod(p))
			}
			if allRunning(p) {
				ran[p.Name] = true
			}
		}
		return nil
	})
	var in *wait.Interrupted
	if errors.As(err, &in) {
		return fmt.Errorf("never-ready of %s in %s interrupted after %v of %v: %w", selector, ns, in.After.Round(100*time.Millisecond), window, in.Err)
	}
	if err != nil {
		return err
	}
	if len(last) == 0 {
		return fmt.Errorf("never-ready: no pod matches %s in %s: an absent pod proves nothing", selector, ns)
	}
	for i := range last {
		if !ran[last[i].Name] {
			return fmt.Errorf("never-ready: pod %s's containers were never all running in the %v window, so its not being Ready says nothing about its probes\n%s",
				last[i].Name, window, workload.DescribePod(&last[i]))
		}
	}
	return nil
}

// ReadinessProbeFailedMessage is how kubelet's Unhealthy event begins.
const ReadinessProbeFailedMessage = "Readiness probe failed"

// ReadinessProbeFailed is PROBE-002's event half: some pod matching selector in ns has an
// event saying its readiness probe failed (kubelet: reason Unhealthy, message "Readiness
// probe failed: …"). It returns the events' messages as evidence. kubelet emits it on the
// first failed probe, so converge it (expect.ConvergeFunc) right after the pod starts.
func ReadinessProbeFailed(ctx context.Context, kube kubernetes.Interface, ns, selector string) ([]string, error) {
	pods, err := listPods(ctx, kube, ns, selector)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no pod matches %s in %s", selector, ns)
	}
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod"})
	if err != nil {
		return nil, fmt.Errorf("listing events in %s: %w", ns, err)
	}
	var found, other []string
	for _, ev := range evs.Items {
		if !names[ev.InvolvedObject.Name] {
			continue
		}
		line := fmt.Sprintf("%s %s %s: %s", ev.InvolvedObject.Name, ev.Type, ev.Reason, strings.TrimSpace(ev.Message))
		if ev.Count > 1 {
			line += fmt.Sprintf(" (×%d)", ev.Count)
		}
		if strings.HasPrefix(strings.TrimSpace(ev.Message), ReadinessProbeFailedMessage) {
			found = append(found, line)
		} else {
			other = append(other, line)
		}
	}
	if len(found) > 0 {
		return found, nil
	}
	msg := fmt.Sprintf("PROBE-002: no event about pods %s in %s says %q", keysOf(names), ns, ReadinessProbeFailedMessage)
	if len(other) > 0 {
		msg += "; their events: " + strings.Join(other, "; ")
	} else {
		msg += "; they have no events"
	}
	return nil, errors.New(msg)
}

func keysOf(m map[string]bool) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func listPods(ctx context.Context, kube kubernetes.Interface, ns, selector string) ([]corev1.Pod, error) {
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing pods %s in %s: %w", selector, ns, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// allRunning: every regular container and every native sidecar is running. A native sidecar
// (an init container with restartPolicy Always, as Istio injects istio-proxy when native
// sidecars are on) reports its state in initContainerStatuses, not containerStatuses.
func allRunning(p *corev1.Pod) bool {
	if len(p.Spec.Containers) == 0 {
		return false
	}
	running := map[string]bool{} // container names are unique across both lists
	for _, st := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		running[st.Name] = st.State.Running != nil
	}
	for _, c := range p.Spec.Containers {
		if !running[c.Name] {
			return false
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !running[c.Name] {
			return false
		}
	}
	return true
}

func restartCounts(p *corev1.Pod) map[string]int32 {
	out := map[string]int32{}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, st := range list {
			out[st.Name] = st.RestartCount
		}
	}
	return out
}

// What the PROBE behaviours share.
const (
	// soak is how long a rewritten pod must stay Ready with no restart: several of the
	// samples' probe periods (2s) and failure thresholds (3), so a failing probe would show.
	soak         = 45 * time.Second
	probePoll    = time.Second
	appContainer = "app"
)

// strictServerNamespace is a meshed namespace with nothing deployed: the PROBE behaviours make
// it STRICT first, so the very first probe already meets mTLS enforcement.
var strictServerNamespace = []cases.Namespace{{Role: cases.Server, Meshed: true}}

func probeFields(pod *corev1.Pod) map[string]string {
	return map[string]string{"pod": pod.Namespace + "/" + pod.Name, "readinessProbe": readinessProbeOf(pod.Spec.Containers, appContainer).String()}
}

func readinessProbeOf(cs []corev1.Container, name string) *corev1.Probe {
	for _, c := range cs {
		if c.Name == name && c.ReadinessProbe != nil {
			return c.ReadinessProbe
		}
	}
	return nil
}

// soakRewritten is the traffic half of a probe-rewrite behaviour (PROBE-001, PROBE-004): in a
// namespace made STRICT first, sample's pod must be rewritten as check says, then stay Ready with
// no restart for the soak window, kubelet's probes going through the agent.
func soakRewritten(ctx context.Context, t *e2e.T, sample workload.Sample, check func(*corev1.Pod) error, ok string) {
	GinkgoHelper()
	t.Apply(ctx, namespaceStrict(t.Env))
	h := t.Deploy(ctx, cases.Server, sample)[0]
	pod, _ := t.Pod(ctx, cases.Server, sample)
	fields := probeFields(pod)
	if err := check(pod); err != nil {
		t.Check(err, "", fields)
	}
	By(fmt.Sprintf("soaking %s: Ready with no restart", soak))
	t.Check(SoakReady(ctx, t.Run.Kube, h.Namespace, h.Selector, soak, probePoll), ok+"; Ready with no restart for "+soak.String(), fields)
}

// injectedRewrite is the half the injector alone decides: sample's admitted pod, in a namespace
// made STRICT first, rewritten as check says. It runs without a data plane too.
func injectedRewrite(ctx context.Context, t *e2e.T, sample workload.Sample, check func(*corev1.Pod) error, ok string) {
	GinkgoHelper()
	t.Apply(ctx, namespaceStrict(t.Env))
	t.Deploy(ctx, cases.Server, sample)
	pod, _ := t.Pod(ctx, cases.Server, sample)
	t.Check(check(pod), ok, probeFields(pod))
}
