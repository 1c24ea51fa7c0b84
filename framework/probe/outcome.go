package probe

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxBodyExcerpt bounds the body an Outcome keeps: enough for Envoy's error texts and an
// httpbin /headers reply, small enough for a failure message.
const MaxBodyExcerpt = 4096

// Tool names for Outcome.Tool.
const (
	ToolCurl    = "curl"
	ToolOpenSSL = "openssl"
	// ToolGRPC ("grpc", grpc.go): Istio's echo client.
)

// Outcome is what one probe saw, with everything needed to judge it without rerunning.
type Outcome struct {
	Tool string // ToolCurl, ToolOpenSSL or ToolGRPC
	// GRPCCode is the gRPC status a ToolGRPC call ended with ("OK", "Unavailable",
	// "PermissionDenied", …); "" for curl and openssl, or when the client printed none.
	GRPCCode string
	// HTTPCode is curl's %{http_code}: 0 is curl's "000", no HTTP response. -1 for openssl;
	// for grpc, the echo server's reply StatusCode, -1 without a reply.
	HTTPCode int
	// CurlExit is curl's exit code as curl itself reported it (JSON, else its `curl: (N)`
	// line); -1 for openssl or when nothing said.
	CurlExit int
	// ExitCode is the process exit status as the transport reported it; -1 when lost.
	ExitCode int
	// ErrorLine is curl's `curl: (N) …` line (or one built from its JSON errormsg); for
	// openssl, the first error line it printed.
	ErrorLine string
	// Body is an excerpt of the response body (curl) or of openssl's summary (PEM left out).
	Body          string
	BodyBytes     int  // full size of what Body was cut from
	BodyTruncated bool // Body is shorter than BodyBytes
	// Headers holds the response headers asked for in HTTPRequest.CaptureHeaders, by the
	// name asked for (first value).
	Headers map[string]string
	// Duration is curl's time_total (the request as curl timed it); Elapsed is the wall
	// time of all attempts including exec overhead.
	Duration, Elapsed time.Duration
	Where             string   // the executor: "local", "pod ns/name container c"
	Command           []string // the command of the last attempt
	Stderr            string
	Attempts          int
	// Notes records disagreements between channels (e.g. transport exit 0 while curl says
	// 56) and retries, so a report shows them.
	Notes []string
}

func excerpt(b []byte) (string, int, bool) {
	if len(b) <= MaxBodyExcerpt {
		return string(b), len(b), false
	}
	cut := MaxBodyExcerpt
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]), len(b), true
}

// Summary is one line: where, codes, error. Used in histories.
func (o Outcome) Summary() string {
	var b strings.Builder
	switch o.Tool {
	case ToolOpenSSL:
		fmt.Fprintf(&b, "openssl exit=%d", o.ExitCode)
	case ToolGRPC:
		fmt.Fprintf(&b, "grpc code=%s exit=%d", orNone(o.GRPCCode), o.ExitCode)
	default:
		fmt.Fprintf(&b, "http_code=%03d exit=%d", max(o.HTTPCode, 0), o.CurlExit)
	}
	if o.ErrorLine != "" {
		fmt.Fprintf(&b, " %q", o.ErrorLine)
	} else if o.Body != "" && o.HTTPCode != 200 {
		fmt.Fprintf(&b, " body=%q", clip(oneLine(o.Body), 80))
	}
	return b.String()
}

// String prints the full evidence, for failure messages and reports.
func (o Outcome) String() string {
	var b strings.Builder
	tool := o.Tool
	if tool == "" {
		tool = ToolCurl
	}
	fmt.Fprintf(&b, "%s from %s: ", tool, orNone(o.Where))
	switch tool {
	case ToolOpenSSL:
		fmt.Fprintf(&b, "exit=%d", o.ExitCode)
	case ToolGRPC:
		fmt.Fprintf(&b, "code=%s status_code=%d exit=%d", orNone(o.GRPCCode), o.HTTPCode, o.ExitCode)
	default:
		fmt.Fprintf(&b, "http_code=%03d curl_exit=%d transport_exit=%d", max(o.HTTPCode, 0), o.CurlExit, o.ExitCode)
	}
	fmt.Fprintf(&b, " in %v (wall %v), %d attempt(s)\n", o.Duration, o.Elapsed, o.Attempts)
	fmt.Fprintf(&b, "  command: %s\n", shellJoin(o.Command))
	fmt.Fprintf(&b, "  error:   %s\n", orNone(o.ErrorLine))
	if len(o.Headers) > 0 {
		b.WriteString("  headers:\n")
		for _, k := range slices.Sorted(maps.Keys(o.Headers)) {
			fmt.Fprintf(&b, "    %s: %s\n", k, o.Headers[k])
		}
	}
	switch {
	case o.BodyBytes == 0:
		b.WriteString("  body:    (empty)\n")
	case o.BodyTruncated:
		fmt.Fprintf(&b, "  body (first %d of %d bytes):\n%s\n", len(o.Body), o.BodyBytes, indent(o.Body))
	default:
		fmt.Fprintf(&b, "  body (%d bytes):\n%s\n", o.BodyBytes, indent(o.Body))
	}
	if s := strings.TrimSpace(o.Stderr); s != "" {
		fmt.Fprintf(&b, "  stderr:\n%s\n", indent(s))
	}
	for _, n := range o.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return strings.TrimRight(b.String(), "\n")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    | " + l
	}
	return strings.Join(lines, "\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// shellJoin prints a command so that it can be pasted into a shell.
func shellJoin(cmd []string) string {
	out := make([]string, len(cmd))
	for i, a := range cmd {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
