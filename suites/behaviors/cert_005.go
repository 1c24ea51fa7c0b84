package behaviors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/expect"
	"meshconform/framework/mesh"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// CERT-005: re-applying the injector's MutatingWebhookConfiguration erases the CA bundle istiod
// patched in (seed 000, which says to restart istiod). istiod watches the configuration and
// patches the bundle back on any change (pkg/webhooks/webhookpatch.go: an event handler on the
// webhook configurations queues webhookPatchTask, which writes the CA bundle into every webhook
// whose bundle differs), so no restart is needed: the spec blanks every webhook's bundle, waits
// for it to come back, and checks that istiod's pods are the same incarnations.
var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-005", Name: "istiod patches a blanked injector CA bundle back in without a restart",
	// The injector's configuration, read and updated to blank the bundles, and again by the
	// cleanup to put back what istiod did not (named here as in a default install).
	Writes: func(cases.Env) []cases.Write {
		return []cases.Write{{Object: &admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: mesh.Options{}.InjectorWebhookName()}},
			Verbs: []cases.Verb{cases.Get, cases.Update}}}
	},
	Run: func(ctx context.Context, t *e2e.T) {
		is := t.Run.State.Istio
		kube := t.Run.Kube
		before, err := IstiodIncarnations(ctx, kube, is.Namespace, is.Revision)
		if err != nil {
			t.Unjudged(fmt.Errorf("reading istiod's pods: %w", err), nil)
		}
		By("blanking clientConfig.caBundle on every webhook of the injector's configuration")
		saved, err := BlankInjectorCABundle(ctx, kube, is.Namespace, is.Revision)
		if err != nil {
			t.Unjudged(err, nil)
		}
		blanked := time.Now()
		// Whatever happens, the mesh is not left without a bundle: what istiod did not patch
		// back is put back as it was.
		DeferCleanup(func(ctx context.Context) {
			if n, err := RestoreInjectorCABundle(ctx, kube, is.Namespace, is.Revision, saved); err != nil || n > 0 {
				fmt.Fprintf(GinkgoWriter, "CERT-005 cleanup: put back %d bundles istiod had not restored (%v)\n", n, err)
			}
		})
		var firstBack time.Duration
		err = expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
			err := CheckInjectorCABundle(ctx, kube, is.Namespace, is.Revision)
			if err == nil && firstBack == 0 {
				firstBack = time.Since(blanked)
			}
			if err != nil {
				firstBack = 0
			}
			return err
		})
		after, aerr := IstiodIncarnations(ctx, kube, is.Namespace, is.Revision)
		fields := map[string]string{"webhook": mesh.Options{Namespace: is.Namespace, Revision: is.Revision}.InjectorWebhookName(),
			"webhooks blanked": fmt.Sprint(len(saved)), "istiod before": describeIncarnations(before), "istiod after": describeIncarnations(after)}
		if err == nil {
			fields["restored after"] = firstBack.Round(10 * time.Millisecond).String()
		}
		if aerr != nil {
			err = errors.Join(err, fmt.Errorf("reading istiod's pods afterwards: %w", aerr))
		} else {
			err = errors.Join(err, CheckNotRestarted(before, after))
		}
		t.Check(err, fmt.Sprintf("every webhook's caBundle back %s after it was blanked; istiod not restarted", fields["restored after"]), fields)
	},
})

// BlankInjectorCABundle empties clientConfig.caBundle of every webhook of the injector's
// MutatingWebhookConfiguration for istiod in namespace at revision (what re-applying the
// chart's manifest does) and returns the bundles it removed, by webhook name.
func BlankInjectorCABundle(ctx context.Context, kube kubernetes.Interface, namespace, revision string) (map[string][]byte, error) {
	name := mesh.Options{Namespace: namespace, Revision: revision}.InjectorWebhookName()
	saved := map[string][]byte{}
	err := updateInjector(ctx, kube, name, func(mwc *admissionv1.MutatingWebhookConfiguration) int {
		clear(saved)
		for i := range mwc.Webhooks {
			saved[mwc.Webhooks[i].Name] = mwc.Webhooks[i].ClientConfig.CABundle
			mwc.Webhooks[i].ClientConfig.CABundle = nil
		}
		return len(mwc.Webhooks)
	})
	if err != nil {
		return nil, fmt.Errorf("blanking the caBundle of MutatingWebhookConfiguration %s: %w", name, err)
	}
	return saved, nil
}

// RestoreInjectorCABundle puts saved back into the webhooks whose caBundle is still empty and
// returns how many it restored (none when istiod had patched them all).
func RestoreInjectorCABundle(ctx context.Context, kube kubernetes.Interface, namespace, revision string, saved map[string][]byte) (int, error) {
	name := mesh.Options{Namespace: namespace, Revision: revision}.InjectorWebhookName()
	n := 0
	err := updateInjector(ctx, kube, name, func(mwc *admissionv1.MutatingWebhookConfiguration) int {
		n = 0
		for i := range mwc.Webhooks {
			if b := saved[mwc.Webhooks[i].Name]; len(mwc.Webhooks[i].ClientConfig.CABundle) == 0 && len(b) > 0 {
				mwc.Webhooks[i].ClientConfig.CABundle = b
				n++
			}
		}
		return n
	})
	return n, err
}

// updateInjector applies change to the configuration name, retrying on a conflict (istiod
// writes it too); change returns how many webhooks it changed, and none writes nothing.
func updateInjector(ctx context.Context, kube kubernetes.Interface, name string, change func(*admissionv1.MutatingWebhookConfiguration) int) error {
	api := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mwc, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if change(mwc) == 0 {
			return nil
		}
		_, err = api.Update(ctx, mwc, metav1.UpdateOptions{})
		return err
	})
}

// IstiodIncarnations is each istiod pod of revision in namespace: its UID and its containers'
// restart counts, "uid=<uid> restarts=<n>".
func IstiodIncarnations(ctx context.Context, kube kubernetes.Interface, namespace, revision string) (map[string]string, error) {
	pods, err := kube.CoreV1().Pods(nsOrDefault(namespace)).List(ctx, metav1.ListOptions{LabelSelector: IstiodSelector(revision)})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		var restarts int32
		for _, s := range p.Status.ContainerStatuses {
			restarts += s.RestartCount
		}
		out[p.Name] = fmt.Sprintf("uid=%s restarts=%d", p.UID, restarts)
	}
	return out, nil
}

// CheckNotRestarted says which istiod pods are gone, new or restarted between two looks.
func CheckNotRestarted(before, after map[string]string) error {
	if len(before) == 0 {
		return errors.New("no istiod pod before the bundle was blanked")
	}
	var problems []string
	for name, b := range before {
		switch a, ok := after[name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("pod %s (%s) is gone", name, b))
		case a != b:
			problems = append(problems, fmt.Sprintf("pod %s was %s, now %s", name, b, a))
		}
	}
	for name, a := range after {
		if _, ok := before[name]; !ok {
			problems = append(problems, fmt.Sprintf("pod %s (%s) is new", name, a))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New("istiod restarted: " + strings.Join(problems, "; "))
}

func describeIncarnations(m map[string]string) string {
	var out []string
	for name, v := range m {
		out = append(out, name+" "+v)
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
