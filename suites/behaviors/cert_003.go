package behaviors

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/mesh"
	"meshconform/suites/internal/e2e"
)

// InjectorSelector is the labels the chart puts on the injector's configuration:
// app=sidecar-injector and istio.io/rev=<rev or "default">.
func InjectorSelector(revision string) string {
	rev := revision
	if rev == "" {
		rev = istionames.DefaultRevision
	}
	return labels.Set{istionames.AppLabel: istionames.InjectorApp, istionames.RevisionLabel: rev}.String()
}

// CheckInjectorCABundle is CERT-003: every webhook of the sidecar injector's
// MutatingWebhookConfiguration has a clientConfig.caBundle that holds PEM certificates.
// Seed 000 reads webhooks[0] only; every webhook is checked, since the API server calls
// each of them (the chart has four). The configuration is found by the name the chart gives
// it for istiod's namespace and revision (mesh.Options.InjectorWebhookName). istiod patches
// the bundle in after it starts, so converge this check (expect.ConvergeFunc) right after an
// install.
func CheckInjectorCABundle(ctx context.Context, kube kubernetes.Interface, namespace, revision string) error {
	name := mesh.Options{Namespace: namespace, Revision: revision}.InjectorWebhookName()
	api := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		// Say what the chart's labels do find: a control plane in another namespace or of
		// another revision than the run recorded.
		sel := InjectorSelector(revision)
		others := "none"
		if list, lerr := api.List(ctx, metav1.ListOptions{LabelSelector: sel}); lerr == nil && len(list.Items) > 0 {
			var names []string
			for _, m := range list.Items {
				names = append(names, m.Name)
			}
			sort.Strings(names)
			others = strings.Join(names, ", ")
		}
		return fmt.Errorf("CERT-003: no MutatingWebhookConfiguration %s (the chart's name for istiod in %s, revision %q); labelled %s: %s: is istiod installed there (with this revision)?",
			name, nsOrDefault(namespace), revision, sel, others)
	case err != nil:
		return fmt.Errorf("CERT-003: reading MutatingWebhookConfiguration %s: %w", name, err)
	}
	configs := []admissionv1.MutatingWebhookConfiguration{*mwc}
	var problems []string
	for i := range configs {
		problems = append(problems, caBundleProblems(&configs[i])...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("CERT-003: %s\nseed 000: restart istiod so that it patches the CA bundle back in (re-applying the webhook configuration erases it)",
			strings.Join(problems, "; "))
	}
	return nil
}

// caBundleProblems lists the webhooks of mwc whose caBundle is empty or not certificates.
func caBundleProblems(mwc *admissionv1.MutatingWebhookConfiguration) []string {
	if len(mwc.Webhooks) == 0 {
		return []string{fmt.Sprintf("MutatingWebhookConfiguration %s has no webhooks", mwc.Name)}
	}
	var out []string
	for i, wh := range mwc.Webhooks {
		where := fmt.Sprintf("%s webhooks[%d] (%s)", mwc.Name, i, wh.Name)
		n, err := pemCertificates(wh.ClientConfig.CABundle)
		switch {
		case len(wh.ClientConfig.CABundle) == 0:
			out = append(out, where+": clientConfig.caBundle is empty")
		case err != nil:
			out = append(out, fmt.Sprintf("%s: clientConfig.caBundle (%d bytes) is not PEM certificates: %v", where, len(wh.ClientConfig.CABundle), err))
		case n == 0:
			out = append(out, fmt.Sprintf("%s: clientConfig.caBundle (%d bytes) holds no CERTIFICATE block", where, len(wh.ClientConfig.CABundle)))
		}
	}
	return out
}

// pemCertificates counts the parseable CERTIFICATE blocks; any unparseable one is an error.
func pemCertificates(b []byte) (int, error) {
	n, blocks := 0, 0
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks++
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return n, fmt.Errorf("certificate %d: %w", n, err)
		}
		n++
	}
	if blocks == 0 && len(strings.TrimSpace(string(b))) > 0 {
		return 0, errors.New("no PEM block found")
	}
	return n, nil
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return mesh.DefaultNamespace
	}
	return ns
}

var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-003", Name: "the sidecar injector webhook has a CA bundle",
	Run: func(ctx context.Context, t *e2e.T) {
		is := t.Run.State.Istio
		// istiod patches the bundle in after it starts: converge rather than read once.
		err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
			return CheckInjectorCABundle(ctx, t.Run.Kube, is.Namespace, is.Revision)
		})
		name := mesh.Options{Namespace: is.Namespace, Revision: is.Revision}.InjectorWebhookName()
		t.Check(err, "caBundle set on every webhook", map[string]string{"webhook": name})
	},
})
