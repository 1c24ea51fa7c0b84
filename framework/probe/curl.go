package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTPRequest is one curl call.
type HTTPRequest struct {
	URL     string
	Method  string // default GET
	Headers map[string]string
	Body    string
	// Timeout is curl's --max-time (the whole request); 0 means DefaultCurlTimeout.
	Timeout time.Duration
	// CaptureHeaders names response headers to keep in Outcome.Headers (case-insensitive).
	CaptureHeaders []string
	// Insecure skips server certificate checks (-k), for https to test servers.
	Insecure bool
	// CACert is PEM certificates to trust instead of the system's (curl --cacert). curl takes
	// them only from a file, so the command writes them to a file of its own first (sh and a
	// writable /tmp, as curl images have), runs curl, and removes the file.
	CACert string
	// ExtraArgs go before the URL, e.g. "--resolve", "h:80:10.0.0.1".
	ExtraArgs []string
	// Binary is the curl to run; default "curl".
	Binary string
	// Attempts bounds the runs when stdout comes back empty or cut (default 3).
	Attempts int
	// RetryDelay is the pause between such attempts (default 200ms).
	RetryDelay time.Duration
}

func (r HTTPRequest) binary() string {
	if r.Binary == "" {
		return "curl"
	}
	return r.Binary
}

// DefaultCurlTimeout bounds a request when HTTPRequest.Timeout is 0: Istio's own tests use
// a 30s call timeout, and a probe that never ends would hold a convergence loop.
const DefaultCurlTimeout = 30 * time.Second

// newMarker makes the markers that separate the body from curl's -w output unguessable
// for a server, so a body cannot forge them.
func newMarker() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "@@meshconform-" + hex.EncodeToString(b[:])
}

// CurlCommand builds the curl invocation for req. The body goes to stdout (-o -); after it
// curl's -w writes, on stdout too and so in order: a marker line with %{http_code} (a
// fallback for curls without %{json}), %{json}, a marker, %{header_json}, and an end marker
// whose absence shows that stdout was cut. -sS keeps the `curl: (N) …` line on stderr.
func CurlCommand(req HTTPRequest, marker string) []string {
	w := fmt.Sprintf(`\n%[1]sW http_code=%%{http_code}\n%%{json}\n%[1]sH\n%%{header_json}\n%[1]sE\n`, marker)
	cmd := []string{req.binary(), "-sS", "-o", "-", "-w", w}
	switch m := strings.ToUpper(req.Method); m {
	case "", "GET":
	case "HEAD":
		cmd = append(cmd, "--head")
	default:
		cmd = append(cmd, "-X", m)
	}
	for _, k := range slices.Sorted(maps.Keys(req.Headers)) {
		cmd = append(cmd, "-H", k+": "+req.Headers[k])
	}
	if req.Body != "" {
		cmd = append(cmd, "--data-raw", req.Body)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultCurlTimeout
	}
	cmd = append(cmd, "--max-time", strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	if req.Insecure {
		cmd = append(cmd, "-k")
	}
	cmd = append(cmd, req.ExtraArgs...)
	cmd = append(cmd, "--url", req.URL)
	if req.CACert == "" {
		return cmd
	}
	// sh -c SCRIPT sh PEM FILE CURL-ARGS...: the PEM is an argument, never parsed by the shell.
	file := "/tmp/meshconform-ca-" + strings.TrimPrefix(marker, "@@meshconform-") + ".pem"
	cmd = append(cmd, "--cacert", file)
	script := `printf '%s' "$1" > "$2" || exit 77; f=$2; shift 2; "$@"; rc=$?; rm -f "$f"; exit $rc`
	return append([]string{"sh", "-c", script, "sh", req.CACert, file}, cmd...)
}

// curlJSON is the part of curl's %{json} the Outcome uses.
type curlJSON struct {
	ExitCode  *int     `json:"exitcode"`
	ErrorMsg  string   `json:"errormsg"`
	HTTPCode  *int     `json:"http_code"`
	TimeTotal *float64 `json:"time_total"`
}

var curlErrLine = regexp.MustCompile(`(?m)^curl: \((\d+)\) .*$`)

// errIncomplete marks a stdout that lacks curl's -w output: lost by the transport.
var errIncomplete = errors.New("stdout incomplete")

// parseCurl reads one attempt's stdout and stderr into o.
func parseCurl(o *Outcome, marker string, res ExecResult, capture []string) error {
	o.ExitCode = res.ExitCode
	o.Stderr = string(res.Stderr)
	o.HTTPCode, o.CurlExit = 0, -1

	stderrExit := -1
	if m := curlErrLine.FindSubmatch(res.Stderr); m != nil {
		o.ErrorLine = string(m[0])
		stderrExit, _ = strconv.Atoi(string(m[1]))
	}

	out := res.Stdout
	if len(out) == 0 {
		return fmt.Errorf("%w: stdout empty", errIncomplete)
	}
	start := bytes.LastIndex(out, []byte("\n"+marker+"W "))
	end := bytes.LastIndex(out, []byte("\n"+marker+"E\n"))
	if start < 0 || end < start {
		return fmt.Errorf("%w: %d bytes of stdout without curl's -w trailer", errIncomplete, len(out))
	}
	o.Body, o.BodyBytes, o.BodyTruncated = excerpt(out[:start])
	trailer := string(out[start+1 : end])
	head, rest, _ := strings.Cut(trailer, "\n")
	jsonPart, headerPart, _ := strings.Cut(rest, "\n"+marker+"H\n")

	if code, err := strconv.Atoi(strings.TrimPrefix(head, marker+"W http_code=")); err == nil {
		o.HTTPCode = code
	}
	var j curlJSON
	if err := json.Unmarshal([]byte(jsonPart), &j); err != nil {
		o.Notes = append(o.Notes, fmt.Sprintf("curl's %%{json} did not parse (curl < 7.70?): %v", err))
	}
	if j.HTTPCode != nil {
		o.HTTPCode = *j.HTTPCode
	}
	if j.TimeTotal != nil {
		o.Duration = time.Duration(*j.TimeTotal * float64(time.Second))
	}

	switch {
	case j.ExitCode != nil:
		o.CurlExit = *j.ExitCode
		if stderrExit >= 0 && stderrExit != o.CurlExit {
			o.Notes = append(o.Notes, fmt.Sprintf("curl's JSON says exit %d, its stderr line says %d", o.CurlExit, stderrExit))
		}
	case stderrExit >= 0:
		o.CurlExit = stderrExit
	case res.ExitCode >= 0:
		o.CurlExit = res.ExitCode
	default:
		// -sS prints a `curl: (N)` line for every failure, and -w ran: no line means success.
		o.CurlExit = 0
		o.Notes = append(o.Notes, "exit code lost by the transport and not in curl's output; no curl error line, so 0")
	}
	if o.ErrorLine == "" && j.ErrorMsg != "" {
		o.ErrorLine = fmt.Sprintf("curl: (%d) %s", o.CurlExit, j.ErrorMsg)
	}
	if res.ExitCode >= 0 && res.ExitCode != o.CurlExit {
		o.Notes = append(o.Notes, fmt.Sprintf("transport reported exit %d, curl reported %d (curl's own report is used)", res.ExitCode, o.CurlExit))
	}

	if len(capture) > 0 {
		var hs map[string][]string
		if err := json.Unmarshal([]byte(strings.TrimSpace(headerPart)), &hs); err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("curl's %%{header_json} did not parse (curl < 7.83?): %v", err))
		}
		for _, want := range capture {
			for k, v := range hs {
				if strings.EqualFold(k, want) && len(v) > 0 {
					if o.Headers == nil {
						o.Headers = map[string]string{}
					}
					o.Headers[want] = v[0]
				}
			}
		}
	}
	return nil
}

