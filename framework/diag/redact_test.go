package diag

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/probe"
)

// configDumpFixture renders testdata/config_dump.json.tmpl, a real-shaped Envoy config dump
// (bootstrap, clusters, listeners, secrets), with the given keys where Envoy would hold
// them: base64 inline_bytes in the SDS secret, a JSON-escaped PEM inline_string in a static
// cluster's TLS context.
func configDumpFixture(t testing.TB, sdsKey, staticKey testKey, cert string) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join("testdata", "config_dump.json.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	pemJSON, _ := json.Marshal(staticKey.PEM)
	s := strings.NewReplacer(
		"{{CERT_B64}}", base64.StdEncoding.EncodeToString([]byte(cert)),
		"{{KEY_B64}}", base64.StdEncoding.EncodeToString([]byte(sdsKey.PEM)),
		"{{KEY_PEM_JSON}}", string(pemJSON),
	).Replace(string(tmpl))
	if !json.Valid([]byte(s)) {
		t.Fatal("fixture is not valid JSON")
	}
	return s
}

func TestRedactPEMBlocksInText(t *testing.T) {
	keys := genKeys(t)
	cert := genCert(t)
	for _, k := range keys {
		t.Run(k.Kind, func(t *testing.T) {
			in := "2026-03-01T10:00:00Z info loading key from /etc/certs/key.pem\n" +
				k.PEM +
				"2026-03-01T10:00:01Z info serving certificate\n" + cert +
				"2026-03-01T10:00:02Z info done\n"
			out := RedactString(in)
			assertNoKey(t, "redacted log", out, k)
			for _, kept := range []string{"loading key from /etc/certs/key.pem\n", "info serving certificate\n", cert, "info done\n", redactedPEM} {
				if !strings.Contains(out, kept) {
					t.Errorf("redaction removed %q; got:\n%s", kept, out)
				}
			}
		})
	}
}

func TestRedactTwoBlocksStayApart(t *testing.T) {
	keys := genKeys(t)
	in := keys[0].PEM + "between the keys\n" + keys[1].PEM + "after\n"
	out := RedactString(in)
	assertNoKey(t, "two keys", out, keys[0], keys[1])
	if want := redactedPEM + "\nbetween the keys\n" + redactedPEM + "\nafter\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// A bounded tail cuts a block: the END may be missing (LimitBytes cut the end) or the BEGIN
// (TailLines cut the start). What is left of the key must go either way.
func TestRedactCutBlocks(t *testing.T) {
	k := genKeys(t)[0]
	lines := strings.Split(strings.TrimSuffix(k.PEM, "\n"), "\n")
	head := strings.Join(lines[:len(lines)/2], "\n") // BEGIN and the first half
	tail := strings.Join(lines[len(lines)/2:], "\n") // second half and END
	for name, in := range map[string]string{
		"no END":   "before\n" + head,
		"no BEGIN": tail + "\nafter\n",
	} {
		t.Run(name, func(t *testing.T) {
			out := RedactString(in)
			assertNoKey(t, name, out, k)
			if !strings.Contains(out, redactedPEM) {
				t.Errorf("no placeholder in %q", out)
			}
		})
	}
	if out := RedactString("before\n" + head); !strings.HasPrefix(out, "before\n") {
		t.Errorf("text before a cut block lost: %q", out)
	}
	if out := RedactString(tail + "\nafter\n"); !strings.HasSuffix(out, "\nafter\n") {
		t.Errorf("text after a cut block lost: %q", out)
	}
}

func TestRedactPEMInsideJSONString(t *testing.T) {
	k := genKeys(t)[2]
	b, _ := json.Marshal(map[string]string{"name": "leaky", "key": k.PEM})
	out := RedactString(string(b))
	assertNoKey(t, "JSON-escaped PEM", out, k)
	var got map[string]string
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("redaction broke the JSON: %v: %s", err, out)
	}
	if got["name"] != "leaky" || !strings.Contains(got["key"], redactedPEM) {
		t.Errorf("got %v", got)
	}
}

