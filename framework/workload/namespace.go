package workload

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/framework/wait"
)

// Injection says whether pods in a namespace join the mesh: a sidecar (InjectionOn,
// Revision(rev)), ambient enrolment (InjectionAmbient), or neither (InjectionOff). The zero value is refused, so that no spec gets a mesh by accident.
type Injection string

const (
	// InjectionOn labels the namespace istio-injection=enabled (the default revision).
	InjectionOn Injection = "on"
	// InjectionOff labels the namespace istio-injection=disabled: explicit, so that a
	// cluster-wide injection default does not reach it.
	InjectionOff Injection = "off"
	// InjectionAmbient enrols the namespace in ambient mode (istio.io/dataplane-mode=ambient)
	// and sets no injection label: Istio's CNI node agent redirects its pods to ztunnel (the
	// istio-cni chart's ambient.enablementSelectors, manifests/charts/istio-cni/values.yaml:59-66),
	// and no sidecar is injected. A pod opts out with the pod label istio.io/dataplane-mode=none.
	InjectionAmbient Injection = "ambient"
)

const revisionPrefix = "revision="

// Revision injects with the istiod of revision (or revision tag) rev: istio.io/rev=<rev>.
// istio-injection is left unset, since it would take precedence over istio.io/rev.
func Revision(rev string) Injection { return Injection(revisionPrefix + rev) }

// Labels returns the namespace labels that select this injection.
func (i Injection) Labels() (map[string]string, error) {
	switch {
	case i == InjectionOn:
		return map[string]string{istionames.InjectionLabel: istionames.InjectionEnabled}, nil
	case i == InjectionOff:
		return map[string]string{istionames.InjectionLabel: istionames.InjectionDisabled}, nil
	case i == InjectionAmbient:
		return map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient}, nil
	case strings.HasPrefix(string(i), revisionPrefix):
		rev := strings.TrimPrefix(string(i), revisionPrefix)
		if !ownership.IsDNSLabel(rev) {
			return nil, fmt.Errorf("injection revision %q is not a valid revision name (lowercase [a-z0-9-])", rev)
		}
		return map[string]string{istionames.RevisionLabel: rev}, nil
	case i == "":
		return nil, fmt.Errorf("injection not set: use workload.InjectionOn, workload.InjectionOff, workload.InjectionAmbient or workload.Revision(rev)")
	}
	return nil, fmt.Errorf("injection %q unknown: use workload.InjectionOn, workload.InjectionOff, workload.InjectionAmbient or workload.Revision(rev)", string(i))
}

// NamespaceSpec describes a per-spec namespace.
type NamespaceSpec struct {
	// Prefix starts the name, e.g. the behaviour or area ("mtls-002").
	Prefix string
	// RunID is the run's id (ownership.NewRunID); it labels the namespace and is in its name.
	RunID string
	// Injection is InjectionOn, InjectionOff or Revision(rev). Required.
	Injection Injection
	// Labels are extra labels; they may not override the ownership or injection labels.
	Labels map[string]string
}

