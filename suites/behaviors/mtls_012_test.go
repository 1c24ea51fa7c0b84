package behaviors

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
)

func TestMySQLCommand(t *testing.T) {
	got := MySQLCommand("mysql.ns", 3306)
	want := []string{"mysql", "-h", "mysql.ns", "-P", "3306", "-uroot", "--connect-timeout=10", "-e", "SELECT 1"}
	if !slices.Equal(got, want) {
		t.Errorf("MySQLCommand = %q, want %q", got, want)
	}
}

// The command fits the samples: the server lets root in without a password on 3306, and the
// client pod has a mysql binary (the server's image).
func TestMySQLCommandFitsTheSamples(t *testing.T) {
	srv, err := workload.Load(workload.MySQL)
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Deployments[0].Spec.Template.Spec.Containers[0]
	emptyPassword := false
	for _, e := range c.Env {
		if e.Name == "MYSQL_ALLOW_EMPTY_PASSWORD" && e.Value == "yes" {
			emptyPassword = true
		}
		if e.Name == "MYSQL_ROOT_PASSWORD" {
			t.Errorf("the mysql sample sets a root password; MySQLCommand connects without one")
		}
	}
	if !emptyPassword {
		t.Errorf("the mysql sample does not allow root's empty password; MySQLCommand relies on it")
	}
	if p := srv.Services[0].Spec.Ports[0]; p.Port != 3306 || !strings.HasPrefix(p.Name, "tcp") {
		t.Errorf("the mysql Service port is %s %d; MTLS-012 calls 3306, declared TCP", p.Name, p.Port)
	}
	cli, err := workload.Load(workload.MySQLClient)
	if err != nil {
		t.Fatal(err)
	}
	cc := cli.Deployments[0].Spec.Template.Spec.Containers[0]
	if !strings.Contains(cc.Image, "mysql") {
		t.Errorf("the mysql-client sample runs %s, which may have no mysql binary", cc.Image)
	}
}

