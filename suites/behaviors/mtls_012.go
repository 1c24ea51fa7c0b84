package behaviors

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/expect"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// MySQLSeedError is the failure seed 002 shows for a server-first protocol, as the MySQL client
// prints it when the connection is lost before the server's greeting; clients append ",
// system error: N".
const MySQLSeedError = "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet'"

// MySQLCommand is MTLS-012's client call, for the mysql-client sample against the mysql
// sample (root with an empty password, MYSQL_ALLOW_EMPTY_PASSWORD): one query, no TTY, so the
// client prints tab-separated batch output ("1\n1\n") and its error line on stderr. The
// connect timeout bounds a server that never greets, which is the failure under test.
func MySQLCommand(host string, port int) []string {
	return []string{"mysql", "-h", host, "-P", strconv.Itoa(port), "-uroot", "--connect-timeout=10", "-e", "SELECT 1"}
}

// MySQLOutcome is what one MySQLCommand run showed.
type MySQLOutcome struct {
	// Connected: the query ran and printed its result.
	Connected bool
	// Error is the client's `ERROR …` line ("" when none); Code its number (e.g. "2013") and
	// SQLState its state (e.g. "HY000").
	Error, Code, SQLState string
	// SeedWords: Error is MySQLSeedError (with or without the system error suffix).
	SeedWords bool
	// InitialPacketLost: error 2013 before the server's greeting arrived, in any client's
	// words: the seed's; MariaDB's "Lost connection to server at 'handshake: reading initial
	// communication packet'"; MySQL's "… at 'waiting for initial communication packet'" when
	// no greeting came within --connect-timeout.
	InitialPacketLost bool
	// Exit is the client's exit status (-1 when the transport lost it).
	Exit int
	// Stdout and Stderr are what it printed, clipped.
	Stdout, Stderr string
}

func (o MySQLOutcome) String() string {
	switch {
	case o.Connected:
		return fmt.Sprintf("connected: SELECT 1 returned 1 (exit %d)", o.Exit)
	case o.Error != "":
		shape := "another error"
		switch {
		case o.SeedWords:
			shape = "lost before the greeting, in the seed's words"
		case o.InitialPacketLost:
			shape = "lost before the greeting"
		}
		return fmt.Sprintf("not connected: %s (exit %d, %s)", o.Error, o.Exit, shape)
	}
	return fmt.Sprintf("not connected, no ERROR line (exit %d); stdout %q stderr %q", o.Exit, o.Stdout, o.Stderr)
}

var (
	reMySQLError = regexp.MustCompile(`(?m)^ERROR (\d+)(?: \(([0-9A-Z]{5})\))?(?: at line \d+)?: (.*)$`)
	// A batch-mode SELECT 1 prints the column name, then the value, each on its own line.
	reSelectOne = regexp.MustCompile(`(?m)^1\r?\n1\r?$`)
)

// ParseMySQLOutcome reads a MySQLCommand run. It does not trust the exit status alone (exec
// transports lose it): a printed result is a connection, an ERROR line is a failure.
func ParseMySQLOutcome(stdout, stderr string, exit int) MySQLOutcome {
	o := MySQLOutcome{Exit: exit, Stdout: clip(strings.TrimSpace(stdout), 500), Stderr: clip(strings.TrimSpace(stderr), 500)}
	m := reMySQLError.FindStringSubmatch(stderr)
	if m == nil {
		m = reMySQLError.FindStringSubmatch(stdout)
	}
	if m != nil {
		o.Error = strings.TrimRight(m[0], "\r")
		o.Code, o.SQLState = m[1], m[2]
		msg := m[3]
		o.SeedWords = strings.HasPrefix(o.Error, MySQLSeedError)
		o.InitialPacketLost = o.Code == "2013" && strings.Contains(msg, "initial communication packet")
	}
	o.Connected = o.Error == "" && (exit == 0 || exit == -1) && reSelectOne.MatchString(stdout)
	return o
}

// MySQLClient is how MTLS-012's mesh client reaches the server, after Istio's own
// server-first cases (tests/integration/pilot/common/routing.go serverFirstTestCases, port
// tcp-server).
type MySQLClient string

