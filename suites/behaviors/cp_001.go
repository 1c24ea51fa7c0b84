package behaviors

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"k8s.io/client-go/kubernetes"

	"meshconform/suites/internal/e2e"
	"meshconform/suites/internal/record"
)

// CP-001's warm-up rule (seed 000: these errors are usually transient): when istiod has
// logged TLS handshake errors, its logs are watched for settleWindow, read every settlePoll;
// any growth over the window is a persistent error.
const (
	settleWindow = 45 * time.Second
	settlePoll   = 15 * time.Second
)

// The control-plane specs are Serial so that, in a parallel run, Ginkgo runs them after the
// other specs: istiod's logs then hold the suite's own traffic and policy churn.
var _ = e2e.Register(e2e.Behavior{
	ID: "CP-001", Name: "istiod logs no persistent TLS handshake errors (bad certificate)",
	Serial: true, Timeout: 5 * time.Minute,
	Run: func(ctx context.Context, t *e2e.T) {
		is := t.Run.State.Istio
		TLSErrors(ctx, t.Run.Kube, is.Namespace, is.Revision, t.Run.State.Started, settleWindow, settlePoll)
	},
})

// TLSErrors is CP-001's body: it scans istiod's logs since logsSince and passes at once
// when no line matches `TLS handshake error.*bad certificate`; otherwise it applies the
// warm-up rule with TLSErrorsSettle over window (reading every poll) and records what that
// saw: documented when the count did not grow, a deviation when it did, and no
// classification when the logs could not be read. Exported so that the recording test
// (suites/internal/record) runs it against a loopback API server.
func TLSErrors(ctx context.Context, kube kubernetes.Interface, istioNamespace, revision string, logsSince time.Time, window, poll time.Duration) {
	GinkgoHelper()
	const id = "CP-001"
	text, err := IstiodLogs(ctx, kube, istioNamespace, revision, logsSince)
	before := ScanIstiodLog(text)
	if err != nil {
		record.Unjudged(id, fmt.Errorf("reading istiod's logs: %w", err), findingFields(before.TLSBadCertificate, before.Lines))
	}
	if before.TLSBadCertificate.Count == 0 {
		record.Check(id, nil, "no TLS handshake errors (bad certificate) in istiod's logs", findingFields(before.TLSBadCertificate, before.Lines))
		return
	}
	By(fmt.Sprintf("%d TLS errors so far: watching istiod's logs for %v for new ones", before.TLSBadCertificate.Count, window))
	after, err := TLSErrorsSettle(ctx, kube, istioNamespace, revision, logsSince, window, poll)
	f := findingFields(after.TLSBadCertificate, after.Lines)
	f["matches before the window"] = fmt.Sprint(before.TLSBadCertificate.Count)
	f["window"] = window.String()
	switch grew := CheckTLSErrorsSettled(before, after); {
	case err == nil:
		record.Check(id, nil, fmt.Sprintf("%d TLS handshake errors, none new over a %v window: warm-up transients", after.TLSBadCertificate.Count, window), f)
	case grew != nil:
		// The logs show the growth, whatever ended the window: that is the deviation.
		f["window ended"] = strings.SplitN(err.Error(), "\n", 2)[0]
		record.Check(id, grew, "", f)
	default:
		record.Unjudged(id, err, f)
	}
}
