package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/wait"
	"meshconform/framework/workload"
)

// RestartedAtAnnotation is the pod-template annotation `kubectl rollout restart` sets: a
// changed template makes the Deployment roll its pods, which the injector then re-injects.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// MoveToRevision relabels a namespace for injection by revision rev, as Istio's canary
// upgrade docs do: istio-injection removed (it would win over istio.io/rev) and istio.io/rev
// set. Only a namespace meshconform made is touched. Running pods keep their proxies until
// restarted. It returns the namespace as stored after the patch.
func MoveToRevision(ctx context.Context, kube kubernetes.Interface, ns, rev string) (*corev1.Namespace, error) {
	if !ownership.IsDNSLabel(rev) || rev == istionames.DefaultRevision {
		return nil, fmt.Errorf("move %s to revision %q: not a revision name (a DNS label, not %q)", ns, rev, istionames.DefaultRevision)
	}
	obj, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("move %s to revision %s: %w", ns, rev, err)
	}
	if obj.Labels[ownership.ManagedByKey] != ownership.ManagedByValue {
		return nil, fmt.Errorf("move %s to revision %s: refusing to relabel a namespace meshconform did not create (no %s=%s)",
			ns, rev, ownership.ManagedByKey, ownership.ManagedByValue)
	}
	// A JSON merge patch: null deletes the label.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{
		istionames.InjectionLabel: nil, istionames.RevisionLabel: rev}}})
	if err != nil {
		return nil, err
	}
	out, err := kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: workload.FieldManager})
	if err != nil {
		return nil, fmt.Errorf("move %s to revision %s: %w", ns, rev, err)
	}
	if _, still := out.Labels[istionames.InjectionLabel]; still || out.Labels[istionames.RevisionLabel] != rev {
		return out, fmt.Errorf("move %s to revision %s: after the patch its labels are %v", ns, rev, out.Labels)
	}
	return out, nil
}

// RolloutRestart does what `kubectl rollout restart deployment/<name>` does: it sets the
// pod template's restartedAt annotation, to a value that names this restart (returned), so
// that WaitRestarted can tell the new pods from the old.
func RolloutRestart(ctx context.Context, kube kubernetes.Interface, ns, deployment string, at time.Time) (string, error) {
	// Nanoseconds, not kubectl's seconds: two restarts in one second must still differ.
	stamp := at.UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{RestartedAtAnnotation: stamp}}}}})
	if err != nil {
		return "", err
	}
	d, err := kube.AppsV1().Deployments(ns).Patch(ctx, deployment, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: workload.FieldManager})
	if err != nil {
		return "", fmt.Errorf("rollout restart of deployment %s/%s: %w", ns, deployment, err)
	}
	if got := d.Spec.Template.Annotations[RestartedAtAnnotation]; got != stamp {
		return "", fmt.Errorf("rollout restart of deployment %s/%s: its template says %s=%q after the patch, want %q", ns, deployment, RestartedAtAnnotation, got, stamp)
	}
	return stamp, nil
}