func TestParseMySQLOutcome(t *testing.T) {
	cases := []struct {
		name           string
		stdout, stderr string
		exit           int
		connected      bool
		code, state    string
		seedWords      bool
		initialLost    bool
		str            string
	}{
		{name: "connected", stdout: "1\n1\n", exit: 0, connected: true, str: "connected: SELECT 1 returned 1 (exit 0)"},
		{name: "connected, exit status lost by the transport", stdout: "1\n1\n", exit: -1, connected: true},
		{name: "connected, with a client warning", stdout: "1\n1\n", stderr: "mysql: [Warning] Using a password on the command line interface can be insecure.\n", exit: 0, connected: true},
		{name: "the seed's words, MySQL 8 client with the system error suffix",
			stderr: "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet', system error: 0\n", exit: 1,
			code: "2013", state: "HY000", seedWords: true, initialLost: true, str: "lost before the greeting, in the seed's words"},
		{name: "the seed's words, as seed 002 prints it",
			stderr: "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet'\n", exit: 1,
			code: "2013", state: "HY000", seedWords: true, initialLost: true},
		{name: "MariaDB's words for the same failure",
			stderr: "ERROR 2013 (HY000): Lost connection to server at 'handshake: reading initial communication packet', system error: 11\n", exit: 1,
			code: "2013", state: "HY000", initialLost: true, str: "lost before the greeting)"},
		{name: "no greeting within the connect timeout",
			stderr: "ERROR 2013 (HY000): Lost connection to MySQL server at 'waiting for initial communication packet', system error: 110\n", exit: 1,
			code: "2013", state: "HY000", initialLost: true},
		{name: "lost later, during the query",
			stderr: "ERROR 2013 (HY000): Lost connection to MySQL server during query\n", exit: 1, code: "2013", state: "HY000", str: "another error"},
		{name: "refused", stderr: "ERROR 2003 (HY000): Can't connect to MySQL server on 'mysql.ns:3306' (111)\n", exit: 1, code: "2003", state: "HY000"},
		{name: "unknown host", stderr: "ERROR 2005 (HY000): Unknown MySQL server host 'mysql.nope' (-2)\n", exit: 1, code: "2005", state: "HY000"},
		{name: "access denied", stderr: "ERROR 1045 (28000): Access denied for user 'root'@'10.244.0.12' (using password: NO)\n", exit: 1, code: "1045", state: "28000"},
		{name: "TLS broken by the mesh", stderr: "ERROR 2026 (HY000): SSL connection error: error:0A000126:SSL routines::unexpected eof while reading\n", exit: 1, code: "2026", state: "HY000"},
		{name: "SQL error at a line", stderr: "ERROR 1064 (42000) at line 1: You have an error in your SQL syntax\n", exit: 1, code: "1064", state: "42000"},
		{name: "error line on stdout (a TTY merges the streams)", stdout: "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet', system error: 104\r\n", exit: 1,
			code: "2013", state: "HY000", seedWords: true, initialLost: true},
		{name: "an ERROR line wins over a printed result", stdout: "1\n1\n", stderr: "ERROR 2013 (HY000): Lost connection to MySQL server during query\n", exit: 1, code: "2013", state: "HY000"},
		{name: "exit 0 but nothing printed", exit: 0, str: "no ERROR line"},
		{name: "exit 1, no ERROR line", stderr: "mysql: unknown option '--bogus'\n", exit: 7, str: "not connected, no ERROR line (exit 7)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ParseMySQLOutcome(c.stdout, c.stderr, c.exit)
			if o.Connected != c.connected || o.Code != c.code || o.SQLState != c.state || o.SeedWords != c.seedWords || o.InitialPacketLost != c.initialLost {
				t.Errorf("got connected=%t code=%q state=%q seedWords=%t initialLost=%t; want %t %q %q %t %t\n%s",
					o.Connected, o.Code, o.SQLState, o.SeedWords, o.InitialPacketLost, c.connected, c.code, c.state, c.seedWords, c.initialLost, o)
			}
			if c.code != "" && (!strings.HasPrefix(o.Error, "ERROR "+c.code) || strings.ContainsAny(o.Error, "\r\n")) {
				t.Errorf("Error = %q, want the whole ERROR line", o.Error)
			}
			if c.str != "" && !strings.Contains(o.String(), c.str) {
				t.Errorf("String() = %q, want it to contain %q", o.String(), c.str)
			}
			if o.Exit != c.exit {
				t.Errorf("Exit = %d", o.Exit)
			}
		})
	}
}

// MTLS-012's two clients, as Istio's own server-first cases have them: the mTLS client
// connects under PERMISSIVE and STRICT, so seed 002's ERROR 2013 from it, which the row used to
// document, is now a deviation; that error belongs to the plaintext client (DISABLE), for which
// any wording of "lost before the greeting" is documented and a connection is the deviation.
func TestClassifyMySQL(t *testing.T) {
	connected := ParseMySQLOutcome("1\n1\n", "", 0)
	seed := ParseMySQLOutcome("", MySQLSeedError+", system error: 0\n", 1)
	timedOut := ParseMySQLOutcome("", "ERROR 2013 (HY000): Lost connection to MySQL server at 'waiting for initial communication packet', system error: 110\n", 1)
	refused := ParseMySQLOutcome("", "ERROR 2003 (HY000): Can't connect to MySQL server on 'mysql.ns:3306' (111)\n", 1)
	for _, c := range []struct {
		client MySQLClient
		o      MySQLOutcome
		want   expect.Classification
		reason string
	}{
		{MySQLMTLS, connected, expect.Documented, "an mTLS client connects: connected"},
		{MySQLMTLS, seed, expect.Deviation, "an mTLS client did not connect (Istio's tcp-server ISTIO_MUTUAL case connects): not connected: " + MySQLSeedError},
		{MySQLMTLS, refused, expect.Deviation, "ERROR 2003"},
		{MySQLPlaintext, seed, expect.Documented, "lost before the greeting, in the seed's words"},
		{MySQLPlaintext, timedOut, expect.Documented, "'waiting for initial communication packet'"},
		{MySQLPlaintext, connected, expect.Deviation, "a plaintext client connected (Istio's tcp-server DISABLE case under PERMISSIVE fails)"},
		{MySQLPlaintext, refused, expect.Deviation, "failed otherwise than before the greeting"},
	} {
		got, reason := ClassifyMySQL(c.client, c.o)
		if got != c.want || !strings.Contains(reason, c.reason) {
			t.Errorf("ClassifyMySQL(%s, %s) = %s %q; want %s with %q", c.client, c.o, got, reason, c.want, c.reason)
		}
	}
}