// Namespace creates a namespace named <prefix>-<run id>-<random>, labelled with the run's
// ownership labels and the injection label, and returns its name. Specs running side by
// side with the same prefix get distinct namespaces.
func Namespace(ctx context.Context, kube kubernetes.Interface, spec NamespaceSpec) (string, error) {
	if err := ownership.ValidRunID(spec.RunID); err != nil {
		return "", fmt.Errorf("workload namespace: %w", err)
	}
	inj, err := spec.Injection.Labels()
	if err != nil {
		return "", fmt.Errorf("workload namespace %q: %w", spec.Prefix, err)
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range ownership.Labels(spec.RunID) {
		if old, ok := labels[k]; ok && old != v {
			return "", fmt.Errorf("workload namespace %q: label %s=%s would override the ownership label (%s)", spec.Prefix, k, old, v)
		}
		labels[k] = v
	}
	for _, k := range []string{istionames.InjectionLabel, istionames.RevisionLabel, istionames.DataplaneModeLabel} {
		if old, ok := labels[k]; ok && old != inj[k] {
			return "", fmt.Errorf("workload namespace %q: set injection with NamespaceSpec.Injection, not the label %s=%s", spec.Prefix, k, old)
		}
	}
	maps.Copy(labels, inj)

	// A random suffix rather than a counter: parallel Ginkgo processes share the run id.
	const attempts = 5
	for range attempts {
		name := ownership.NamespaceName(spec.Prefix, spec.RunID, randomSuffix())
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		_, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("workload namespace: creating %s: %w", name, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("workload namespace %q: %d random names were all taken", spec.Prefix, attempts)
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomSuffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // never fails (Go ≥ 1.24)
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

// DefaultDeleteTimeout bounds DeleteNamespaces and Cleanup when ctx has no deadline.
const DefaultDeleteTimeout = 3 * time.Minute

// DeleteNamespaces deletes the named namespaces and waits until they are gone. It refuses a
// namespace meshconform did not make (no app.kubernetes.io/managed-by=meshconform): on a
// shared cluster, deleting someone else's namespace is the worst thing the suite could do.
func DeleteNamespaces(ctx context.Context, kube kubernetes.Interface, names ...string) error {
	if err := refuseUnowned(ctx, kube, names); err != nil {
		return err
	}
	return deleteAndWait(ctx, kube, names)
}

// StartDeletion deletes the named namespaces, refusing one meshconform did not make (as
// DeleteNamespaces does), without waiting until they are gone: the namespace controller
// removes their content while the caller goes on. WaitTerminating, or DeleteNamespaces on the
// same names, waits for the end.
func StartDeletion(ctx context.Context, kube kubernetes.Interface, names ...string) error {
	if err := refuseUnowned(ctx, kube, names); err != nil {
		return err
	}
	return deleteAll(ctx, kube, names)
}

// WaitTerminating waits until every namespace of run runID that is being deleted (a
// deletion timestamp set, by StartDeletion or anyone) is gone, and returns how many it waited
// for. Namespaces of the run that nobody deletes are left alone.
func WaitTerminating(ctx context.Context, kube kubernetes.Interface, runID string) (int, error) {
	if err := ownership.ValidRunID(runID); err != nil {
		return 0, fmt.Errorf("workload: waiting for namespaces: %w", err)
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownership.Selector(runID)})
	if err != nil {
		return 0, fmt.Errorf("workload: listing namespaces of run %s: %w", runID, err)
	}
	var names []string
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			names = append(names, ns.Name)
		}
	}
	return len(names), deleteAndWait(ctx, kube, names)
}

func refuseUnowned(ctx context.Context, kube kubernetes.Interface, names []string) error {
	for _, n := range names {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("workload: reading namespace %s: %w", n, err)
		}
		if ns.Labels[ownership.ManagedByKey] != ownership.ManagedByValue {
			return fmt.Errorf("workload: refusing to delete namespace %s: it lacks %s=%s, so meshconform did not create it",
				n, ownership.ManagedByKey, ownership.ManagedByValue)
		}
	}
	return nil
}

// Cleanup deletes every namespace labelled with runID's ownership labels and waits until
// they are gone (their content with them).
func Cleanup(ctx context.Context, kube kubernetes.Interface, runID string) error {
	if err := ownership.ValidRunID(runID); err != nil {
		return fmt.Errorf("workload cleanup: %w", err)
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: ownership.Selector(runID)})
	if err != nil {
		return fmt.Errorf("workload cleanup: listing namespaces of run %s: %w", runID, err)
	}
	names := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		names = append(names, ns.Name)
	}
	return deleteAndWait(ctx, kube, names)
}

func deleteAndWait(ctx context.Context, kube kubernetes.Interface, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDeleteTimeout)
		defer cancel()
	}
	if err := deleteAll(ctx, kube, names); err != nil {
		return err
	}
	left := slices.Clone(names)
	last := map[string]*corev1.Namespace{}
	dl, _ := ctx.Deadline()
	_, err := wait.Until(ctx, wait.Config{Timeout: time.Until(dl), Poll: 250 * time.Millisecond, Consecutive: 1},
		func(ctx context.Context) ([]string, error) {
			var still []string
			for _, n := range left {
				ns, err := kube.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					continue // gone stays gone
				case err == nil:
					last[n] = ns
				}
				still = append(still, n) // present, or unknown after an API error
			}
			left = still
			return left, nil
		}, func(left []string) bool { return len(left) == 0 })
	if err == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "workload: %d namespace(s) not gone after deletion (%v):", len(left), err)
	for _, n := range left {
		fmt.Fprintf(&b, "\n  %s: %s", n, describeNamespace(last[n]))
	}
	b.WriteString("\n  (the namespace controller removes content first; a finalizer left by a " +
		"controller that no longer runs keeps a namespace Terminating: look at the conditions above)")
	return fmt.Errorf("%s", b.String())
}

func deleteAll(ctx context.Context, kube kubernetes.Interface, names []string) error {
	bg := metav1.DeletePropagationBackground
	for _, n := range names {
		err := kube.CoreV1().Namespaces().Delete(ctx, n, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("workload: deleting namespace %s: %w", n, err)
		}
	}
	return nil
}

func describeNamespace(ns *corev1.Namespace) string {
	if ns == nil {
		return "never read"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", ns.Status.Phase)
	if len(ns.Spec.Finalizers) > 0 {
		fmt.Fprintf(&b, ", finalizers %v", ns.Spec.Finalizers)
	}
	if len(ns.Finalizers) > 0 {
		fmt.Fprintf(&b, ", metadata finalizers %v", ns.Finalizers)
	}
	for _, c := range ns.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
		}
	}
	return b.String()
}