// RestartReasons says why a restart (stamp) of d is not finished, given the pods its
// selector selects; nil when it is: the Deployment observed its new template, all its
// replicas are updated and available and no old one is left, and every pod not being deleted
// is from the new template, Running and Ready. Pure, for tests on built objects.
func RestartReasons(d *appsv1.Deployment, pods []corev1.Pod, stamp string) []string {
	var rs []string
	name := "deployment " + d.Namespace + "/" + d.Name
	if got := d.Spec.Template.Annotations[RestartedAtAnnotation]; got != stamp {
		rs = append(rs, fmt.Sprintf("%s: template says %s=%q, not this restart's %q (restarted again by someone else?)", name, RestartedAtAnnotation, got, stamp))
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation {
		rs = append(rs, fmt.Sprintf("%s: generation %d not yet observed (observed %d)", name, d.Generation, st.ObservedGeneration))
	}
	if st.UpdatedReplicas < want {
		rs = append(rs, fmt.Sprintf("%s: %d of %d replicas updated", name, st.UpdatedReplicas, want))
	}
	if old := st.Replicas - st.UpdatedReplicas; old > 0 {
		rs = append(rs, fmt.Sprintf("%s: %d old replica(s) still running", name, old))
	}
	if st.AvailableReplicas < want {
		rs = append(rs, fmt.Sprintf("%s: %d of %d replicas available", name, st.AvailableReplicas, want))
	}
	fresh := 0
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if got := p.Annotations[RestartedAtAnnotation]; got != stamp {
			rs = append(rs, fmt.Sprintf("pod %s: from the old template (%s=%q)", p.Name, RestartedAtAnnotation, got))
			continue
		}
		fresh++
		if p.Status.Phase != corev1.PodRunning || !ready(p) {
			rs = append(rs, fmt.Sprintf("pod %s: from the new template, phase %s, Ready %v", p.Name, orNone(string(p.Status.Phase)), ready(p)))
		}
	}
	if fresh == 0 {
		rs = append(rs, "no pod from the restarted template yet")
	}
	return rs
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// AdmittedReasons says why a restart (stamp) of d has not yet made a pod that the API server
// admitted, for a run without a data plane (DATAPLANE=0), where no injected pod can run and
// the old pod therefore never gives way: the Deployment observed its new template and a pod of
// it, not being deleted, exists with the spec admission gave it. nil when it has.
func AdmittedReasons(d *appsv1.Deployment, pods []corev1.Pod, stamp string) []string {
	var rs []string
	name := "deployment " + d.Namespace + "/" + d.Name
	if got := d.Spec.Template.Annotations[RestartedAtAnnotation]; got != stamp {
		rs = append(rs, fmt.Sprintf("%s: template says %s=%q, not this restart's %q (restarted again by someone else?)", name, RestartedAtAnnotation, got, stamp))
	}
	if d.Status.ObservedGeneration < d.Generation {
		rs = append(rs, fmt.Sprintf("%s: generation %d not yet observed (observed %d)", name, d.Generation, d.Status.ObservedGeneration))
	}
	if newest(pods, stamp) == nil {
		rs = append(rs, "no pod from the restarted template yet")
	}
	return rs
}

// WaitRestarted polls until the restart stamp is done, and returns the newest pod of the new
// template: RestartReasons has nothing left, or, when admitted (no data plane), AdmittedReasons.
// On timeout the error lists what was still missing.
func WaitRestarted(ctx context.Context, kube kubernetes.Interface, ns, deployment, stamp string, admitted bool, timeout, poll time.Duration) (*corev1.Pod, error) {
	reasons := RestartReasons
	if admitted {
		reasons = AdmittedReasons
	}
	// An error in the last poll interval is most likely the deadline itself (or the client's
	// rate limiter refusing to wait past it): it says nothing about the rollout.
	cfg := wait.Config{Timeout: timeout, Poll: poll, Consecutive: 1, IgnoreLateErrors: true}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rollout restart of deployment %s/%s: %w", ns, deployment, err)
	}
	type look struct {
		pods    []corev1.Pod
		reasons []string
	}
	var last []string // reasons of the last complete observation
	res, err := wait.Until(ctx, cfg, func(ctx context.Context) (look, error) {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil {
			return look{}, err
		}
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
		if err != nil {
			return look{}, err
		}
		last = reasons(d, pods.Items, stamp)
		return look{pods.Items, last}, nil
	}, func(l look) bool { return len(l.reasons) == 0 })
	if err == nil {
		return newest(res.Last().Value.pods, stamp), nil
	}
	msg := strings.Join(last, "; ")
	if lastErr := res.Last().Err; lastErr != nil {
		msg = strings.TrimPrefix(msg+"; last API error: "+lastErr.Error(), "; ")
	}
	if msg == "" {
		msg = "nothing observed"
	}
	return nil, fmt.Errorf("rollout restart of deployment %s/%s not finished after %s: %s", ns, deployment, timeout, msg)
}

func newest(pods []corev1.Pod, stamp string) *corev1.Pod {
	var fresh []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Annotations[RestartedAtAnnotation] == stamp {
			fresh = append(fresh, p)
		}
	}
	sort.Slice(fresh, func(i, j int) bool {
		ti, tj := fresh[i].CreationTimestamp, fresh[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return tj.Before(&ti)
		}
		return fresh[i].Name < fresh[j].Name
	})
	if len(fresh) == 0 {
		return nil
	}
	return fresh[0].DeepCopy()
}