// TestMySQLClientAgainstLoopback runs the real mysql client (MySQL's or MariaDB's, whichever
// is installed; `apt-get install mariadb-client-core` gives one) against servers that fail
// the ways a mesh can: close before the greeting, never greet, refuse. Skipped without a
// client: the parser's cases above hold the shapes.
func TestMySQLClientAgainstLoopback(t *testing.T) {
	if _, err := exec.LookPath("mysql"); err != nil {
		t.Skip("no mysql client in PATH (apt-get install mariadb-client-core): the real client's error text is not checked here")
	}
	ver, _ := exec.Command("mysql", "--version").CombinedOutput()
	mariadb := strings.Contains(string(ver), "MariaDB")

	run := func(t *testing.T, cmd []string) MySQLOutcome {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := probe.Local{}.Exec(ctx, cmd)
		if err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
		o := ParseMySQLOutcome(string(res.Stdout), string(res.Stderr), res.ExitCode)
		t.Logf("%s: %s", strings.TrimSpace(string(ver)), o)
		return o
	}
	listen := func(t *testing.T, handle func(net.Conn)) int {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				wg.Go(func() { handle(c) })
			}
		})
		t.Cleanup(func() { _ = l.Close(); wg.Wait() })
		_, port, _ := net.SplitHostPort(l.Addr().String())
		p, _ := strconv.Atoi(port)
		return p
	}

	t.Run("closed before the greeting", func(t *testing.T) {
		port := listen(t, func(c net.Conn) { _ = c.Close() })
		o := run(t, MySQLCommand("127.0.0.1", port))
		if o.Connected || o.Code != "2013" || !o.InitialPacketLost || o.Exit != 1 {
			t.Errorf("want error 2013 before the greeting, exit 1: %s", o)
		}
		if o.SeedWords == mariadb {
			t.Errorf("seedWords=%t from a %s client: %s", o.SeedWords, map[bool]string{true: "MariaDB", false: "MySQL"}[mariadb], o.Error)
		}
	})
	t.Run("no greeting within the connect timeout", func(t *testing.T) {
		hold := make(chan struct{})
		port := listen(t, func(c net.Conn) { <-hold; _ = c.Close() })
		// Registered after listen's, so it runs before listen's cleanup waits for the handler.
		t.Cleanup(func() { close(hold) })
		cmd := MySQLCommand("127.0.0.1", port)
		cmd[slices.Index(cmd, "--connect-timeout=10")] = "--connect-timeout=2" // keep the test short
		o := run(t, cmd)
		if o.Connected || o.Code != "2013" || !o.InitialPacketLost {
			t.Errorf("want error 2013 waiting for the greeting: %s", o)
		}
	})
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		_ = l.Close()
		p, _ := strconv.Atoi(port)
		o := run(t, MySQLCommand("127.0.0.1", p))
		if o.Connected || (o.Code != "2002" && o.Code != "2003") || o.InitialPacketLost || o.SeedWords {
			t.Errorf("want a can't-connect error (2002 or 2003): %s", o)
		}
	})
}
