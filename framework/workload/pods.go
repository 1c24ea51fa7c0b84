package workload

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// PodFor returns a pod of app (label app=<app>) in ns to run probes from: Running, Ready and
// not being deleted, the oldest such pod first (it is the least likely to be replaced
// mid-probe), by name when equally old. Call WaitReady first: PodFor does not wait.
func PodFor(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error) {
	return podFor(ctx, kube, ns, app, false)
}

// AdmittedPodFor returns a pod of app in ns as the API server admitted it (with what the
// injector wrote), not being deleted, whatever its phase: for runs without a data plane
// (DATAPLANE=0), where injected pods never start. The oldest first, as PodFor.
func AdmittedPodFor(ctx context.Context, kube kubernetes.Interface, ns, app string) (*corev1.Pod, error) {
	return podFor(ctx, kube, ns, app, true)
}

func podFor(ctx context.Context, kube kubernetes.Interface, ns, app string, admitted bool) (*corev1.Pod, error) {
	if app == "" {
		return nil, fmt.Errorf("workload: pod for app \"\" in %s: name the app (a Handle's App)", ns)
	}
	sel := labels.Set{"app": app}.String()
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("workload: listing pods %s in %s: %w", sel, ns, err)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool {
		ti, tj := pods[i].CreationTimestamp, pods[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return pods[i].Name < pods[j].Name
	})
	var seen []string
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp == nil && (admitted || p.Status.Phase == corev1.PodRunning && podConditionTrue(p, corev1.PodReady)) {
			return p.DeepCopy(), nil
		}
		state := string(p.Status.Phase) + waitingSummary(p)
		if p.DeletionTimestamp != nil {
			state += ", being deleted"
		} else if !podConditionTrue(p, corev1.PodReady) {
			state += ", not Ready"
		}
		seen = append(seen, p.Name+" ("+state+")")
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("workload: no pod with %s in namespace %s: deploy the sample, then WaitReady", sel, ns)
	}
	return nil, fmt.Errorf("workload: no running, ready pod with %s in namespace %s; saw %s: WaitReady before picking a probe source",
		sel, ns, strings.Join(seen, "; "))
}
