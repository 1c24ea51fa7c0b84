package workload

import (
	"context"
	"errors"
	"fmt"
	"meshconform/framework/istionames"
	"meshconform/framework/probe"
	"meshconform/framework/wait"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Defaults of WaitReady. Three in a row, as Istio's own tests and gateway-api's conformance
// converge; the timeout leaves room for a first-start MySQL on a 2-core runner.
const (
	DefaultConsecutive  = 3
	DefaultReadyTimeout = 3 * time.Minute
	DefaultReadyPoll    = 500 * time.Millisecond
)

// ProxyMode says what WaitReady requires of each pod's istio-proxy.
type ProxyMode int

const (
	// ProxyAuto requires a ready proxy exactly where SidecarExpected says the injector adds
	// one, and no proxy elsewhere: a plain client that got a sidecar is not plain.
	ProxyAuto ProxyMode = iota
	// ProxyRequired requires a running, ready proxy in every pod.
	ProxyRequired
	// ProxyForbidden requires that no pod has a proxy.
	ProxyForbidden
	// ProxyIgnored checks pods' readiness only.
	ProxyIgnored
	// ProxyAdmitted requires only that the pods exist with their final spec: a proxy exactly
	// where SidecarExpected says the injector adds one, and none elsewhere. Neither the pods
	// nor their proxies need to run: it is for runs without a data plane (DATAPLANE=0), where
	// no proxy image exists and injected pods never start, but what the injector wrote can
	// still be judged.
	ProxyAdmitted
	// ProxyAmbient is ambient mode's readiness: no pod has a proxy container (ambient pods
	// keep their spec), and a pod is enrolled exactly where AmbientExpected says the CNI node
	// agent takes it: it then carries ambient.istio.io/redirection=enabled, written once its
	// traffic is redirected and ztunnel acknowledged it (cni/pkg/util/podutil.go:70-75
	// PodFullyEnrolled). A pod that should stay out (a plain client, label
	// istio.io/dataplane-mode=none) must carry no redirection annotation: it is not plain
	// otherwise.
	ProxyAmbient
)

type waitConfig struct {
	consecutive   int
	timeout, poll time.Duration
	proxy         ProxyMode
	bare          bool
}

// WaitOption tunes WaitReady.
type WaitOption func(*waitConfig)

// Consecutive sets how many ready observations in a row count as ready (default 3).
func Consecutive(n int) WaitOption { return func(c *waitConfig) { c.consecutive = max(n, 1) } }

// Timeout bounds the wait (default 3m); ctx's own deadline still applies.
func Timeout(d time.Duration) WaitOption { return func(c *waitConfig) { c.timeout = d } }

// Poll sets the interval between observations (default 500ms).
func Poll(d time.Duration) WaitOption { return func(c *waitConfig) { c.poll = d } }

// BarePods waits for pods no Deployment makes (a pod created by hand): that no Deployment's
// template matches the selector is then no reason to wait; the pods must still be ready.
func BarePods() WaitOption { return func(c *waitConfig) { c.bare = true } }

// Proxy sets what is required of the pods' istio-proxy (default ProxyAuto).
func Proxy(m ProxyMode) WaitOption { return func(c *waitConfig) { c.proxy = m } }

// WaitReady waits until the pods that selector selects in ns are ready, as seen in
// Consecutive observations in a row: every Deployment whose pod template the selector matches
// is available with its replicas updated, there is at least one pod, every pod not being
// deleted is Running and Ready, and (ProxyAuto) every pod that should have a sidecar has an
// istio-proxy that is running and ready, found in containers or among native-sidecar init
// containers. On timeout the error describes each pod and Deployment and the namespace's
// recent warning events.
func WaitReady(ctx context.Context, kube kubernetes.Interface, ns, selector string, opts ...WaitOption) error {
	cfg := waitConfig{consecutive: DefaultConsecutive, timeout: DefaultReadyTimeout, poll: DefaultReadyPoll, proxy: ProxyAuto}
	for _, o := range opts {
		o(&cfg)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return fmt.Errorf("workload: wait ready in %s: selector %q: %w", ns, selector, err)
	}
	if sel.Empty() {
		return fmt.Errorf("workload: wait ready in %s: empty selector would select every pod; pass a Handle's Selector", ns)
	}
	// An API error says nothing about the pods: it breaks the streak only. One in the last
	// poll interval is most likely the deadline itself (or the client's rate limiter refusing
	// to wait past it): not worth reporting.
	wcfg := wait.Config{Timeout: cfg.timeout, Poll: cfg.poll, Consecutive: cfg.consecutive, IgnoreLateErrors: true}
	if err := wcfg.Validate(); err != nil {
		return fmt.Errorf("workload: wait ready in %s: %w", ns, err)
	}
	var (
		nsLabels  map[string]string // read once: two requests per observation, not three
		last      Observation       // the last complete observation: the one worth reporting
		completed int
	)
	res, err := wait.Until(ctx, wcfg, func(ctx context.Context) (Observation, error) {
		if nsLabels == nil {
			nsObj, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				return Observation{}, fmt.Errorf("reading namespace %s: %w", ns, err)
			}
			nsLabels = nsObj.Labels
			if nsLabels == nil {
				nsLabels = map[string]string{}
			}
		}
		o, err := observe(ctx, kube, ns, nsLabels, sel, cfg.proxy)
		if err == nil && cfg.bare {
			o.Reasons = slices.DeleteFunc(o.Reasons, func(r string) bool { return r == noDeployment })
		}
		if err == nil {
			last, completed = o, completed+1
		}
		return o, err
	}, Observation.Ready)
	if err == nil {
		return nil
	}
	return &NotReadyError{
		Namespace: ns, Selector: selector, Waited: res.Elapsed.Round(time.Millisecond), Bound: cfg.timeout,
		Cause: err, Streak: res.Streak, Consecutive: cfg.consecutive,
		Observations: completed, Last: last, LastError: res.Last().Err,
		Events: warningEvents(kube, ns, last.Pods),
	}
}

