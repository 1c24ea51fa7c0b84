// Command meshconform is the CLI around the conformance suites: it merges run reports into a
// matrix, diffs two runs (the upgrade gate), prints the supported versions for CI, and audits
// a cluster's security posture. The work is done by framework packages; this file only routes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `Usage: meshconform <command> [arguments]

Commands:
  report merge RUN...            many runs into one behaviour × version matrix (Markdown, HTML)
  report diff BASE CANDIDATE     list behaviours that got worse; exit 1 if any (the upgrade gate)
  report build GINKGO_REPORT     a conformance report from Ginkgo's JSON report or JUnit XML
  versions [matrix|upgrades|default-istio|default-node-image|kind-node-image|istio|kubernetes]
                                 facts from versions.yaml, for make and CI
  versions check                 Istio releases newer than versions.yaml's, and listed ones past
                                 their end of life, read from the chart source; exit 1 if any
  posture                        audit a cluster's mesh security posture (read-only)

Run 'meshconform <command> -h' for a command's flags.
`

// Exit codes shared by the commands.
const (
	exitOK      = 0
	exitFinding = 1 // the command worked and found something: a regression, a posture finding
	exitUsage   = 2 // bad flags or arguments, unreadable input
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: tests call it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "report":
		return reportCmd(args[1:], stdout, stderr)
	case "versions":
		return versionsCmd(args[1:], stdout, stderr)
	case "posture":
		return postureCmd(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "meshconform: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// parseFlags parses flags wherever they stand among the arguments (Go's flag package stops
// at the first argument), so `report merge cells/ -html m.html` works. After "--" everything
// is an argument. It returns the arguments, or the exit code when parsing ended the command.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK, false
		}
		if err != nil {
			// flag has printed the error, naming the flag, and the usage.
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet prints its usage (text, then flags) to stderr on a bad flag and to stdout on -h.
func newFlagSet(name, text string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, text)
		if hasFlags(fs) {
			fmt.Fprint(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// helpRequested reports whether -h/-help/--help is among args, so that help goes to stdout
// and exits 0 while a bad flag goes to stderr and exits 2.
func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		switch strings.TrimLeft(a, "-") {
		case "h", "help":
			return strings.HasPrefix(a, "-")
		}
	}
	return false
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// usageError reports a wrong number of arguments, with the command's usage.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.SetOutput(stderr)
	fs.Usage()
	return exitUsage
}
