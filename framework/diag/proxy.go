package diag

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/probe"
)

// ConfigDumpCommands are tried in order until one prints a config dump: pilot-agent asks
// Envoy's admin endpoint for it from inside the proxy container; curl is the fallback for
// images where pilot-agent's request command is missing.
var ConfigDumpCommands = [][]string{
	{"pilot-agent", "request", "GET", "config_dump"},
	{"curl", "-sS", "--max-time", "20", "http://localhost:15000/config_dump"},
}

// configDump fetches the pod's proxy config dump, when the pod has a running proxy.
func (d *dumper) configDump(ctx context.Context, pod *corev1.Pod) {
	if d.opts.ProxyExec == nil {
		return
	}
	container, _, ok := probe.ProxyContainer(pod)
	if !ok {
		return // no sidecar: nothing to dump
	}
	if !proxyRunning(pod, container) {
		d.noteErr("config_dump of %s/%s: skipped, %s is not running (%s)", pod.Namespace, pod.Name, container,
			containerState(pod, containerStatus(pod, container)))
		return
	}
	ns, name := pod.Namespace, pod.Name
	d.async(ctx, func() {
		ex := d.opts.ProxyExec(ns, name, container)
		out, err := FetchConfigDump(ctx, ex, d.opts.ExecTimeout)
		if err != nil {
			d.noteErr("config_dump of %s/%s: %v", ns, name, err)
			if len(out) == 0 {
				return
			}
		}
		if len(out) > maxConfigDump {
			d.noteErr("config_dump of %s/%s: %d bytes, cut to the first %d", ns, name, len(out), maxConfigDump)
			out = out[:maxConfigDump] // the redactor treats an unterminated secret field as secret
		}
		d.write(filepath.Join(ns, "proxy", name+".config_dump.json"), out)
	})
}

// FetchConfigDump runs ConfigDumpCommands through ex, each bounded by timeout, and returns
// the first non-empty output that looks like a config dump. The output is not yet
// redacted: pass it through Redact before it goes anywhere.
func FetchConfigDump(ctx context.Context, ex probe.Executor, timeout time.Duration) ([]byte, error) {
	var tried []string
	for _, cmd := range ConfigDumpCommands {
		if ctx.Err() != nil {
			break
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := ex.Exec(cctx, cmd)
		cancel()
		out := bytes.TrimSpace(res.Stdout)
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%q: %v", strings.Join(cmd, " "), err))
		case res.ExitCode != 0:
			tried = append(tried, fmt.Sprintf("%q: exit %d: %s", strings.Join(cmd, " "), res.ExitCode, firstLine(res.Stderr, res.Stdout)))
		case !bytes.HasPrefix(out, []byte("{")) || !bytes.Contains(out, []byte("configs")):
			tried = append(tried, fmt.Sprintf("%q: printed no config dump (%d bytes: %s)", strings.Join(cmd, " "), len(res.Stdout), firstLine(res.Stdout, res.Stderr)))
		default:
			return res.Stdout, nil
		}
	}
	if ctx.Err() != nil {
		tried = append(tried, ctx.Err().Error())
	}
	return nil, fmt.Errorf("on %s: %s", ex, strings.Join(tried, "; "))
}

// firstLine is the first non-empty line of the first non-empty output, bounded.
func firstLine(outs ...[]byte) string {
	for _, o := range outs {
		for _, l := range strings.Split(string(o), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				if len(l) > 200 {
					l = l[:200] + "..."
				}
				return l
			}
		}
	}
	return "nothing printed"
}
