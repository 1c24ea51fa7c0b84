package behaviors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/istionames"
	"meshconform/framework/wait"
	"meshconform/suites/internal/e2e"
)

// The patterns seed 000 tells readers to search istiod's logs for, verbatim, except CP-003's,
// whose seed wording no current istiod prints.
const (
	// PatternTLSBadCertificate (CP-001): istiod failed TLS handshakes with its clients.
	PatternTLSBadCertificate = `TLS handshake error.*bad certificate`
	// PatternCannotList (CP-002): istiod lacks RBAC to read (custom) resources.
	PatternCannotList = `error.*cannot list resource`
	// PatternCAAuthFailed (CP-003): a rejected CSR as istiod 1.30 and 1.31 log it. The CA
	// (security/pkg/server/ca/server.go:79) calls security.Authenticate, which logs on scope
	// security (pkg/security/security.go:33) "Failed to authenticate client from <addr>: " and
	// every authenticator's failure, "Authenticator <type>: <error>" joined by "; "
	// (pkg/security/authentication.go:60, security.go:410); the Kubernetes token's is
	// "failed to validate the JWT from cluster %q: %v" (kubeauth/kube_jwt.go:132).
	PatternCAAuthFailed = `security.*Failed to authenticate client from .*JWT`
	// PatternCAAuthFailedSeed is seed 000's pattern for the same failure, verbatim: an older
	// istiod's wording (scope serverca, "Authentication failed:"), still scanned for those.
	PatternCAAuthFailedSeed = `serverca.*Authentication failed:.*JWT`
)

var (
	reTLSBadCertificate    = regexp.MustCompile(PatternTLSBadCertificate)
	reCannotList           = regexp.MustCompile(PatternCannotList)
	reCAAuthFailed         = regexp.MustCompile(PatternCAAuthFailed)
	reCAAuthFailedSeed     = regexp.MustCompile(PatternCAAuthFailedSeed)
	errNoIstiodPods        = errors.New("no istiod pod")
	defaultIstiodSelectors = labels.Set{istionames.AppLabel: istionames.IstiodApp}
)

// MaxExamples bounds the example lines a Finding keeps; MaxExampleLen bounds each line. A
// rejected CSR as istiod logged it live (istiod_test.go's logCAGolden) is 424 bytes, its reason
// (kube-apiserver's TokenReview error) at the end: 600 keeps such a line whole.
const (
	MaxExamples   = 5
	MaxExampleLen = 600
)

// Finding is what one behaviour's pattern matched in a log.
type Finding struct {
	// ID is the catalog ID the pattern belongs to.
	ID string
	// Pattern is the documented regular expression.
	Pattern string
	// Count is how many lines matched Pattern; Examples the most recent of them (at most
	// MaxExamples, oldest first, each clipped to MaxExampleLen).
	Count    int
	Examples []string
	// OlderPattern, when set, matches the same failure as older Istio releases word it;
	// Older counts lines that match it and not Pattern.
	OlderPattern  string
	Older         int
	OlderExamples []string
}

// Total is every line that shows the failure, in today's wording or the older one.
func (f Finding) Total() int { return f.Count + f.Older }

// Matched says which pattern matched, for the report: "none", a pattern with its count, or both.
func (f Finding) Matched() string {
	var out []string
	if f.Count > 0 {
		out = append(out, fmt.Sprintf("%q (%d lines)", f.Pattern, f.Count))
	}
	if f.Older > 0 {
		out = append(out, fmt.Sprintf("%q, the older wording (%d lines)", f.OlderPattern, f.Older))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " and ")
}

func (f *Finding) add(line string, older bool) {
	l := clip(line, MaxExampleLen)
	if older {
		f.Older++
		f.OlderExamples = keepLast(f.OlderExamples, l)
		return
	}
	f.Count++
	f.Examples = keepLast(f.Examples, l)
}

func keepLast(s []string, l string) []string {
	s = append(s, l)
	if len(s) > MaxExamples {
		s = s[len(s)-MaxExamples:]
	}
	return s
}

// Absent fails when the log shows the failure at all, naming the pattern, the count and
// example lines, and whether the shape was the documented one.
func (f Finding) Absent() error {
	if f.Total() == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: istiod logged %d line(s) matching %q", f.ID, f.Count, f.Pattern)
	if f.OlderPattern != "" {
		fmt.Fprintf(&b, " and %d matching the same failure as older Istio releases log it (%q)", f.Older, f.OlderPattern)
	}
	writeExamples(&b, "documented shape", f.Examples)
	writeExamples(&b, "older wording", f.OlderExamples)
	if fix := findingFix[f.ID]; fix != "" {
		b.WriteString("\n" + fix)
	}
	return errors.New(b.String())
}