// Observation is one look at a selector's Deployments and pods, and why they are not ready.
type Observation struct {
	Deployments []appsv1.Deployment
	Pods        []corev1.Pod
	// Reasons is empty when everything observed is ready.
	Reasons []string
}

// Ready reports whether the observation found nothing wrong.
func (o Observation) Ready() bool { return len(o.Reasons) == 0 }

func observe(ctx context.Context, kube kubernetes.Interface, ns string, nsLabels map[string]string, sel labels.Selector, mode ProxyMode) (Observation, error) {
	var o Observation
	deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, fmt.Errorf("listing deployments in %s: %w", ns, err)
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return o, fmt.Errorf("listing pods %s in %s: %w", sel, ns, err)
	}
	for _, d := range deps.Items {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			o.Deployments = append(o.Deployments, d)
		}
	}
	o.Pods = pods.Items
	o.Reasons = Evaluate(nsLabels, o.Deployments, o.Pods, mode)
	return o, nil
}

const noDeployment = "no Deployment's pod template matches the selector (not applied yet?)"

// Evaluate says why the Deployments and pods are not ready; nil means they are. It is pure,
// so that tests can judge pod objects they build.
func Evaluate(nsLabels map[string]string, deps []appsv1.Deployment, pods []corev1.Pod, mode ProxyMode) []string {
	var reasons []string
	if len(deps) == 0 {
		reasons = append(reasons, noDeployment)
	}
	for i := range deps {
		if mode == ProxyAdmitted {
			continue // its pods need not become available
		}
		reasons = append(reasons, deploymentReasons(&deps[i])...)
	}
	active := 0
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue // being replaced; the Deployment's counts cover its successor
		}
		active++
		reasons = append(reasons, podReasons(nsLabels, p, mode)...)
	}
	if active == 0 {
		reasons = append(reasons, "no pod (not scheduled yet, or the ReplicaSet cannot create pods: see events)")
	}
	return reasons
}

