package diag

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podLogs fetches every container's log (init, regular, ephemeral), and the previous
// instance's when the container restarted.
func (d *dumper) podLogs(ctx context.Context, pod *corev1.Pod) {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	for _, name := range names {
		st := containerStatus(pod, name)
		d.containerLog(ctx, pod, name, st, false)
		if st != nil && (st.RestartCount > 0 || st.LastTerminationState.Terminated != nil) {
			d.containerLog(ctx, pod, name, st, true)
		}
	}
}

func (d *dumper) containerLog(ctx context.Context, pod *corev1.Pod, container string, st *corev1.ContainerStatus, previous bool) {
	key := fmt.Sprintf("%s/%s/%s/%t", pod.Namespace, pod.Name, container, previous)
	d.mu.Lock()
	if d.logs == nil {
		d.logs = map[string]bool{}
	}
	seen := d.logs[key]
	d.logs[key] = true
	d.mu.Unlock()
	if seen { // the Istio namespace may be dumped both as a namespace and for istiod
		return
	}
	rel := filepath.Join(pod.Namespace, "logs", pod.Name+"."+container+".log")
	what := "log"
	if previous {
		rel = filepath.Join(pod.Namespace, "logs", pod.Name+"."+container+".previous.log")
		what = "previous log"
	}
	opts := &corev1.PodLogOptions{
		Container:  container,
		Previous:   previous,
		Timestamps: true, // lines line up with events.txt
		TailLines:  &d.opts.TailLines,
		LimitBytes: &d.opts.LimitBytes,
	}
	d.async(ctx, func() {
		cctx, cancel := d.call(ctx)
		defer cancel()
		raw, err := d.kube.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).DoRaw(cctx)
		if err != nil {
			d.noteErr("%s of %s/%s container %s: %v (%s)", what, pod.Namespace, pod.Name, container,
				strings.TrimSpace(err.Error()), containerState(pod, st))
			return
		}
		if len(raw) == 0 && (pod.Spec.NodeName == "" || !started(st)) {
			// The API server answers an unscheduled pod's log with nothing, not an error; an
			// empty file would read as "the container printed nothing".
			why := "the container has not run"
			if pod.Spec.NodeName == "" {
				why = "the pod is on no node, so no kubelet holds a log"
			}
			d.noteErr("%s of %s/%s container %s: none, %s (%s)", what, pod.Namespace, pod.Name, container, why, containerState(pod, st))
			return
		}
		d.write(rel, raw)
	})
}

// started says whether a container has run at all.
func started(st *corev1.ContainerStatus) bool {
	return st != nil && (st.State.Running != nil || st.State.Terminated != nil || st.LastTerminationState.Terminated != nil)
}

// containerStatus finds a container's status in whichever list holds it.
func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// containerState says, for an error message, why a container may have no log.
func containerState(pod *corev1.Pod, st *corev1.ContainerStatus) string {
	s := "pod " + string(pod.Status.Phase)
	if pod.Spec.NodeName == "" {
		s += ", not scheduled"
	}
	switch {
	case st == nil:
		return s + ", no status for the container yet"
	case st.State.Running != nil:
		return s + ", container running"
	case st.State.Waiting != nil:
		return s + ", container waiting: " + orDash(st.State.Waiting.Reason)
	case st.State.Terminated != nil:
		return fmt.Sprintf("%s, container terminated: %s (exit %d)", s, orDash(st.State.Terminated.Reason), st.State.Terminated.ExitCode)
	default:
		return s + ", container state unknown"
	}
}

// proxyRunning says whether pod's proxy container is running according to its status.
func proxyRunning(pod *corev1.Pod, container string) bool {
	st := containerStatus(pod, container)
	return st != nil && st.State.Running != nil
}
