package probe

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ToolGRPC is Outcome.Tool for a call made with Istio's echo client
// (istio.io/istio pkg/test/echo/cmd/client), the proxyless data plane's probe.
const ToolGRPC = "grpc"

// GRPCOK is Outcome.GRPCCode of a call that succeeded (google.golang.org/grpc/codes.OK); a
// failed one carries the code status.Error printed ("rpc error: code = <Code> desc = …").
const GRPCOK = "OK"

// DefaultGRPCTimeout bounds one echo-client call (its --timeout) when GRPCRequest.Timeout is 0.
const DefaultGRPCTimeout = 10 * time.Second

// GRPCRequest is one call of Istio's echo client.
type GRPCRequest struct {
	// URL is the client's target: xds:///<svc>.<ns>.svc.cluster.local:<port> resolves through
	// the pod's xDS bootstrap (GRPC_XDS_BOOTSTRAP, the grpc-agent template sets it on every
	// container) and so takes istiod's listeners, clusters and TLS; grpc://host:port is a
	// plain gRPC call (server/forwarder/grpc.go: non-blocking dial, insecure credentials).
	URL string
	// Headers are sent as gRPC metadata (the client's -H "name: value").
	Headers map[string]string
	// Timeout is the client's --timeout; 0 means DefaultGRPCTimeout.
	Timeout time.Duration
	// Binary is the echo client to run; default "client" (on PATH in the echo image).
	Binary string
	// Attempts bounds the runs when the client printed nothing at all (a lost exec stream);
	// default 2.
	Attempts int
}

func (r GRPCRequest) binary() string {
	if r.Binary == "" {
		return "client"
	}
	return r.Binary
}

// Command is the echo client's command line for r.
func (r GRPCRequest) Command() []string {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultGRPCTimeout
	}
	cmd := []string{r.binary(), r.URL, "--count=1", "--timeout=" + timeout.String()}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		cmd = append(cmd, "-H", k+": "+r.Headers[k])
	}
	return cmd
}

// podLocks serializes the calls made through one executor (one pod's container). The
// grpc-agent's xDS proxy keeps one downstream stream and closes the previous one when another
// registers ("registered overlapping stream; closing previous", pkg/istio-agent/xds_proxy.go
// at both pinned commits; istio/istio#53532), and every echo-client process is an xDS client
// of its own: two at once from one pod would break each other.
var podLocks sync.Map // Executor.String() → *sync.Mutex

func lockFor(ex Executor) func() {
	m, _ := podLocks.LoadOrStore(ex.String(), &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// GRPC runs Istio's echo client where ex runs commands and reads its outcome. A failed RPC is
// an outcome (GRPCCode, ErrorLine), not an error; an error means the client could not be run
// or said nothing at all.
func GRPC(ctx context.Context, ex Executor, r GRPCRequest) (Outcome, error) {
	unlock := lockFor(ex)
	defer unlock()
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 2
	}
	cmd := r.Command()
	start := time.Now()
	var o Outcome
	for i := 1; i <= attempts; i++ {
		t := time.Now()
		res, err := ex.Exec(ctx, cmd)
		took := time.Since(t)
		if mb := missingBinary(r.binary(), ex.String(), res, err); mb != nil {
			return Outcome{Tool: ToolGRPC, Where: ex.String(), Command: cmd, HTTPCode: -1, CurlExit: -1, ExitCode: -1}, mb
		}
		o = ParseGRPC(res)
		o.Where, o.Command, o.Attempts = ex.String(), cmd, i
		// The echo client prints no timing of its own beyond the server's Latency: Duration is
		// the attempt's exec, Elapsed all attempts'.
		o.Duration, o.Elapsed = took, time.Since(start)
		if err != nil {
			o.Notes = append(o.Notes, fmt.Sprintf("attempt %d: transport: %v", i, err))
			if ctx.Err() != nil {
				return o, err
			}
		}
		if len(strings.TrimSpace(string(res.Stdout)+string(res.Stderr))) > 0 {
			return o, nil
		}
		o.Notes = append(o.Notes, fmt.Sprintf("attempt %d: the client printed nothing (exit %d)", i, res.ExitCode))
	}
	return o, fmt.Errorf("the echo client printed nothing in %d attempt(s) on %s", attempts, ex)
}

var (
	// reRPCError is status.Error's text: "rpc error: code = <Code> desc = <message>".
	reRPCError = regexp.MustCompile(`rpc error: code = (\w+) desc = (.*)`)
	// reStatusCode is the echo server's reply field (pkg/test/echo/fields.go StatusCodeField,
	// written by server/endpoint/grpc.go for every Echo: "StatusCode=200"), which the client
	// prints per request as "[<request> body] StatusCode=200".
	reStatusCode = regexp.MustCompile(`(?m)^\[\d+ body\] StatusCode=(\d+)\s*$`)
	// reFatal is the client's failure line: log.Fatalf("Error %s\n", err) in
	// cmd/client/main.go, through Istio's logger ("<time>\tfatal\tError …").
	reFatal = regexp.MustCompile(`(?m)\tfatal\t(.*)$`)
)

// ParseGRPC reads what Istio's echo client printed. The RPC succeeded (GRPCCode OK, HTTPCode
// the echo reply's StatusCode) when the client exited 0 and printed the reply's StatusCode; it
// failed with the code and message of the first "rpc error" it printed (ErrorLine holds them,
// "rpc error: code = … desc = …"), or, when none, with the client's fatal line. The exit code
// is in ExitCode; CurlExit is -1 (no curl ran), and HTTPCode is -1 unless the echo server's
// reply was printed.
func ParseGRPC(res ExecResult) Outcome {
	out := string(res.Stdout)
	all := out + "\n" + string(res.Stderr)
	o := Outcome{Tool: ToolGRPC, ExitCode: res.ExitCode, CurlExit: -1, HTTPCode: -1, Stderr: string(res.Stderr)}
	o.Body, o.BodyBytes, o.BodyTruncated = excerpt(res.Stdout)
	if m := reRPCError.FindStringSubmatch(all); m != nil {
		o.GRPCCode = m[1]
		o.ErrorLine = strings.TrimSpace(m[0])
	} else if m := reFatal.FindStringSubmatch(all); m != nil {
		o.ErrorLine = strings.TrimSpace(m[1])
	}
	if m := reStatusCode.FindStringSubmatch(out); m != nil && o.GRPCCode == "" {
		code, _ := strconv.Atoi(m[1])
		o.HTTPCode = code
		if res.ExitCode == 0 {
			o.GRPCCode = GRPCOK
		} else if res.ExitCode < 0 {
			// The transport lost the exit status, and the reply is there: the call succeeded.
			o.GRPCCode = GRPCOK
			o.Notes = append(o.Notes, "the transport lost the exit status; the reply says the call succeeded")
		}
	}
	if o.GRPCCode == "" && o.ErrorLine == "" && res.ExitCode != 0 {
		o.ErrorLine = firstLine(strings.TrimSpace(all))
	}
	return o
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