func TestRedactEnvoyConfigDump(t *testing.T) {
	keys := genKeys(t)
	cert := genCert(t)
	in := configDumpFixture(t, keys[0], keys[1], cert)
	out := RedactString(in)
	assertNoKey(t, "config dump", out, keys[0], keys[1])
	for _, gone := range []string{"hunter2-do-not-print", "c2Vzc2lvbi10aWNrZXQta2V5"} {
		if strings.Contains(out, gone) {
			t.Errorf("config dump still holds %q", gone)
		}
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("redacted config dump is not valid JSON:\n%s", out)
	}
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil || len(dump.Configs) != 4 {
		t.Fatalf("redacted dump: %v, %d configs (want 4)", err, len(dump.Configs))
	}
	secret := dig(t, dump.Configs[3], "dynamic_active_secrets", 0, "secret", "tls_certificate").(map[string]any)
	certB64 := base64.StdEncoding.EncodeToString([]byte(cert))
	if got := dig(t, secret, "certificate_chain", "inline_bytes"); got != certB64 {
		t.Errorf("certificate chain changed: got %.60v..., want the certificate kept", got)
	}
	if got := dig(t, secret, "private_key", "inline_bytes"); got != redactedValue {
		t.Errorf("private_key.inline_bytes = %.60v, want %q", got, redactedValue)
	}
	tlsCert := dig(t, dump.Configs[0], "bootstrap", "static_resources", "clusters", 1, "transport_socket",
		"typed_config", "common_tls_context", "tls_certificates", 0).(map[string]any)
	if got := dig(t, tlsCert, "certificate_chain", "filename"); got != "/etc/certs/cert-chain.pem" {
		t.Errorf("filename changed to %v", got)
	}
	if got := dig(t, tlsCert, "private_key", "inline_string"); got != redactedValue {
		t.Errorf("private_key.inline_string = %.60v, want %q", got, redactedValue)
	}
	for _, kept := range []string{
		`"exact": "spiffe://cluster.local/ns/mc-mtls-a1b2/sa/httpbin"`,
		`"sni": "outbound_.8000_._.httpbin.mc-mtls-a1b2.svc.cluster.local"`,
		`"require_client_certificate": true`,
		`"name": "ROOTCA"`,
	} {
		if !strings.Contains(out, kept) {
			t.Errorf("config dump lost %s", kept)
		}
	}
	if strings.Count(out, certB64) != 2 {
		t.Errorf("want the certificate twice (chain and trusted CA), got %d", strings.Count(out, certB64))
	}
}

