package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"meshconform/framework/report"
)

const reportUsage = `Usage: meshconform report <merge|diff|build|check|timings> [flags] [arguments]

  merge RUN...              many runs into one matrix (Markdown, HTML)
  diff BASE CANDIDATE       behaviours that got worse; exit 1 if any
  build GINKGO_REPORT       a conformance report from Ginkgo's JSON report or JUnit XML
  check REPORT WANT...      does the run show exactly these states? exit 1 if not
  timings REPORT...         min, median and max of each phase and spec over repeated runs
`

func reportCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, reportUsage)
		return exitOK
	case "merge":
		return mergeCmd(args[1:], stdout, stderr)
	case "diff":
		return diffCmd(args[1:], stdout, stderr)
	case "build":
		return buildCmd(args[1:], stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "timings":
		return timingsCmd(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "meshconform report: unknown subcommand %q\n\n%s", args[0], reportUsage)
		return exitUsage
	}
}

const mergeUsage = `Usage: meshconform report merge [flags] RUN...

Lays runs side by side: behaviours down, Istio × Kubernetes versions across. A RUN is a
conformance report (conformance.json or .yaml), a Ginkgo JSON report or Ginkgo JUnit XML, or a
directory searched for them (e.g. the downloaded artifacts of every matrix cell). Runs of the
same versions are combined: any failure fails the cell, the worst classification wins.

Writes Markdown (for $GITHUB_STEP_SUMMARY) to stdout unless -markdown says where; -html writes
one self-contained page. Output is sorted, so the same runs give the same bytes. A column whose
runs measured their time (make e2e) ends with its run time; -durations shows beside each cell
the time its specs took (the HTML page has a box for it either way).

Exit status: 0 written (whatever the runs' results), 2 bad arguments or unreadable input.
`

func mergeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform report merge", mergeUsage, stdout, stderr)
	mdPath := fs.String("markdown", "-", "write the Markdown matrix here (- is stdout, empty: none)")
	htmlPath := fs.String("html", "", "write the self-contained HTML matrix here")
	jsonPath := fs.String("json", "", "write the matrix as JSON here (for tools)")
	durations := fs.Bool("durations", false, "show each cell's time beside it (its specs, setup to cleanup)")
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	runs, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(runs) == 0 {
		return usageError(fs, stderr, "needs at least one RUN")
	}
	reports, err := report.ReadAll(runs)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform report merge: %v\n", err)
		return exitUsage
	}
	m := report.Merge(reports...)
	m.Durations = *durations
	outputs := []struct {
		path   string
		render func(io.Writer) error
	}{
		{*mdPath, m.Markdown},
		{*htmlPath, m.HTML},
		{*jsonPath, func(w io.Writer) error { return writeJSON(w, m) }},
	}
	for _, o := range outputs {
		if err := writeOutput(o.path, stdout, o.render); err != nil {
			fmt.Fprintf(stderr, "meshconform report merge: %v\n", err)
			return exitUsage
		}
	}
	return exitOK
}

const diffUsage = `Usage: meshconform report diff [flags] BASE CANDIDATE

The regression gate. BASE and CANDIDATE are each a conformance report (JSON or YAML), a Ginkgo
JSON report or Ginkgo JUnit XML (behaviour IDs from the labels in the test case names), or a
directory holding the reports of one run (several suites' reports are combined). It lists
every behaviour that got worse:

  pass → fail, pass → skip, skip → fail
  documented → equivalent, documented → deviation, equivalent → deviation
  present in BASE, missing from CANDIDATE

and, without gating, improvements, behaviours new in CANDIDATE and the unchanged ones.

Both must be runs of the same data-plane mode (sidecar or ambient; a report that records none
ran sidecars): two modes are refused with exit status 2, never compared as one.

Exit status: 0 nothing got worse, 1 something did, 2 bad arguments, unreadable input, or
reports of two data-plane modes.
`

func diffCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform report diff", diffUsage, stdout, stderr)
	format := fs.String("format", "text", "output format: text, markdown or json")
	summary := fs.String("summary", "", "also append the Markdown diff to this file (e.g. $GITHUB_STEP_SUMMARY)")
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	paths, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(paths) != 2 {
		return usageError(fs, stderr, "needs BASE and CANDIDATE, got %d argument(s)", len(paths))
	}
	render := map[string]func(report.DiffResult, io.Writer) error{
		"text":     report.DiffResult.Text,
		"markdown": report.DiffResult.Markdown,
		"json":     func(d report.DiffResult, w io.Writer) error { return writeJSON(w, d) },
	}[*format]
	if render == nil {
		return usageError(fs, stderr, "invalid value %q for flag -format: want text, markdown or json", *format)
	}
	var sides [2]report.Report
	for i, p := range paths {
		r, err := report.Read(p)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform report diff: %s: %v\n", []string{"base", "candidate"}[i], err)
			return exitUsage
		}
		sides[i] = r
	}
	if err := report.Comparable(sides[0].Run, sides[1].Run); err != nil {
		fmt.Fprintf(stderr, "meshconform report diff: %s vs %s: %v\n", paths[0], paths[1], err)
		return exitUsage
	}
	d := report.Diff(sides[0], sides[1])
	if err := render(d, stdout); err != nil {
		fmt.Fprintf(stderr, "meshconform report diff: %v\n", err)
		return exitUsage
	}
	if *summary != "" {
		if err := appendOutput(*summary, d.Markdown); err != nil {
			fmt.Fprintf(stderr, "meshconform report diff: %v\n", err)
			return exitUsage
		}
	}
	if len(d.Regressions()) > 0 {
		return exitFinding
	}
	return exitOK
}

const buildUsage = `Usage: meshconform report build [flags] GINKGO_REPORT

Builds the conformance report of one run from Ginkgo's JSON report (--json-report) or JUnit XML
(--junit-report) and writes conformance.json and conformance.yaml into -o. Run metadata comes
from the suites' meshconform.run entries; the flags fill in what they did not record, and a
flag that contradicts a recorded version is an error.

Exit status: 0 written, 2 bad arguments or unreadable input.
`

func buildCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform report build", buildUsage, stdout, stderr)
	out := fs.String("o", "reports", "directory to write "+report.FileJSON+" and "+report.FileYAML+" into")
	var run report.Run
	fs.StringVar(&run.ID, "run-id", "", "run id")
	fs.StringVar(&run.IstioVersion, "istio-version", "", "Istio version the run tested")
	fs.StringVar(&run.IstioRevision, "istio-revision", "", "Istio revision the run tested")
	fs.StringVar(&run.KubernetesVersion, "kubernetes-version", "", "Kubernetes version of the cluster")
	fs.StringVar(&run.NodeImage, "node-image", "", "kind node image")
	fs.StringVar(&run.Cluster, "cluster", "", "created or existing")
	fs.BoolVar(&run.Strict, "strict", false, "the run was strict (fails on anything but documented outcomes)")
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	paths, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(paths) != 1 {
		return usageError(fs, stderr, "needs one GINKGO_REPORT, got %d argument(s)", len(paths))
	}
	if run.Cluster != "" && run.Cluster != report.ClusterCreated && run.Cluster != report.ClusterExisting {
		return usageError(fs, stderr, "invalid value %q for flag -cluster: want created or existing", run.Cluster)
	}
	r, err := report.Read(paths[0], report.WithRun(run))
	if err != nil {
		fmt.Fprintf(stderr, "meshconform report build: %v\n", err)
		return exitUsage
	}
	if err := r.WriteFiles(*out); err != nil {
		fmt.Fprintf(stderr, "meshconform report build: %v\n", err)
		return exitUsage
	}
	s := r.Summary
	fmt.Fprintf(stdout, "%s: %d behaviours: %d pass, %d fail, %d skip (%d documented, %d equivalent, %d deviation)\n",
		filepath.Join(*out, report.FileJSON), s.Behaviors, s.Passed, s.Failed, s.Skipped, s.Documented, s.Equivalent, s.Deviation)
	return exitOK
}

