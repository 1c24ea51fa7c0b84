package checks

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
)

// InjectorWebhookName is the chart's name of the sidecar injector's
// MutatingWebhookConfiguration for a revision ("" for the default): istio-sidecar-injector
// or istio-sidecar-injector-<rev> (the chart adds -<namespace> when istiod is installed
// outside istio-system; CheckInjectorCABundle finds those by label).
func InjectorWebhookName(revision string) string {
	if revision == "" {
		return "istio-sidecar-injector"
	}
	return "istio-sidecar-injector-" + revision
}

// InjectorSelector is the labels the chart puts on the injector's configuration:
// app=sidecar-injector and istio.io/rev=<rev or "default">.
func InjectorSelector(revision string) string {
	rev := revision
	if rev == "" {
		rev = "default"
	}
	return labels.Set{"app": "sidecar-injector", "istio.io/rev": rev}.String()
}

// CheckInjectorCABundle is CERT-003: every webhook of the sidecar injector's
// MutatingWebhookConfiguration has a clientConfig.caBundle that holds PEM certificates.
// Seed 000 reads webhooks[0] only; every webhook is checked, since the API server calls
// each of them (the chart has four). The configuration is found by name, else by the
// chart's labels. istiod patches the bundle in after it starts, so converge this check
// (expect.ConvergeFunc) right after an install.
func CheckInjectorCABundle(ctx context.Context, kube kubernetes.Interface, revision string) error {
	name := InjectorWebhookName(revision)
	api := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	var configs []admissionv1.MutatingWebhookConfiguration
	mwc, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		configs = append(configs, *mwc)
	case apierrors.IsNotFound(err):
		sel := InjectorSelector(revision)
		list, lerr := api.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if lerr != nil {
			return fmt.Errorf("CERT-003: MutatingWebhookConfiguration %s not found; listing by %s: %w", name, sel, lerr)
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("CERT-003: no MutatingWebhookConfiguration %s, nor one labelled %s: is istiod installed (with this revision)?", name, sel)
		}
		configs = list.Items
		sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	default:
		return fmt.Errorf("CERT-003: reading MutatingWebhookConfiguration %s: %w", name, err)
	}
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