func deploymentReasons(d *appsv1.Deployment) []string {
	var rs []string
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	name := "deployment " + d.Name
	if d.Status.ObservedGeneration < d.Generation {
		rs = append(rs, fmt.Sprintf("%s: generation %d not yet observed (observed %d)", name, d.Generation, d.Status.ObservedGeneration))
	}
	if d.Status.UpdatedReplicas < want {
		rs = append(rs, fmt.Sprintf("%s: %d of %d replicas updated", name, d.Status.UpdatedReplicas, want))
	}
	if d.Status.AvailableReplicas < want {
		rs = append(rs, fmt.Sprintf("%s: %d of %d replicas available", name, d.Status.AvailableReplicas, want))
	}
	available := false
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			available = true
		}
	}
	if !available {
		rs = append(rs, fmt.Sprintf("%s: condition Available is not True", name))
	}
	return rs
}

func podReasons(nsLabels map[string]string, p *corev1.Pod, mode ProxyMode) []string {
	var rs []string
	name := "pod " + p.Name
	if mode != ProxyAdmitted { // admitted pods need not run
		if p.Status.Phase != corev1.PodRunning {
			rs = append(rs, fmt.Sprintf("%s: phase %s, not Running%s", name, orUnknown(string(p.Status.Phase)), waitingSummary(p)))
		}
		if !podConditionTrue(p, corev1.PodReady) {
			why := conditionMessage(p, corev1.PodReady)
			if p.Status.Phase == corev1.PodRunning {
				why += waitingSummary(p) // CrashLoopBackOff and the like, which the phase line did not name
			}
			rs = append(rs, fmt.Sprintf("%s: condition Ready is not True%s", name, why))
		}
	}
	proxy, native, has := ProxyContainer(p)
	var want bool
	switch mode {
	case ProxyIgnored:
		return rs
	case ProxyAmbient:
		return append(rs, ambientReasons(nsLabels, p, proxy, has)...)
	case ProxyRequired:
		want = true
	case ProxyForbidden:
		want = false
	default:
		want = SidecarExpected(nsLabels, p.Labels, p.Annotations)
	}
	switch {
	case want && !has:
		rs = append(rs, fmt.Sprintf("%s: no %s container, but the pod should have a sidecar (namespace labels %s, pod %s=%q): "+
			"was istiod's injector webhook up when the pod was created?", name, istionames.ProxyContainerName,
			injectionLabels(nsLabels), istionames.InjectLabel, p.Labels[istionames.InjectLabel]))
	case !want && has:
		rs = append(rs, fmt.Sprintf("%s: has an %s container, but should run without a sidecar (%s=%q label, %q annotation)",
			name, proxy, istionames.InjectLabel, p.Labels[istionames.InjectLabel], p.Annotations[istionames.InjectLabel]))
	case want && has && mode != ProxyAdmitted:
		st := containerStatus(p, proxy, native)
		switch {
		case st == nil:
			rs = append(rs, fmt.Sprintf("%s: %s has no status yet", name, proxy))
		case st.State.Running == nil:
			rs = append(rs, fmt.Sprintf("%s: %s is not running (%s)", name, proxy, describeState(st.State)))
		case !st.Ready:
			rs = append(rs, fmt.Sprintf("%s: %s is running but not ready (its readiness probe on :15021 fails until istiod pushes config)", name, proxy))
		}
	}
	return rs
}

// ambientReasons says why a pod is not as ambient mode leaves it: a proxy container, a missing
// redirection where the pod is enrolled, or one where it is not.
func ambientReasons(nsLabels map[string]string, p *corev1.Pod, proxy string, hasProxy bool) []string {
	var rs []string
	name := "pod " + p.Name
	if hasProxy {
		rs = append(rs, fmt.Sprintf("%s: has an %s container, and an ambient pod has none (was it injected? namespace labels %s)",
			name, proxy, injectionLabels(nsLabels)))
	}
	got, annotated := p.Annotations[istionames.AmbientRedirectionAnnotation]
	switch want := AmbientExpected(nsLabels, p.Labels); {
	case want && got != istionames.AmbientRedirectionEnabled:
		rs = append(rs, fmt.Sprintf("%s: %s is %q, not %q: Istio's CNI node agent has not redirected it to ztunnel yet (%q: ztunnel has not taken it)",
			name, istionames.AmbientRedirectionAnnotation, got, istionames.AmbientRedirectionEnabled, istionames.AmbientRedirectionPending))
	case !want && annotated:
		rs = append(rs, fmt.Sprintf("%s: %s=%q, but the pod should stay out of the mesh (pod label %s=%q)",
			name, istionames.AmbientRedirectionAnnotation, got, istionames.DataplaneModeLabel, p.Labels[istionames.DataplaneModeLabel]))
	}
	return rs
}