func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeOutput renders to a file, to stdout for "-", or nowhere for "".
func writeOutput(path string, stdout io.Writer, render func(io.Writer) error) error {
	switch path {
	case "":
		return nil
	case "-":
		return render(stdout)
	}
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func appendOutput(path string, render func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return errors.Join(render(f), f.Close())
}

const checkUsage = `Usage: meshconform report check REPORT WANT...

Checks one run's conformance report (conformance.json or .yaml, or a Ginkgo report) against
expectations, e.g. to require in CI that the behaviours a cluster can exercise passed and that
what it cannot was left out, not silently skipped. A WANT is:

  ID=RESULT[/CLASSIFICATION]   CERT-003=pass, MTLS-001=pass/documented
  *=RESULT                     every behaviour no other WANT names (e.g. '*=left-out')
  ID[TEXT]=RESULT              every spec of ID whose name contains TEXT (at least one), e.g.
                               'PROBE-001[injected spec]=pass' where the behaviour is left out
  baseline=STATUS              passed, failed or skipped

RESULT is pass, fail, skip, not-judged or left-out. Each mismatch is printed with what the run
saw.

Exit status: 0 every WANT holds, 1 one does not, 2 bad arguments or unreadable input.
`

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform report check", checkUsage, stdout, stderr)
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	rest, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(rest) < 2 {
		return usageError(fs, stderr, "needs REPORT and at least one WANT, got %d argument(s)", len(rest))
	}
	var wants []report.Want
	for _, a := range rest[1:] {
		w, err := report.ParseWant(a)
		if err != nil {
			return usageError(fs, stderr, "%v", err)
		}
		wants = append(wants, w)
	}
	r, err := report.Read(rest[0])
	if err != nil {
		fmt.Fprintf(stderr, "meshconform report check: %v\n", err)
		return exitUsage
	}
	if bad := r.Check(wants); len(bad) > 0 {
		fmt.Fprintf(stdout, "%s: %d mismatches with the %d expectations:\n", rest[0], len(bad), len(wants))
		for _, b := range bad {
			fmt.Fprintf(stdout, "  %s\n", b)
		}
		return exitFinding
	}
	fmt.Fprintf(stdout, "%s: all %d expectations hold (%s)\n", rest[0], len(wants), r.Run.Describe())
	return exitOK
}

const timingsUsage = `Usage: meshconform report timings REPORT...

Lays the timings of repeated runs of the same thing side by side (scripts/bench.sh, make bench):
for each phase of the run (preflight, cluster, images, istio, compile, baseline, specs, cleanup),
the run's total, and each spec with its measured parts (setup, convergence, mesh wait,
teardown), how many runs measured it and the minimum, median and maximum in seconds. A REPORT is
a conformance report (conformance.json or .yaml) written by make e2e.

Exit status: 0 printed, 2 bad arguments, unreadable input or no timings in any report.
`

func timingsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform report timings", timingsUsage, stdout, stderr)
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	rest, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(rest) == 0 {
		return usageError(fs, stderr, "needs at least one REPORT")
	}
	var runs []report.Report
	for _, path := range rest {
		r, err := report.Read(path)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform report timings: %v\n", err)
			return exitUsage
		}
		runs = append(runs, r)
	}
	rows := report.TimingSpreads(runs)
	if len(rows) == 0 {
		fmt.Fprintf(stderr, "meshconform report timings: no timings in %d report(s): they predate timings, or were not written by make e2e\n", len(runs))
		return exitUsage
	}
	report.WriteSpreads(stdout, len(runs), rows)
	return exitOK
}