const (
	// MySQLMTLS: the client's sidecar sends mTLS (auto mTLS, Istio's ISTIO_MUTUAL case). The
	// server's sidecar sees TLS, so nothing waits on the client: it connects under PERMISSIVE
	// and STRICT (check.OK() for both).
	MySQLMTLS MySQLClient = "mTLS"
	// MySQLPlaintext: a DestinationRule DISABLE makes the client's sidecar send plaintext
	// (Istio's DISABLE case). Under PERMISSIVE the server's sidecar waits for the client's first
	// bytes to tell TLS from plaintext, with no timeout by default, while MySQL waits to greet
	// first: the connection is lost before the greeting (check.Error()).
	MySQLPlaintext MySQLClient = "plaintext"
)

// ClassifyMySQL judges one MySQLCommand run of a client: documented when it shows what Istio's
// case for that client does, a deviation otherwise (neither has another known shape).
func ClassifyMySQL(c MySQLClient, o MySQLOutcome) (expect.Classification, string) {
	switch {
	case c == MySQLMTLS && o.Connected:
		return expect.Documented, "an mTLS client connects: " + o.String()
	case c == MySQLMTLS:
		return expect.Deviation, "an mTLS client did not connect (Istio's tcp-server ISTIO_MUTUAL case connects): " + o.String()
	case o.InitialPacketLost:
		return expect.Documented, "a plaintext client loses the connection before the greeting: " + o.String()
	case o.Connected:
		return expect.Deviation, "a plaintext client connected (Istio's tcp-server DISABLE case under PERMISSIVE fails): " + o.String()
	}
	return expect.Deviation, "a plaintext client failed otherwise than before the greeting: " + o.String()
}

// mysqlPlaintext is MTLS-012's DestinationRule DISABLE for the server, in the client's
// namespace so that it changes only this behaviour's client.
func mysqlPlaintext(e cases.Env) []policy.Object {
	return []policy.Object{policy.DestinationRule(e.NS(cases.Client), "mysql-plaintext", e.FQDN(cases.Server, "mysql"),
		policy.TLSMode(policy.TLSDisable))}
}

// MTLS-012: MySQL speaks first, which a sidecar mishandles only when it must guess the
// protocol: seed 002's ERROR 2013 is the plaintext client's (a DestinationRule DISABLE) under
// PERMISSIVE, while the mesh client's auto mTLS connects under PERMISSIVE and STRICT. Each
// case converges on its documented outcome N times in a row.
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-012", Name: "MySQL: a mesh client's mTLS connects under PERMISSIVE and STRICT; its plaintext (DISABLE) loses the greeting under PERMISSIVE",
	Namespaces: []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: []workload.Sample{workload.MySQL}},
		{Role: cases.Client, Meshed: true, Samples: []workload.Sample{workload.MySQLClient}},
	},
	Objects: func(e cases.Env) []policy.Object { return append(mysqlPlaintext(e), namespaceStrict(e)...) },
	Writes:  func(e cases.Env) []cases.Write { return deleted(mysqlPlaintext(e)) },
	Run: func(ctx context.Context, t *e2e.T) {
		ex := t.Executor(ctx, cases.Source{Role: cases.Client, Sample: workload.MySQLClient})
		h := t.Handles[cases.Server][workload.MySQL]
		cmd := MySQLCommand(h.Host(), int(h.Ports[0]))
		judge := func(what string, c MySQLClient) {
			GinkgoHelper()
			var o MySQLOutcome
			err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
				res, err := ex.Exec(ctx, cmd)
				if err != nil {
					return err
				}
				o = ParseMySQLOutcome(string(res.Stdout), string(res.Stderr), res.ExitCode)
				if class, why := ClassifyMySQL(c, o); class != expect.Documented {
					return errors.New(why)
				}
				return nil
			})
			_, why := ClassifyMySQL(c, o)
			t.Check(err, what+": "+why, map[string]string{what: o.String()})
		}

		By("PERMISSIVE (default): the mesh client's mTLS connects")
		judge("permissive, mTLS", MySQLMTLS)

		By("PERMISSIVE, DestinationRule DISABLE: the mesh client's plaintext loses the connection before the greeting")
		t.Apply(ctx, mysqlPlaintext(t.Env))
		judge("permissive, plaintext", MySQLPlaintext)

		By("STRICT, the DestinationRule deleted: the mesh client's mTLS connects")
		t.Delete(ctx, mysqlPlaintext(t.Env))
		t.Apply(ctx, namespaceStrict(t.Env))
		judge("strict, mTLS", MySQLMTLS)
	},
})