// AmbientExpected reports whether Istio's CNI node agent enrols a pod with these labels in a
// namespace with nsLabels, by the istio-cni chart's default enablement selectors
// (manifests/charts/istio-cni/values.yaml:59-66): the pod labelled
// istio.io/dataplane-mode=ambient, or the namespace labelled so and the pod not labelled
// istio.io/dataplane-mode=none.
func AmbientExpected(nsLabels, podLabels map[string]string) bool {
	switch podLabels[istionames.DataplaneModeLabel] {
	case istionames.DataplaneModeAmbient:
		return true
	case istionames.DataplaneModeNone:
		return false
	}
	return nsLabels[istionames.DataplaneModeLabel] == istionames.DataplaneModeAmbient
}

// ProxyContainer finds Istio's sidecar in a pod, as a container or a native sidecar
// (see probe.ProxyContainer, the one definition of that rule).
func ProxyContainer(p *corev1.Pod) (name string, native, ok bool) { return probe.ProxyContainer(p) }

func containerStatus(p *corev1.Pod, name string, native bool) *corev1.ContainerStatus {
	list := p.Status.ContainerStatuses
	if native {
		list = p.Status.InitContainerStatuses
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func podConditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func conditionMessage(p *corev1.Pod, t corev1.PodConditionType) string {
	for _, c := range p.Status.Conditions {
		if c.Type == t && (c.Reason != "" || c.Message != "") {
			return fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
		}
	}
	return ""
}

// waitingSummary names the waiting reasons (ImagePullBackOff, CrashLoopBackOff, ...) inline.
func waitingSummary(p *corev1.Pod) string {
	var ws []string
	for _, st := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if st.State.Waiting != nil && st.State.Waiting.Reason != "" {
			ws = append(ws, st.Name+": "+st.State.Waiting.Reason)
		}
	}
	if len(ws) == 0 {
		return ""
	}
	return " (" + strings.Join(ws, ", ") + ")"
}

func injectionLabels(l map[string]string) string {
	var parts []string
	for _, k := range []string{istionames.InjectionLabel, istionames.RevisionLabel} {
		if v, ok := l[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

func orUnknown(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// NotReadyError is WaitReady's timeout: the last observation in full.
type NotReadyError struct {
	Namespace, Selector string
	// Waited is how long the wait ran (measured: the last observation can overrun the bound);
	// Bound is the timeout it was given (ctx's own deadline may have come first).
	Waited, Bound       time.Duration
	Cause               error
	Streak, Consecutive int
	// Observations counts the complete observations; Last is the latest of them.
	Observations int
	Last         Observation
	// LastError is an API error that followed Last (nil when Last is the latest word).
	LastError error
	Events    []string
}

func (e *NotReadyError) Unwrap() error { return e.Cause }

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload: %s in namespace %s not ready after %s", e.Selector, e.Namespace, e.Waited)
	if e.Bound > 0 {
		fmt.Fprintf(&b, " of at most %s", e.Bound)
	}
	fmt.Fprintf(&b, " (%v); %d observation(s), the last %d ready in a row of %d needed",
		e.Cause, e.Observations, e.Streak, e.Consecutive)
	if e.Observations == 0 {
		b.WriteString("\nno complete observation: the API server did not answer")
	}
	if e.LastError != nil {
		fmt.Fprintf(&b, "\nthen: %v", e.LastError)
	}
	if len(e.Last.Reasons) > 0 {
		b.WriteString("\nwhy:")
		for _, r := range e.Last.Reasons {
			b.WriteString("\n  - " + r)
		}
	}
	for i := range e.Last.Deployments {
		b.WriteString("\n" + DescribeDeployment(&e.Last.Deployments[i]))
	}
	for i := range e.Last.Pods {
		b.WriteString("\n" + DescribePod(&e.Last.Pods[i]))
	}
	if len(e.Events) > 0 {
		b.WriteString("\nwarning events:")
		for _, ev := range e.Events {
			b.WriteString("\n  " + ev)
		}
	}
	return b.String()
}

// IsNotReady reports whether err is (or wraps) WaitReady's timeout.
func IsNotReady(err error) bool {
	var nr *NotReadyError
	return errors.As(err, &nr)
}

// DescribeDeployment is one Deployment's replica counts and conditions.
func DescribeDeployment(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s: want %d, updated %d, ready %d, available %d, generation %d observed %d",
		d.Name, want, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Generation, d.Status.ObservedGeneration)
	for _, c := range d.Status.Conditions {
		fmt.Fprintf(&b, "\n  condition %s=%s%s", c.Type, c.Status, reasonMessage(c.Reason, c.Message))
	}
	return b.String()
}

// DescribePod is one pod's phase, conditions and every container's state and restarts.
func DescribePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s: phase %s", p.Name, orUnknown(string(p.Status.Phase)))
	if p.Spec.NodeName != "" {
		fmt.Fprintf(&b, " on %s", p.Spec.NodeName)
	}
	if p.DeletionTimestamp != nil {
		b.WriteString(", being deleted")
	}
	if p.Status.Reason != "" || p.Status.Message != "" {
		fmt.Fprintf(&b, " (%s: %s)", p.Status.Reason, p.Status.Message)
	}
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "\n  condition %s=%s%s", c.Type, c.Status, reasonMessage(c.Reason, c.Message))
	}
	describe := func(kind string, specs []corev1.Container, sts []corev1.ContainerStatus) {
		for _, c := range specs {
			var st *corev1.ContainerStatus
			for i := range sts {
				if sts[i].Name == c.Name {
					st = &sts[i]
				}
			}
			if st == nil {
				fmt.Fprintf(&b, "\n  %s %s (%s): no status", kind, c.Name, c.Image)
				continue
			}
			fmt.Fprintf(&b, "\n  %s %s (%s): ready=%t restarts=%d %s", kind, c.Name, c.Image, st.Ready, st.RestartCount, describeState(st.State))
			if t := st.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&b, "; last terminated: %s exit %d%s", t.Reason, t.ExitCode, spaced(t.Message))
			}
		}
	}
	describe("init", p.Spec.InitContainers, p.Status.InitContainerStatuses)
	describe("container", p.Spec.Containers, p.Status.ContainerStatuses)
	return b.String()
}

