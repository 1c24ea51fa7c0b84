package mesh

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/wait"
)

// PollInterval is how often readiness is checked.
const PollInterval = 250 * time.Millisecond

// Check is one readiness condition. It returns "" when it holds, else what it saw.
type Check func(ctx context.Context) string

// checks are the conditions that make chart c ready beyond Helm's own wait.
func (i *Installer) checks(o Options, c Chart) []Check {
	k, err := i.client()
	if err != nil {
		return []Check{func(context.Context) string { return err.Error() }}
	}
	switch c {
	case ChartIstiod:
		return []Check{
			DeploymentRolledOut(k, o.Namespace, o.IstiodDeploymentName()),
			WebhookHasCABundle(k, o.InjectorWebhookName()),
		}
	case ChartGateway:
		return []Check{DeploymentRolledOut(k, o.GatewayNamespace, o.GatewayDeploymentName())}
	case ChartCNI:
		return []Check{DaemonSetRolledOut(k, o.Namespace, CNIDaemonSet)}
	case ChartZtunnel:
		return []Check{DaemonSetRolledOut(k, o.Namespace, ZtunnelDaemonSet)}
	}
	return nil
}

// evaluate runs every check and returns what the failing ones saw, in order.
func evaluate(ctx context.Context, checks []Check) []string {
	var waiting []string
	for _, c := range checks {
		if s := c(ctx); s != "" {
			waiting = append(waiting, s)
		}
	}
	return waiting
}

// waitReady polls chart c's checks until all hold, o.Timeout passes, or ctx ends. It logs what
// it is waiting for whenever that changes ("waiting" attribute: one string per condition).
func (i *Installer) waitReady(ctx context.Context, o Options, c Chart) error {
	checks := i.checks(o, c)
	if len(checks) == 0 {
		return nil
	}
	err := WaitFor(ctx, o.Timeout, string(c), i.log, checks...)
	if err != nil {
		return fmt.Errorf("%w. %s", err, notReadyFix(o, c))
	}
	return nil
}

// WaitFor polls checks every PollInterval until all hold, or timeout passes, or ctx ends;
// then the error names each condition that did not hold and what was seen. what names the
// thing waited for in messages. Progress is logged to log whenever what is missing changes.
//
// Each round of checks gets its own deadline (roundTimeout) rather than the wait's: a round
// cut short by the overall deadline would report the deadline (or the client's rate limiter
// refusing to wait past it) instead of the cluster. A round cut short by ctx says nothing.
func WaitFor(ctx context.Context, timeout time.Duration, what string, log Logger, checks ...Check) error {
	start := time.Now()
	var logged []string
	res, err := wait.Until(ctx, wait.Config{Timeout: timeout, Poll: PollInterval, Consecutive: 1, ObserveTimeout: roundTimeout},
		func(rctx context.Context) ([]string, error) {
			waiting := evaluate(rctx, checks)
			if ctx.Err() != nil {
				return waiting, ctx.Err()
			}
			if !slices.Equal(waiting, logged) && len(waiting) > 0 {
				log.Info("waiting", "for", what, "waiting", waiting, "elapsed", time.Since(start).Round(time.Millisecond))
			}
			logged = waiting
			return waiting, nil
		}, func(waiting []string) bool { return len(waiting) == 0 })
	if err == nil {
		log.Info("ready", "for", what, "elapsed", time.Since(start).Round(time.Millisecond))
		return nil
	}
	var last []string
	if l := res.Last(); l.Err == nil {
		last = l.Value
	}
	if ctx.Err() != nil {
		return fmt.Errorf("wait for %s interrupted after %s (%v): %s", what, res.Elapsed.Round(time.Millisecond), context.Cause(ctx), strings.Join(last, "; "))
	}
	return fmt.Errorf("%s not ready within %s: %s", what, timeout, strings.Join(last, "; "))
}

// roundTimeout bounds one round of checks (a few GETs).
const roundTimeout = 10 * time.Second

// Logger is the part of *slog.Logger that WaitFor uses.
type Logger interface {
	Info(msg string, args ...any)
}

func notReadyFix(o Options, c Chart) string {
	ns := o.ReleaseNamespace(c)
	return fmt.Sprintf("Look at `kubectl -n %s get pods,events` and the pods' logs (image pulls, scheduling, istiod's certificate setup); raise %s (now %s) on a slow machine",
		ns, EnvTimeout, o.Timeout)
}

// DeploymentRolledOut holds when the Deployment's controller has seen its latest spec and
// every wanted replica is updated and available, with no old replica left: the same test as
// `kubectl rollout status`, so that after an upgrade it holds only once the new version serves.
func DeploymentRolledOut(k kubernetes.Interface, ns, name string) Check {
	return func(ctx context.Context) string {
		d, err := k.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("Deployment %s/%s: not found", ns, name)
		}
		if err != nil {
			return fmt.Sprintf("Deployment %s/%s: %v", ns, name, err)
		}
		return rolloutGap(d)
	}
}

