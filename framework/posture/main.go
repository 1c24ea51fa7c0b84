package posture

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const usage = `Usage: meshconform posture [flags]

Audits the Istio mesh of a cluster against POSTURE-001..007 (BEHAVIORS.md) without changing
anything: it only gets and lists (ClusterRole manifests/rbac/posture-clusterrole.yaml).

Exit status: 0 every check passed, 1 findings, 2 errors (unreachable cluster, missing
permissions, bad flags or allow list, a check that could not be evaluated).

Flags:
`

// options are the parsed flags of `meshconform posture`.
type options struct {
	kubeconfig, context string
	output, junitFile   string
	allowList           string
	istioNamespace      string
	revision            string
	namespaces          string
	timeout             time.Duration
}

// Main is `meshconform posture`: args are the arguments after "posture". It writes the report
// to stdout (and a JUnit file with --junit-file), errors to stderr, and returns the exit code:
// 0 all checks pass, 1 findings, 2 errors.
func Main(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("meshconform posture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&o.context, "context", "", "kubeconfig context (default: the current context)")
	fs.StringVar(&o.output, "output", FormatText, "report format: "+strings.Join(Formats(), ", "))
	fs.StringVar(&o.output, "o", FormatText, "shorthand for --output")
	fs.StringVar(&o.junitFile, "junit-file", "", "also write the report as JUnit XML to this file (for CI)")
	fs.StringVar(&o.allowList, "allow-list", "", "YAML allow list: entries by namespace, workload, selector or annotation, each with a reason")
	fs.StringVar(&o.istioNamespace, "istio-namespace", "", "namespace of istiod and its mesh config (default: where istiod pods run, else istio-system)")
	fs.StringVar(&o.revision, "revision", "", "Istio revision whose mesh config (ConfigMap istio-<revision>) names the root namespace")
	fs.StringVar(&o.namespaces, "namespaces", "", "comma-separated namespaces to limit the per-workload checks (002, 004-006) to; default all")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on the whole audit after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitPass
		}
		return ExitError // the flag package has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meshconform posture: unexpected argument %q (it takes flags only; see --help)\n", fs.Arg(0))
		return ExitError
	}
	if !slices.Contains(Formats(), o.output) {
		fmt.Fprintf(stderr, "meshconform posture: --output %q: use one of %s\n", o.output, strings.Join(Formats(), ", "))
		return ExitError
	}
	if o.timeout <= 0 {
		fmt.Fprintf(stderr, "meshconform posture: --timeout %s: must be positive\n", o.timeout)
		return ExitError
	}
	cfg := Config{IstioNamespace: o.istioNamespace, Revision: o.revision}
	for _, ns := range strings.Split(o.namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			cfg.Namespaces = append(cfg.Namespaces, ns)
		}
	}
	if o.allowList != "" {
		al, err := LoadAllowList(o.allowList)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform posture: %v\n", err)
			return ExitError
		}
		cfg.Allow = al
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	r := audit(ctx, o, cfg, stderr)
	if err := Write(stdoutFor(o, r, stdout), r, o.output); err != nil {
		fmt.Fprintf(stderr, "meshconform posture: writing the report: %v\n", err)
		return ExitError
	}
	if o.junitFile != "" {
		if err := writeJUnitFile(o.junitFile, r); err != nil {
			fmt.Fprintf(stderr, "meshconform posture: %v\n", err)
			return ExitError
		}
	}
	return r.ExitCode()
}

// stdoutFor: when the audit could not run, the text report would be an empty table, so the
// message on stderr says it all; JSON and JUnit still go out, for the CI that parses them.
func stdoutFor(o options, r Report, stdout io.Writer) io.Writer {
	if r.Error != "" && o.output == FormatText {
		return io.Discard
	}
	return stdout
}

// audit connects, checks permissions up front, and runs. Problems that stop the audit come
// back as a Report whose every check is Error, explained on stderr.
func audit(ctx context.Context, o options, cfg Config, stderr io.Writer) Report {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
	r := Report{Context: o.context, Started: time.Now().UTC()}
	if raw, err := cc.RawConfig(); err == nil && r.Context == "" {
		r.Context = raw.CurrentContext
	}
	restCfg, err := cc.ClientConfig()
	if err != nil {
		return stopped(r, stderr, fmt.Sprintf("cannot load the kubeconfig (context %q): %v; pass --kubeconfig and --context, or set KUBECONFIG", r.Context, err), nil)
	}
	r.Server = restCfg.Host
	restCfg.Timeout = 30 * time.Second // per request: an unreachable server fails fast
	if restCfg.UserAgent == "" {
		restCfg.UserAgent = "meshconform-posture"
	}
	c, err := NewClients(restCfg)
	if err != nil {
		return stopped(r, stderr, err.Error(), nil)
	}

	missing, err := MissingPermissions(ctx, c.Kube)
	if err != nil {
		if !isAPIStatus(err) {
			return stopped(r, stderr, fmt.Sprintf("cannot reach the cluster of context %q at %s: %v (is it running, and is this the context you mean? try: kubectl --context %s cluster-info)",
				r.Context, r.Server, err, r.Context), nil)
		}
		return stopped(r, stderr, fmt.Sprintf("the API server of context %q at %s refused the permission check: %v", r.Context, r.Server, err), nil)
	}
	if len(missing) > 0 {
		var names []string
		for _, p := range missing {
			names = append(names, p.String())
		}
		msg := fmt.Sprintf("missing permissions%s in context %q at %s: %s; bind the ClusterRole in manifests/rbac/posture-clusterrole.yaml (see the README)",
			whoAmI(ctx, c.Kube), r.Context, r.Server, strings.Join(names, "; "))
		return stopped(r, stderr, msg, names)
	}

	rep, err := Run(ctx, c, cfg)
	rep.Context, rep.Server = r.Context, r.Server
	if err != nil {
		return stopped(rep, stderr, fmt.Sprintf("audit of context %q at %s: %v", r.Context, r.Server, err), nil)
	}
	for _, ch := range rep.Checks {
		if ch.Result == Error {
			fmt.Fprintf(stderr, "meshconform posture: %s could not be evaluated: %s\n", ch.ID, ch.Error)
		}
	}
	return rep
}

// stopped marks every check Error with msg and prints msg (and each missing permission) on stderr.
func stopped(r Report, stderr io.Writer, msg string, missing []string) Report {
	r.Error, r.MissingPermissions = msg, missing
	r.Checks = nil
	for _, id := range CheckIDs() {
		r.Checks = append(r.Checks, CheckResult{ID: id, Title: title(id), Result: Error, Error: msg,
			Findings: []Finding{}, Allowed: []Finding{}})
	}
	fmt.Fprintf(stderr, "meshconform posture: %s\n", msg)
	for _, m := range missing {
		fmt.Fprintf(stderr, "  missing: %s\n", m)
	}
	return r
}

// whoAmI names the user for the missing-permissions message, best effort (SelfSubjectReview
// is allowed to every authenticated user from Kubernetes 1.28).
func whoAmI(ctx context.Context, kube kubernetes.Interface) string {
	ssr, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || ssr.Status.UserInfo.Username == "" {
		return ""
	}
	return " for " + ssr.Status.UserInfo.Username
}

func writeJUnitFile(path string, r Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit-file: %w", err)
	}
	if err := WriteJUnit(f, r); err != nil {
		f.Close()
		return fmt.Errorf("--junit-file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--junit-file %s: %w", path, err)
	}
	return nil
}