// Curl runs curl through ex and returns what it saw. A non-2xx answer or a curl failure is
// an Outcome, not an error: errors are for probes that could not be judged (curl missing,
// transport failing, stdout lost on every attempt); the Outcome then holds what was seen.
func Curl(ctx context.Context, ex Executor, req HTTPRequest) (Outcome, error) {
	attempts := req.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	delay := req.RetryDelay
	if delay <= 0 {
		delay = 200 * time.Millisecond
	}
	begin := time.Now()
	var o Outcome
	var problems []string
	for i := 1; i <= attempts; i++ {
		marker := newMarker()
		cmd := CurlCommand(req, marker)
		res, err := ex.Exec(ctx, cmd)
		o = Outcome{Tool: ToolCurl, Where: ex.String(), Command: cmd, Attempts: i}
		if mb := missingBinary(req.binary(), ex.String(), res, err); mb != nil {
			o.Elapsed = time.Since(begin)
			return o, mb
		}
		if err != nil {
			o.ExitCode, o.CurlExit, o.Stderr = -1, -1, string(res.Stderr)
			problems = append(problems, fmt.Sprintf("attempt %d: %v", i, err))
		} else if perr := parseCurl(&o, marker, res, req.CaptureHeaders); perr != nil {
			problems = append(problems, fmt.Sprintf("attempt %d: %v (transport exit %d, stderr %q)", i, perr, res.ExitCode, clip(strings.TrimSpace(string(res.Stderr)), 200)))
		} else {
			if i > 1 {
				o.Notes = append(o.Notes, "retried: "+strings.Join(problems, "; "))
			}
			o.Elapsed = time.Since(begin)
			return o, nil
		}
		if ctx.Err() != nil {
			break
		}
		if i < attempts {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	o.Elapsed = time.Since(begin)
	o.Notes = append(o.Notes, problems...)
	return o, fmt.Errorf("curl %s via %s: no usable output after %d attempt(s): %s",
		req.URL, ex, o.Attempts, strings.Join(problems, "; "))
}
