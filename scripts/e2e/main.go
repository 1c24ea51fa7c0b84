// Command e2e drives one conformance run for `make e2e`: it brings the run up once (preflight,
// kind cluster or KUBE_CONTEXT, images, Istio), runs the suites with Ginkgo against it, and
// ends it as KEEP_CLUSTER says, also on Ctrl-C. Settings come from the environment (see
// `go run ./scripts/e2e help`).
//
//	go run ./scripts/e2e [run] [-- extra ginkgo flags]   up, suites, down; exit code of the suites
//	go run ./scripts/e2e preflight                       only the checks
//	go run ./scripts/e2e up                              bring up; print the state file to export
//	go run ./scripts/e2e down [passed|failed|interrupted] end the run `up` brought up
//	go run ./scripts/e2e delete                          delete the kind cluster CLUSTER_NAME
//	go run ./scripts/e2e upgrade [-- extra ginkgo flags] the upgrade gate, FROM → TO (upgrade.go)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"meshconform/framework/cluster"
	"meshconform/framework/cluster/preflight"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/suitebin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the driver at once (abandoning cleanup).
		<-ctx.Done()
		stop()
	}()
	os.Exit(Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command in args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "--" {
		cmd, args = args[0], args[1:]
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		usage(stdout)
		return 0
	}
	wd, _ := os.Getwd()
	s, err := settings.Load(os.LookupEnv, nil, wd)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: settings:\n%v\n(see `go run ./scripts/e2e help`)\n", indentLines(err.Error()))
		return 2
	}
	switch cmd {
	case "run":
		return run(ctx, s, ginkgoExtra(args), wd, stdout, stderr)
	case "upgrade":
		return runUpgrade(ctx, s, ginkgoExtra(args), wd, stdout, stderr)
	case "preflight":
		results, err := preflight.Run(ctx, s, preflight.Options{Charts: provision.MeshChartCheck})
		preflight.Print(stderr, results)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "up":
		st, code := provision.Start(ctx, s, stderr)
		if code != 0 {
			return code
		}
		fmt.Fprintf(stdout, "export %s=%s\n", provision.StateEnv, provision.StatePath(st.RunDir))
		return 0
	case "down":
		outcome := provision.Passed
		if len(args) > 0 {
			if outcome, err = provision.ParseOutcome(args[0]); err != nil {
				fmt.Fprintf(stderr, "meshconform: down: %v\n", err)
				return 2
			}
		}
		path := os.Getenv(provision.StateEnv)
		if path == "" {
			path = provision.StatePath(filepath.Join(s.ReportsDir, "run"))
		}
		st, err := provision.LoadState(path)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform: %v\n", err)
			return 1
		}
		if err := provision.Down(ctx, st, outcome, stderr); err != nil {
			fmt.Fprintf(stderr, "meshconform: %v\n", err)
			return 1
		}
		return 0
	case "delete":
		if s.Existing() {
			fmt.Fprintf(stderr, "meshconform: KUBE_CONTEXT=%s is an existing cluster: the suite never deletes one\n", s.KubeContext)
			return 2
		}
		k := cluster.NewKind(s.ClusterName, cluster.WithKubeconfigPath(filepath.Join(s.ReportsDir, "run", "kubeconfig")))
		if err := k.Destroy(ctx); err != nil {
			fmt.Fprintf(stderr, "meshconform: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "meshconform: deleted kind cluster %s (if it existed)\n", s.ClusterName)
		return 0
	}
	fmt.Fprintf(stderr, "meshconform: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `go run ./scripts/e2e [run|preflight|up|down|delete|upgrade|help] [-- extra ginkgo flags]

  run        preflight, cluster, images, Istio; the suites (go tool ginkgo); then KEEP_CLUSTER
  preflight  only the checks, every problem at once
  up         bring the run up and print "export MESHCONFORM_STATE=…" for later ginkgo runs
  down       end a run that up brought up (argument: passed, failed or interrupted)
  delete     delete the kind cluster CLUSTER_NAME
  upgrade    the upgrade gate (make e2e-upgrade): FROM=<istio> TO=<istio> (full versions, FROM
             older). A fresh kind cluster with Istio FROM; the upgrade suite (./suites/upgrade)
             and the behaviour suites (LABELS, default '!slow') into REPORTS_DIR/upgrade/base;
             Istio upgraded in place to TO, suites again into …/inplace; TO installed as
             revision canary, suites against it into …/canary; report diff of base against
             inplace and canary. Exit 1 when a behaviour got worse or the upgrade suite failed,
             2 when a report is missing or FROM/TO are wrong, 130 on Ctrl-C. KEEP_CLUSTER as
             for run; KUBE_CONTEXT is refused. REUSE_CLUSTER=1 runs on a kept kind cluster
             that has no Istio and, pass or fail, uninstalls every revision it installed
             (the cluster is left as found). PHASES=inplace runs base and the in-place
             upgrade only (one flow; canary needs inplace before it).

Settings (environment variables; the Makefile passes them through):
`)
	fmt.Fprint(w, settings.Usage())
}

func ginkgoExtra(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

// run is up → suites → down, as provision.Session does every driver's run. The exit code is the
// suites' (1 when up fails, 130 on interrupt).
func run(ctx context.Context, s settings.Settings, extra []string, wd string, stdout, stderr io.Writer) int {
	return provision.Session(ctx, s, stderr, func(ctx context.Context, st provision.State) int {
		return suites(ctx, s, provision.StatePath(st.RunDir), extra, wd, stdout, stderr)
	}, provision.AfterDown(func(e provision.Ended) {
		closingTable(filepath.Join(s.ReportsDir, report.ConformanceSuite), e, stdout, stderr)
		fmt.Fprintf(stderr, "meshconform: reports in %s\n", s.ReportsDir)
	}))
}

// closingTable ends a run's output: the cleanup's time and the run's total added to the
// conformance report the suites wrote into dir (this run's only), then its closing table. The
// suite leaves the table to the driver (provision.SuitesStartedEnv), so that it comes last and
// counts the whole run.
func closingTable(dir string, e provision.Ended, stdout, stderr io.Writer) {
	rep, err := report.RecordEnd(dir, e.State.RunID, e.Cleanup, e.Total)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: closing table: %v\n", err)
		return
	}
	fmt.Fprintf(stdout, "\n%s\nconformance report: %s\n", rep.SummaryText(), dir)
}

// GinkgoArgs are the flags of `go tool ginkgo` for the settings: the e2e build tag, parallel
// processes, the label filter, JUnit and JSON reports into REPORTS_DIR, progress reports for
// slow specs; extra flags go last (they win); the suite package ends the list.
func GinkgoArgs(s settings.Settings, extra []string) []string {
	args := []string{"tool", "ginkgo", "--tags=e2e"}
	if s.Procs > 0 {
		args = append(args, "--procs="+strconv.Itoa(s.Procs))
	} else {
		args = append(args, "-p")
	}
	if s.Labels != "" {
		args = append(args, "--label-filter="+s.Labels)
	}
	args = append(args,
		"--junit-report=junit.xml", "--json-report=report.json", "--output-dir="+s.ReportsDir,
		"--poll-progress-after=2m", "--poll-progress-interval=1m",
		"--timeout=2h")
	args = append(args, extra...)
	return append(args, "./suites")
}

// suites runs Ginkgo in the module root with the state file exported; on interrupt Ginkgo gets
// SIGINT (its own cleanup runs) and, past a grace period, is killed.
func suites(ctx context.Context, s settings.Settings, statePath string, extra []string, wd string, stdout, stderr io.Writer) int {
	return ginkgo(ctx, wd, GinkgoArgs(s, extra), []string{provision.StateEnv + "=" + statePath,
		provision.SuitesStartedEnv + "=" + time.Now().Format(time.RFC3339Nano)}, stdout, stderr)
}

// ginkgo runs `go <args>` (go tool ginkgo …) in the module root with env added to the
// driver's environment, and returns its exit code (1 when it could not run). The suite package
// the args end with is run as its precompiled binary (Precompiled), linked only when its source
// changed.
func ginkgo(ctx context.Context, wd string, args, env []string, stdout, stderr io.Writer) int {
	root, ok := settings.ModuleRoot(wd)
	if !ok {
		fmt.Fprintf(stderr, "meshconform: run from inside the meshconform checkout (no go.mod of module meshconform above %s)\n", wd)
		return 1
	}
	args, suite, ok := Precompiled(args)
	if ok {
		suite.Root = root
		b, err := suite.Binary(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform: %v\n", err)
			return 1
		}
		how := "linked"
		if b.Cached {
			how = "cached"
		}
		fmt.Fprintf(stderr, "meshconform: suite %s: %s binary (key %s) in %s\n", suite.Package, how, b.Key[:12], provision.Elapsed(b.Took))
		args = append(args, b.Path)
		env = append(env, settings.WorkDirEnv+"="+wd)
	}
	fmt.Fprintf(stderr, "meshconform: suites: go %s\n", joinArgs(args))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 3 * time.Minute
	start := time.Now()
	err := cmd.Run()
	fmt.Fprintf(stderr, "meshconform: suites ended after %s\n", provision.Elapsed(time.Since(start)))
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		return exitErr.ExitCode()
	}
	fmt.Fprintf(stderr, "meshconform: suites: %v\n", err)
	return 1
}

// Precompiled splits `go tool ginkgo` args that build a suite (--tags=…, the package last) into
// the args that run its binary instead (the package dropped: the caller appends the binary) and
// the suite to build; ok is false when the args name no package.
func Precompiled(args []string) (out []string, s suitebin.Suite, ok bool) {
	if len(args) == 0 || !strings.HasPrefix(args[len(args)-1], "./") {
		return args, s, false
	}
	s.Package = args[len(args)-1]
	for _, a := range args[:len(args)-1] {
		if tags, isTags := strings.CutPrefix(a, "--tags="); isTags {
			s.Tags = strings.Split(tags, ",")
			continue
		}
		out = append(out, a)
	}
	return out, s, true
}

// joinArgs writes args as a shell would need them, quoting only what needs it.
func joinArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"&|!()<>;$*?") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func indentLines(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
