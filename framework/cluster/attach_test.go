package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubeconfigFor writes a kubeconfig whose context ctxName points at server.
func kubeconfigFor(t *testing.T, server, ctxName string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
users:
- name: u
  user:
    token: not-a-secret
contexts:
- name: %s
  context: {cluster: c, user: u}
- name: other
  context: {cluster: c, user: u}
current-context: %s
`, server, ctxName, ctxName)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAttachToAnAnsweringServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
	}))
	defer srv.Close()
	kc := kubeconfigFor(t, srv.URL, "lab")
	a, err := Attach(context.Background(), kc, "lab", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a.ServerVersion != "v1.37.2" || a.Server != srv.URL || a.Context != "lab" {
		t.Fatalf("attached %+v", a)
	}
}

// A closed port fails at once, naming the context, the server and the fix.
func TestAttachRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "http://" + l.Addr().String()
	l.Close()
	kc := kubeconfigFor(t, server, "dead")
	start := time.Now()
	_, err = Attach(context.Background(), kc, "dead", 3*time.Second)
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s for a refused connection", time.Since(start))
	}
	for _, want := range []string{`context "dead" (server ` + server + `) is not reachable`, "connection refused", "unset KUBE_CONTEXT to let the suite create a kind cluster"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// A server that accepts and never answers is given up on at the deadline.
func TestAttachTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	kc := kubeconfigFor(t, "http://"+l.Addr().String(), "hung")
	start := time.Now()
	_, err = Attach(context.Background(), kc, "hung", 500*time.Millisecond)
	took := time.Since(start)
	if took < 400*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %s, want about the 500ms deadline", took)
	}
	if err == nil || !strings.Contains(err.Error(), `context "hung"`) || !strings.Contains(err.Error(), "no answer to GET /version within 500ms") {
		t.Fatalf("err = %v", err)
	}
}

func TestAttachUnknownContext(t *testing.T) {
	kc := kubeconfigFor(t, "http://127.0.0.1:1", "lab")
	_, err := Attach(context.Background(), kc, "prod", time.Second)
	want := `context "prod" is not in kubeconfig ` + kc + ` (it has contexts lab, other): set KUBE_CONTEXT to one of them`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got  %v\nwant %s…", err, want)
	}
	_, err = Attach(context.Background(), filepath.Join(t.TempDir(), "none"), "x", time.Second)
	if err == nil || !strings.Contains(err.Error(), `context "x" is not in kubeconfig`) || !strings.Contains(err.Error(), "no contexts") {
		t.Fatalf("missing file: %v", err)
	}
}