// istioctl prints config dumps through protojson: camelCase fields.
func TestRedactCamelCaseAndYAMLEnvoyConfig(t *testing.T) {
	k := genKeys(t)[1]
	b64 := base64.StdEncoding.EncodeToString([]byte(k.PEM))
	// Not a PEM, not base64 of one: only the field rules can catch it.
	opaque := "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
	cases := map[string]string{
		"camelCase JSON":   `{"tlsCertificate": {"certificateChain": {"filename": "/c.pem"}, "privateKey": {"inlineBytes": "` + opaque + `"}}}`,
		"YAML block":       "tls_certificate:\n  certificate_chain:\n    filename: /c.pem\n  private_key:\n    inline_bytes: " + opaque + "\n  other: kept\n",
		"YAML flow":        "tls_certificate:\n  private_key: {inline_bytes: " + opaque + "}\n  other: kept\n",
		"YAML scalar":      "generic_secret: " + opaque + "\nother: kept\n",
		"YAML block text":  "private_key:\n  inline_string: |\n    " + opaque + "\n    " + opaque + "\nother: kept\n",
		"base64 PEM value": `{"data": {"tls.key": "` + b64 + `"}}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			out := RedactString(in)
			if strings.Contains(out, opaque) {
				t.Errorf("key material kept:\n%s", out)
			}
			assertNoKey(t, name, out, k)
			if strings.Contains(in, "kept") && !strings.Contains(out, "other: kept") {
				t.Errorf("lost the unrelated field:\n%s", out)
			}
			if strings.Contains(in, "/c.pem") && !strings.Contains(out, "/c.pem") {
				t.Errorf("lost the filename:\n%s", out)
			}
		})
	}
}

func TestRedactKubeconfigTokens(t *testing.T) {
	k := genKeys(t)[0]
	cert := genCert(t)
	certData := base64.StdEncoding.EncodeToString([]byte(cert))
	keyData := base64.StdEncoding.EncodeToString([]byte(k.PEM))
	const token = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	const opaqueToken = "abcdef0123456789.sha256-opaque-token"
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ` + certData + `
    server: https://127.0.0.1:6443
  name: kind-meshconform
users:
- name: admin
  user:
    token: ` + token + `
- name: robot
  user:
    token: ` + opaqueToken + `
- name: cert-user
  user:
    client-certificate-data: ` + certData + `
    client-key-data: ` + keyData + `
contexts:
- context:
    cluster: kind-meshconform
    user: admin
  name: kind-meshconform
current-context: kind-meshconform
`
	out := RedactString(kubeconfig)
	assertNoKey(t, "kubeconfig", out, k)
	for _, gone := range []string{token, opaqueToken, "eyJpc3Mi"} {
		if strings.Contains(out, gone) {
			t.Errorf("kubeconfig still holds %q:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"server: https://127.0.0.1:6443", "certificate-authority-data: " + certData,
		"client-certificate-data: " + certData, "current-context: kind-meshconform", "- name: robot"} {
		if !strings.Contains(out, kept) {
			t.Errorf("kubeconfig lost %q:\n%s", kept, out)
		}
	}

	// The same credentials in JSON, in a header and bare in a log line.
	for name, in := range map[string]string{
		"JSON token":    `{"kind":"Config","users":[{"name":"admin","user":{"token":"` + opaqueToken + `"}}]}`,
		"bearer header": "GET /api HTTP/1.1\nAuthorization: Bearer " + opaqueToken + "\nAccept: */*\n",
		"bare JWT":      "info\tsds\tfetched token " + token + " for default\n",
	} {
		out := RedactString(in)
		if strings.Contains(out, opaqueToken) || strings.Contains(out, token) {
			t.Errorf("%s: token kept: %s", name, out)
		}
	}
	if out := RedactString("warn\tno token found in request; bearer missing\n"); out != "warn\tno token found in request; bearer missing\n" {
		t.Errorf("plain words about tokens were changed: %q", out)
	}
}

func TestMaskPodEnv(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{{Name: "GITHUB_TOKEN", Value: "ghp_literal"}}}},
		Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{
			{Name: "DB_PASSWORD", Value: "s3cr3t"},
			{Name: "client_secret", Value: "lower-case-too"},
			{Name: "API_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
			{Name: "LOG_LEVEL", Value: "debug"},
		}}},
	}}
	maskPodEnv(pod)
	env := pod.Spec.Containers[0].Env
	if pod.Spec.InitContainers[0].Env[0].Value != redactedValue || env[0].Value != redactedValue || env[1].Value != redactedValue {
		t.Errorf("literal credentials kept: init %q, app %q %q", pod.Spec.InitContainers[0].Env[0].Value, env[0].Value, env[1].Value)
	}
	if env[2].ValueFrom == nil || env[2].ValueFrom.SecretKeyRef.Name != "creds" || env[3].Value != "debug" {
		t.Errorf("references or harmless values changed: %+v", env)
	}
}

// scriptedExec is an Executor that runs real local commands in place of the proxy's: each
// command's first word picks the local command to run.
type scriptedExec struct {
	local  probe.Local
	script map[string][]string
}

func (s scriptedExec) String() string { return "scripted local" }
func (s scriptedExec) Exec(ctx context.Context, cmd []string) (probe.ExecResult, error) {
	if repl, ok := s.script[cmd[0]]; ok {
		cmd = repl
	}
	return s.local.Exec(ctx, cmd)
}