// rolloutGap is "" for a rolled-out Deployment, else what is missing.
func rolloutGap(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	var gaps []string
	if st.ObservedGeneration < d.Generation {
		gaps = append(gaps, fmt.Sprintf("generation %d not yet observed by its controller (observed %d)", d.Generation, st.ObservedGeneration))
	}
	if st.UpdatedReplicas < want || st.AvailableReplicas < want {
		gaps = append(gaps, fmt.Sprintf("%d/%d replicas available, %d/%d updated", st.AvailableReplicas, want, st.UpdatedReplicas, want))
	}
	if old := st.Replicas - st.UpdatedReplicas; old > 0 {
		gaps = append(gaps, fmt.Sprintf("%d old replicas still running", old))
	}
	if len(gaps) == 0 {
		return ""
	}
	msg := fmt.Sprintf("Deployment %s/%s: %s", d.Namespace, d.Name, strings.Join(gaps, ", "))
	for _, c := range st.Conditions {
		if c.Status != "True" && c.Message != "" {
			msg += fmt.Sprintf(" (%s: %s)", c.Type, c.Message)
		}
	}
	return msg
}

// DaemonSetRolledOut holds when the DaemonSet's controller has seen its latest spec and every
// node it wants a pod on runs an updated, ready and available one: `kubectl rollout status` for
// a DaemonSet. For istio-cni-node a pod is ready when its agent answers :8000/readyz, for ztunnel
// when :15021/healthz/ready does, which it does only after istiod's first config and the node's
// CNI agent's connection (research/ambient.md §1.1: istio-cni/templates/daemonset.yaml:105-108,
// ztunnel/templates/daemonset.yaml:102-105, ztunnel src/app.rs:52-59).
func DaemonSetRolledOut(k kubernetes.Interface, ns, name string) Check {
	return func(ctx context.Context) string {
		d, err := k.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("DaemonSet %s/%s: not found", ns, name)
		}
		if err != nil {
			return fmt.Sprintf("DaemonSet %s/%s: %v", ns, name, err)
		}
		return daemonSetGap(d)
	}
}

// daemonSetGap is "" for a rolled-out DaemonSet, else what is missing. A DaemonSet that wants
// no pod at all (no node scheduled yet) is not ready: a mesh with no node agent runs nothing.
func daemonSetGap(d *appsv1.DaemonSet) string {
	st := d.Status
	var gaps []string
	if st.ObservedGeneration < d.Generation {
		gaps = append(gaps, fmt.Sprintf("generation %d not yet observed by its controller (observed %d)", d.Generation, st.ObservedGeneration))
	}
	want := st.DesiredNumberScheduled
	switch {
	case want == 0:
		gaps = append(gaps, "no node scheduled a pod")
	case st.UpdatedNumberScheduled < want || st.NumberReady < want || st.NumberAvailable < want:
		gaps = append(gaps, fmt.Sprintf("%d/%d pods ready, %d/%d available, %d/%d updated", st.NumberReady, want, st.NumberAvailable, want, st.UpdatedNumberScheduled, want))
	}
	if len(gaps) == 0 {
		return ""
	}
	return fmt.Sprintf("DaemonSet %s/%s: %s", d.Namespace, d.Name, strings.Join(gaps, ", "))
}

// WebhookHasCABundle holds when the MutatingWebhookConfiguration exists, has webhooks, and
// every one carries a non-empty caBundle. istiod writes the bundle when it starts; until then
// injection fails closed or open depending on the failurePolicy, so nothing may be deployed.
func WebhookHasCABundle(k kubernetes.Interface, name string) Check {
	return func(ctx context.Context) string {
		w, err := k.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("MutatingWebhookConfiguration %s: not found", name)
		}
		if err != nil {
			return fmt.Sprintf("MutatingWebhookConfiguration %s: %v", name, err)
		}
		if len(w.Webhooks) == 0 {
			return fmt.Sprintf("MutatingWebhookConfiguration %s: has no webhooks", name)
		}
		var empty []string
		for _, h := range w.Webhooks {
			if len(h.ClientConfig.CABundle) == 0 {
				empty = append(empty, h.Name)
			}
		}
		if len(empty) > 0 {
			return fmt.Sprintf("MutatingWebhookConfiguration %s: no caBundle yet on %d/%d webhooks (%s); istiod writes it once it has started",
				name, len(empty), len(w.Webhooks), strings.Join(empty, ", "))
		}
		return ""
	}
}