var findingFix = map[string]string{
	"CP-001": "seed 000: check that the istio-sidecar-injector webhook has a caBundle (CERT-003) and that clients trust istiod's root; transient errors stop, persistent ones point at a certificate the client rejects",
	"CP-002": "seed 000: istiod's service account lacks RBAC to read resources: reinstall the istio-discovery chart (ClusterRole/ClusterRoleBinding istiod-clusterrole[-<rev>]-<namespace>) and check that the istiod Deployment runs as the bound service account",
	"CP-003": "seed 000: the CA rejected a workload's token: check the JWT issuer configuration (JWT_POLICY, the API server's --service-account-issuer) and that workloads do not present expired tokens",
}

func writeExamples(b *strings.Builder, what string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "\nmost recent (%s):", what)
	for _, l := range lines {
		b.WriteString("\n  " + l)
	}
}

// LogFindings is a scan of istiod's logs for the control-plane behaviours.
type LogFindings struct {
	// Lines is the number of lines scanned.
	Lines int
	// TLSBadCertificate is CP-001, CannotList CP-002, CAAuthFailed CP-003.
	TLSBadCertificate, CannotList, CAAuthFailed Finding
}

func (f LogFindings) String() string {
	return fmt.Sprintf("%d lines: CP-001 %d, CP-002 %d, CP-003 %d (+%d older wording)", f.Lines,
		f.TLSBadCertificate.Count, f.CannotList.Count, f.CAAuthFailed.Count, f.CAAuthFailed.Older)
}

// ScanIstiodLog counts the lines of istiod's log matching each documented pattern, keeping
// the most recent matches as evidence. Patterns are case-sensitive, as grep would apply them.
// It reads plain text and --log_as_json lines alike: the patterns match inside the JSON.
func ScanIstiodLog(text string) LogFindings {
	f := LogFindings{
		TLSBadCertificate: Finding{ID: "CP-001", Pattern: PatternTLSBadCertificate},
		CannotList:        Finding{ID: "CP-002", Pattern: PatternCannotList},
		CAAuthFailed:      Finding{ID: "CP-003", Pattern: PatternCAAuthFailed, OlderPattern: PatternCAAuthFailedSeed},
	}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		f.Lines++
		if reTLSBadCertificate.MatchString(line) {
			f.TLSBadCertificate.add(line, false)
		}
		if reCannotList.MatchString(line) {
			f.CannotList.add(line, false)
		}
		switch {
		case reCAAuthFailed.MatchString(line):
			f.CAAuthFailed.add(line, false)
		case reCAAuthFailedSeed.MatchString(line):
			f.CAAuthFailed.add(line, true)
		}
	}
	return f
}

// CheckTLSErrorsSettled is CP-001's warm-up rule. before and after are scans of the same
// logs (the same since time) at the start and the end of a quiet window. Seed 000 says
// these errors are usually informational and transient, and only persistent ones point at
// a problem; so it passes when the count is zero after warm-up, or did not grow over the
// window, and fails naming both counts and the latest lines otherwise.
func CheckTLSErrorsSettled(before, after LogFindings) error {
	b, a := before.TLSBadCertificate, after.TLSBadCertificate
	if a.Count == 0 || a.Count <= b.Count {
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "CP-001: istiod's lines matching %q grew from %d to %d over the window: the TLS errors persist, they are not warm-up transients",
		PatternTLSBadCertificate, b.Count, a.Count)
	writeExamples(&sb, "at the end of the window", a.Examples)
	sb.WriteString("\n" + findingFix["CP-001"])
	return errors.New(sb.String())
}

// IstiodSelector is the label selector of istiod's pods for a revision ("" for any).
func IstiodSelector(revision string) string {
	set := labels.Set{}
	for k, v := range defaultIstiodSelectors {
		set[k] = v
	}
	if revision != "" {
		set[istionames.RevisionLabel] = revision
	}
	return set.String()
}