func TestFetchConfigDumpFallsBackAndIsRedactedOnWrite(t *testing.T) {
	keys := genKeys(t)
	fixture := filepath.Join(t.TempDir(), "config_dump.json")
	if err := os.WriteFile(fixture, []byte(configDumpFixture(t, keys[2], keys[0], genCert(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := scriptedExec{script: map[string][]string{
		// pilot-agent missing from the image, as a shell reports it; curl works.
		"pilot-agent": {"sh", "-c", "echo 'sh: pilot-agent: not found' >&2; exit 127"},
		"curl":        {"cat", fixture},
	}}
	out, err := FetchConfigDump(context.Background(), ex, 5*time.Second)
	if err != nil {
		t.Fatalf("FetchConfigDump: %v", err)
	}
	if !strings.Contains(string(out), "SecretsConfigDump") {
		t.Fatalf("got %d bytes without the secrets section", len(out))
	}
	assertNoKey(t, "redacted fetched dump", RedactString(string(out)), keys[2], keys[0])

	// Nothing that looks like a config dump: an error that says what each command printed.
	bad := scriptedExec{script: map[string][]string{
		"pilot-agent": {"echo", "upstream connect error"},
		"curl":        {"sh", "-c", "echo 'curl: (7) Failed to connect to localhost port 15000' >&2; exit 7"},
	}}
	_, err = FetchConfigDump(context.Background(), bad, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "upstream connect error") || !strings.Contains(err.Error(), "exit 7") {
		t.Errorf("want an error naming both attempts, got %v", err)
	}
}

func TestEventTableSortsByTime(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	evs := []corev1.Event{
		{Reason: "Third", Type: "Warning", Message: "multi\nline   message", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "b"}},
		{Reason: "First", Type: "Normal", InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "a"}},
		{Reason: "Second", Type: "Normal", Count: 4, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "a", FieldPath: "spec.containers{app}"}},
	}
	evs[0].LastTimestamp.Time = at("2026-03-01T10:00:03Z")
	evs[1].FirstTimestamp.Time = at("2026-03-01T10:00:01Z")
	evs[2].LastTimestamp.Time = at("2026-03-01T10:00:02Z")
	out := EventTable(evs)
	first, second, third := strings.Index(out, "First"), strings.Index(out, "Second"), strings.Index(out, "Third")
	if first < 0 || !(first < second && second < third) {
		t.Errorf("events not in time order:\n%s", out)
	}
	for _, want := range []string{"2026-03-01T10:00:02Z", "pod/a (spec.containers{app})", "multi line message", "  4  "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 4 {
		t.Errorf("want a header and 3 rows, got %d lines:\n%s", lines, out)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{
		Dir: "reports/diag/mtls-002", ReportsDir: "reports",
		Files: []string{"errors.txt", "ns-a/events.txt", "ns-a/logs/a.app.log", "ns-a/logs/a.istio-proxy.log",
			"ns-a/pods.yaml", "ns-a/proxy/a.config_dump.json", "istio-system/mesh-config.yaml"},
		Errors:  []string{"one", "two", "three", "four"},
		Elapsed: 1500 * time.Millisecond,
	}
	out := s.String()
	for _, want := range []string{
		"diagnostics in diag/mtls-002: 7 files in 1.5s; 4 not collected (diag/mtls-002/errors.txt)",
		"ns-a/: events.txt, pods.yaml, logs/ (2), proxy/ (1)",
		"istio-system/: mesh-config.yaml",
		"not collected: three",
		"... and 1 more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "./") {
		t.Errorf("summary lists errors.txt as a directory entry:\n%s", out)
	}
	if strings.Contains(out, "four") {
		t.Errorf("summary lists more than 3 errors:\n%s", out)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"[MTLS-002] STRICT rejects plaintext": "mtls-002-strict-rejects-plaintext",
		"///":                                 "spec",
		strings.Repeat("a", 100):              strings.Repeat("a", 80),
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// A Dump whose deadline has passed writes what it has (errors.txt) and says it stopped.
func TestDumpStopsAtTheDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	sum, err := Dump(ctx, DumpOptions{RestConfig: unreachableConfig(), Namespaces: []string{"a"}, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("want the context's error, got %v", err)
	}
	b, rerr := os.ReadFile(filepath.Join(dir, ErrorsFile))
	if rerr != nil || !strings.Contains(string(b), "dump stopped early") {
		t.Errorf("errors.txt: %v %q", rerr, b)
	}
	if len(sum.Errors) == 0 || len(sum.Files) != 1 {
		t.Errorf("summary: %+v", sum)
	}
	if _, err := Dump(context.Background(), DumpOptions{RestConfig: unreachableConfig()}); err == nil || !strings.Contains(err.Error(), "Dir is empty") {
		t.Errorf("no Dir: got %v", err)
	}
}