func describeState(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason + spaced(s.Waiting.Message)
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated: %s exit %d%s", s.Terminated.Reason, s.Terminated.ExitCode, spaced(s.Terminated.Message))
	}
	return "no state"
}

// spaced is " "+s trimmed, or "" for an empty s.
func spaced(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return " " + s
}

// reasonMessage is " Reason: message", leaving out what is empty.
func reasonMessage(reason, msg string) string {
	switch msg = strings.TrimSpace(msg); {
	case reason == "" && msg == "":
		return ""
	case msg == "":
		return " " + reason
	case reason == "":
		return " " + msg
	}
	return " " + reason + ": " + msg
}

// warningEvents returns the namespace's latest Warning events about the pods (and their
// owners), newest last. Best effort: a failure to list is one line of the answer.
func warningEvents(kube kubernetes.Interface, ns string, pods []corev1.Pod) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		return []string{"(listing events: " + err.Error() + ")"}
	}
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
		for _, o := range p.OwnerReferences {
			names[o.Name] = true
		}
	}
	var evs []corev1.Event
	for _, ev := range list.Items {
		if len(pods) == 0 || names[ev.InvolvedObject.Name] {
			evs = append(evs, ev)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).Before(eventTime(&evs[j])) })
	const keep = 15
	if len(evs) > keep {
		evs = evs[len(evs)-keep:]
	}
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s/%s %s (x%d): %s", eventTime(&ev).UTC().Format(time.RFC3339),
			ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, max(ev.Count, 1), strings.TrimSpace(ev.Message)))
	}
	return out
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}