// IstiodLogs returns the logs of every container of every istiod pod in istioNamespace
// (label app=istiod, and istio.io/rev=revision when revision is set) since the given time
// (zero: all), each section headed `==> ns/pod container <==`. A container that restarted
// also gives its previous instance's log, where errors from before the restart live. The
// text read so far is returned with any error.
func IstiodLogs(ctx context.Context, kube kubernetes.Interface, istioNamespace, revision string, since time.Time) (string, error) {
	sel := IstiodSelector(revision)
	list, err := kube.CoreV1().Pods(istioNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return "", fmt.Errorf("listing istiod pods (%s) in %s: %w", sel, istioNamespace, err)
	}
	if len(list.Items) == 0 {
		return "", fmt.Errorf("%w with %s in namespace %s: is Istio installed there (and is the revision right)? A managed control plane has no istiod pod to read",
			errNoIstiodPods, sel, istioNamespace)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var (
		b    strings.Builder
		errs []error
	)
	for i := range pods {
		p := &pods[i]
		for _, c := range p.Spec.Containers {
			if st := statusOf(p, c.Name); st != nil && st.RestartCount > 0 {
				// The previous instance may be gone (garbage-collected); that is no error.
				if text, err := containerLog(ctx, kube, p, c.Name, since, true); err == nil {
					fmt.Fprintf(&b, "==> %s/%s %s (previous) <==\n%s", p.Namespace, p.Name, c.Name, text)
					ensureNewline(&b)
				}
			}
			text, err := containerLog(ctx, kube, p, c.Name, since, false)
			if err != nil {
				errs = append(errs, fmt.Errorf("logs of %s/%s container %s: %w", p.Namespace, p.Name, c.Name, err))
				continue
			}
			fmt.Fprintf(&b, "==> %s/%s %s <==\n%s", p.Namespace, p.Name, c.Name, text)
			ensureNewline(&b)
		}
	}
	return b.String(), errors.Join(errs...)
}

func ensureNewline(b *strings.Builder) {
	if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
		b.WriteByte('\n')
	}
}

func containerLog(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod, container string, since time.Time, previous bool) (string, error) {
	opts := &corev1.PodLogOptions{Container: container, Previous: previous}
	if !since.IsZero() {
		t := metav1.NewTime(since)
		opts.SinceTime = &t
	}
	rc, err := kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, opts).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = rc.Close() }()
	out, err := io.ReadAll(rc)
	return string(out), err
}

func statusOf(p *corev1.Pod, container string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == container {
				return &list[i]
			}
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// TLSErrorsSettle applies CP-001's warm-up rule to the live logs: it scans istiod's logs
// since logsSince (the suite's start, or the end of its warm-up) now and every poll for window, failing as soon as the count of
// `TLS handshake error.*bad certificate` lines grows past the first scan's (with the new
// lines as evidence), and passing at the end of the window when it has not. A log read
// that fails fails the check: a window with a blind spot proves nothing. It returns the
// last scan, for the report.
func TLSErrorsSettle(ctx context.Context, kube kubernetes.Interface, istioNamespace, revision string, logsSince time.Time, window, poll time.Duration) (LogFindings, error) {
	var first, cur LogFindings
	err := wait.Throughout(ctx, window, poll, func(ctx context.Context, n int, since time.Duration) error {
		text, err := IstiodLogs(ctx, kube, istioNamespace, revision, logsSince)
		if err != nil {
			return fmt.Errorf("CP-001: reading istiod's logs (scan %d at +%v of a %v window): %w", n, since.Round(100*time.Millisecond), window, err)
		}
		cur = ScanIstiodLog(text)
		if n == 1 {
			first = cur
		}
		if err := CheckTLSErrorsSettled(first, cur); err != nil {
			return fmt.Errorf("%w\n(scan %d at +%v of a %v window)", err, n, since.Round(100*time.Millisecond), window)
		}
		return nil
	})
	var in *wait.Interrupted
	if errors.As(err, &in) {
		return cur, fmt.Errorf("CP-001: window interrupted after %v of %v (%d scans, no growth): %w", in.After.Round(100*time.Millisecond), window, in.Observations, in.Err)
	}
	if err != nil && first.Lines == 0 && cur.Lines == 0 {
		return first, err
	}
	return cur, err
}

// scanRun reads the run's istiod logs since the run began and scans them.
func scanRun(ctx context.Context, t *e2e.T) (LogFindings, error) {
	is := t.Run.State.Istio
	text, err := IstiodLogs(ctx, t.Run.Kube, is.Namespace, is.Revision, t.Run.State.Started)
	return ScanIstiodLog(text), err
}

// findingFields are a log finding as evidence; with an older pattern, both patterns and which
// of them matched.
func findingFields(f Finding, lines int) map[string]string {
	m := map[string]string{"pattern": f.Pattern, "matches": fmt.Sprint(f.Count), "lines scanned": fmt.Sprint(lines)}
	for i, ex := range f.Examples {
		m[fmt.Sprintf("example %d", i+1)] = ex
	}
	if f.OlderPattern != "" {
		m["older pattern"] = f.OlderPattern
		m["older matches"] = fmt.Sprint(f.Older)
		for i, ex := range f.OlderExamples {
			m[fmt.Sprintf("older example %d", i+1)] = ex
		}
		m["matched"] = f.Matched()
	}
	return m
}
