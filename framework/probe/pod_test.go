package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"meshconform/framework/probe/probetest"
)

func TestProxyContainer(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := func(containers, inits []corev1.Container) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: containers, InitContainers: inits}}
	}
	for _, c := range []struct {
		name       string
		pod        *corev1.Pod
		want       string
		native, ok bool
	}{
		{"classic sidecar", pod([]corev1.Container{{Name: "app"}, {Name: "istio-proxy"}}, []corev1.Container{{Name: "istio-init"}}), "istio-proxy", false, true},
		{"native sidecar", pod([]corev1.Container{{Name: "app"}}, []corev1.Container{{Name: "istio-validation"}, {Name: "istio-proxy", RestartPolicy: &always}}), "istio-proxy", true, true},
		{"init container named istio-proxy but not restartable", pod([]corev1.Container{{Name: "app"}}, []corev1.Container{{Name: "istio-proxy"}}), "", false, false},
		{"plain pod", pod([]corev1.Container{{Name: "curl"}}, nil), "", false, false},
		{"nil pod", nil, "", false, false},
	} {
		name, native, ok := ProxyContainer(c.pod)
		if name != c.want || native != c.native || ok != c.ok {
			t.Errorf("%s: ProxyContainer = %q, native %v, ok %v; want %q, %v, %v", c.name, name, native, ok, c.want, c.native, c.ok)
		}
	}
}

func TestPodExecutorArguments(t *testing.T) {
	if _, err := NewPodExecutor(nil, "ns", "p", "c"); err == nil {
		t.Error("nil config accepted")
	}
	if _, err := NewPodExecutor(&rest.Config{Host: "https://example.invalid"}, "ns", "p", ""); err == nil || !strings.Contains(err.Error(), `container ""`) {
		t.Errorf("empty container: %v", err)
	}
	p, err := NewPodExecutor(&rest.Config{Host: "https://example.invalid:6443"}, "ns1", "client-0", "istio-proxy")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "pod ns1/client-0 container istio-proxy" {
		t.Errorf("String() = %q", p)
	}
	cmd := CurlCommand(HTTPRequest{URL: "http://server.ns2:8000/headers", Timeout: 5 * time.Second}, "@@m")
	u := p.ExecURL(cmd)
	if u.Host != "example.invalid:6443" || u.Path != "/api/v1/namespaces/ns1/pods/client-0/exec" {
		t.Errorf("exec URL %s", u)
	}
	q := u.Query()
	if !slices.Equal(q["command"], cmd) || q.Get("container") != "istio-proxy" || q.Get("stdout") != "true" || q.Get("stderr") != "true" ||
		q.Has("stdin") || q.Has("tty") {
		t.Errorf("exec query %v: want every command word, the container, stdout and stderr, no stdin or tty", q)
	}
}

// execEndpoint serves the exec subresource over WebSocket v5 with the streaming library the
// API server uses, running the command on this machine: the real client-go path end to end,
// without a cluster. dropStatus closes without the exit status, as lossy transports do.
func execEndpoint(t *testing.T, dropStatus bool) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !wsstream.IsWebSocketRequest(req) {
			http.Error(w, "websocket only", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen = append(seen, req.URL.Path+" container="+req.URL.Query().Get("container"))
		mu.Unlock()
		conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
			remotecommand.StreamProtocolV5Name: {Binary: true, Channels: []wsstream.ChannelType{
				wsstream.IgnoreChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.IgnoreChannel}},
		})
		_, streams, err := conn.Open(w, req)
		if err != nil {
			t.Errorf("websocket open: %v", err)
			return
		}
		defer conn.Close()
		_, _ = streams[remotecommand.StreamStdOut].Write([]byte{}) // tells the client the streams are up
		res, err := Local{Env: probetest.EnvWithoutProxy()}.Exec(req.Context(), req.URL.Query()["command"])
		_, _ = streams[remotecommand.StreamStdOut].Write(res.Stdout)
		_, _ = streams[remotecommand.StreamStdErr].Write(res.Stderr)
		if dropStatus {
			return
		}
		st := metav1.Status{Status: metav1.StatusSuccess}
		switch {
		case errors.Is(err, exec.ErrNotFound):
			// What containerd says for a binary missing from the image.
			st = metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError,
				Message: fmt.Sprintf(`OCI runtime exec failed: exec failed: unable to start container process: exec: %q: executable file not found in $PATH: unknown`, req.URL.Query()["command"][0])}
		case err != nil:
			st = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
		case res.ExitCode != 0:
			st = metav1.Status{Status: metav1.StatusFailure, Reason: remotecommand.NonZeroExitCodeReason,
				Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: fmt.Sprint(res.ExitCode)}}}}
		}
		b, _ := json.Marshal(st)
		_, _ = streams[remotecommand.StreamErr].Write(b)
	}))
	t.Cleanup(s.Close)
	return s, &seen
}

func TestPodExecutorOverWebSocket(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatalf("sh not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s, seen := execEndpoint(t, false)
	p, err := NewPodExecutor(&rest.Config{Host: s.URL}, "ns1", "client-0", "curl")
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Exec(ctx, []string{"sh", "-c", "printf out; printf err >&2; exit 56"})
	if err != nil || string(res.Stdout) != "out" || string(res.Stderr) != "err" || res.ExitCode != 56 {
		t.Errorf("Exec: %v, stdout %q stderr %q exit %d; want out/err/56 (from exec.CodeExitError)", err, res.Stdout, res.Stderr, res.ExitCode)
	}
	if res, err := p.Exec(ctx, []string{"true"}); err != nil || res.ExitCode != 0 {
		t.Errorf("Exec(true): %v, exit %d", err, res.ExitCode)
	}
	if (*seen)[0] != "/api/v1/namespaces/ns1/pods/client-0/exec container=curl" {
		t.Errorf("server saw %q", *seen)
	}
	_, err = p.Exec(ctx, []string{"meshconform-no-such-binary"})
	if mb := missingBinary("curl", p.String(), ExecResult{}, err); mb == nil || !strings.Contains(mb.Error(), "meshconform-no-such-binary not found on pod ns1/client-0 container curl") {
		t.Errorf("missing binary in the pod: %v → %v", err, mb)
	}

	// The status is lost: the transport says nothing about the exit.
	lossy, _ := execEndpoint(t, true)
	p, err = NewPodExecutor(&rest.Config{Host: lossy.URL}, "ns1", "client-0", "curl")
	if err != nil {
		t.Fatal(err)
	}
	res, err = p.Exec(ctx, []string{"sh", "-c", "exit 56"})
	if err != nil || res.ExitCode != 0 {
		t.Logf("client-go changed: without a status it now reports err %v, exit %d", err, res.ExitCode)
	}
	// client-go reports success for a stream that never sent a status; Curl reads curl's own
	// report instead.
	srv := probetest.NewServer(t, probetest.Reset())
	o, err := Curl(ctx, p, HTTPRequest{URL: srv.URL()})
	if err != nil {
		t.Fatalf("Curl through the pod executor: %v", err)
	}
	if o.CurlExit != 56 || o.HTTPCode != 0 || o.ErrorLine != "curl: (56) Recv failure: Connection reset by peer" || o.Where != p.String() {
		t.Errorf("through a transport that lost the status:\n%s\nwant curl exit 56 from curl's JSON", o)
	}
	if res.ExitCode == 0 && !strings.Contains(strings.Join(o.Notes, ";"), "transport reported exit 0, curl reported 56") {
		t.Errorf("the disagreement is not noted: %q", o.Notes)
	}
}
