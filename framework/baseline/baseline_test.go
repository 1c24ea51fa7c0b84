package baseline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"meshconform/framework/baseline"
	"meshconform/framework/expect"
	"meshconform/framework/probe"
	"meshconform/framework/probe/probetest"
	"meshconform/framework/report"
)

// Tier 0: the real curl against loopback servers standing in for the plain httpbin (200), a
// pod's closed port (nothing listens: exit 7) and go-httpbin's /delay (answers never, within
// curl's --max-time: exit 28).

var cfg = expect.Config{Consecutive: 3, Timeout: 3 * time.Second, Poll: 20 * time.Millisecond}

// local runs curl here without proxy variables, which would send loopback requests elsewhere.
var local = probe.Local{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}

type world struct {
	server, slow *probetest.Server
	closed       string
}

func newWorld(t *testing.T) world {
	t.Helper()
	probetest.RequireTools(t, "curl")
	w := world{server: probetest.NewServer(t, probetest.Respond(200, `{"url": "/get"}`, nil)), closed: probetest.RefusedAddr(t)}
	w.slow = probetest.NewServer(t, nil)
	w.slow.Set(w.slow.Hang())
	return w
}

func (w world) targets() baseline.Targets {
	return baseline.Targets{ServerURL: w.server.URL() + "get", ClosedURL: "http://" + w.closed + "/",
		SlowURL: w.slow.URL() + "delay/5", SlowTimeout: 300 * time.Millisecond,
		RequestTimeout: 500 * time.Millisecond}
}

func run(t *testing.T, tg baseline.Targets) report.Baseline {
	t.Helper()
	if err := tg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := baseline.Run(context.Background(), cfg, local, baseline.Checks(tg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func code(p *int) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func TestBaselinePassesOnAWorkingNetwork(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	b := run(t, w.targets())
	if b.Status != report.BaselinePassed || b.Failed() {
		t.Fatalf("baseline on a working loopback network: %s", b)
	}
	want := []struct{ name, http, exit, errText string }{
		{"plain client to plain server", "200", "0", ""},
		{"plain client to a closed port", "0", "7", "curl: (7)"},
		{"plain client to a slow server", "0", "28", "Operation timed out"},
	}
	if len(b.Probes) != len(want) {
		t.Fatalf("%d probes, want %d: %s", len(b.Probes), len(want), b)
	}
	for i, w := range want {
		p := b.Probes[i]
		ev := p.Evidence
		if p.Name != w.name || p.Result != report.Pass {
			t.Errorf("probe %d: %s %s, want %s pass (%s)", i, p.Name, p.Result, w.name, p.Reason)
		}
		if code(ev.HTTPCode) != w.http || code(ev.CurlExit) != w.exit || !strings.Contains(ev.ErrorLine, w.errText) {
			t.Errorf("%s: evidence http=%s exit=%s %q, want http=%s exit=%s %q", p.Name, code(ev.HTTPCode), code(ev.CurlExit), ev.ErrorLine, w.http, w.exit, w.errText)
		}
		if ev.Attempts < cfg.Consecutive || len(ev.History) != ev.Attempts || ev.Where != "local" || ev.Expected == "" {
			t.Errorf("%s: evidence lacks the convergence: attempts %d, history %d, where %q, expected %q", p.Name, ev.Attempts, len(ev.History), ev.Where, ev.Expected)
		}
		if !strings.Contains(p.Reason, "documented") {
			t.Errorf("%s: reason %q does not say what was documented", p.Name, p.Reason)
		}
	}
	if strings.Contains(b.Verdict, report.ClusterAtFault) {
		t.Errorf("a passing baseline blames the cluster: %s", b.Verdict)
	}
}

// Each way a cluster breaks plain traffic fails the baseline, names the probe and keeps what
// it saw; the other probes still pass.
func TestBaselineFailsWhenTheClusterIsBroken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		breakW func(t *testing.T, w *world, tg *baseline.Targets)
		probe  string
		seen   string
	}{
		{"server resets plain traffic", func(t *testing.T, w *world, tg *baseline.Targets) { w.server.Set(probetest.Reset()) },
			"plain client to plain server", "http_code=000 exit=56"},
		{"closed port is dropped, not refused", func(t *testing.T, w *world, tg *baseline.Targets) {
			hang := probetest.NewServer(t, nil)
			hang.Set(hang.Hang())
			tg.ClosedURL = hang.URL()
		}, "plain client to a closed port", "exit=28"},
		{"something listens on the closed port", func(t *testing.T, w *world, tg *baseline.Targets) { tg.ClosedURL = w.server.URL() },
			"plain client to a closed port", "http_code=200 exit=0"},
		{"slow server answers at once", func(t *testing.T, w *world, tg *baseline.Targets) { w.slow.Set(probetest.Respond(200, "", nil)) },
			"plain client to a slow server", "http_code=200 exit=0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tg := w.targets()
			c.breakW(t, &w, &tg)
			b := run(t, tg)
			if !b.Failed() || !strings.HasPrefix(b.Verdict, report.ClusterAtFault) {
				t.Fatalf("want a failed baseline whose verdict starts %q; got %s", report.ClusterAtFault, b)
			}
			if !strings.Contains(b.Verdict, c.probe) {
				t.Errorf("the verdict does not name the failed probe %q: %s", c.probe, b.Verdict)
			}
			for _, p := range b.Probes {
				switch {
				case p.Name == c.probe && p.Result != report.Fail:
					t.Errorf("%s: %s, want fail", p.Name, p.Result)
				case p.Name == c.probe:
					if !strings.Contains(p.Reason, "did not converge") || !strings.Contains(p.Reason, c.seen) {
						t.Errorf("%s: reason %q, want it to say it did not converge and saw %q", p.Name, p.Reason, c.seen)
					}
					if len(p.Evidence.History) == 0 || p.Evidence.Text == "" {
						t.Errorf("%s: no evidence kept: %+v", p.Name, p.Evidence)
					}
				case p.Result != report.Pass:
					t.Errorf("%s broke, but %s failed too: %s", c.probe, p.Name, p.Reason)
				}
			}
		})
	}
}

func TestTargetsValidateNamesTheFix(t *testing.T) {
	err := baseline.Targets{ServerURL: "httpbin:8000"}.Validate()
	for _, want := range []string{"ServerURL \"httpbin:8000\" is not an http:// URL", "ClosedURL", "SlowURL", "set curl's --max-time below"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
}

func TestReuseOnlyAPassedRecentBaseline(t *testing.T) {
	passed := baseline.Judge([]report.BaselineProbe{{Name: "plain client to plain server", Result: report.Pass,
		Evidence: report.Evidence{Text: "200"}}})
	failed := baseline.Judge([]report.BaselineProbe{{Name: "plain client to plain server", Result: report.Fail, Reason: "exit 6"}})
	from := "reports/upgrade/inplace/upgrade/conformance.json"

	got, ok, why := baseline.Reuse(&passed, from, 70*time.Second)
	if !ok || why != "" {
		t.Fatalf("Reuse(passed, 70s) = ok %t, %q; want reused", ok, why)
	}
	if got.Status != report.BaselinePassed || len(got.Probes) != 1 || got.Probes[0].Evidence.Text != "200" {
		t.Errorf("reused baseline %+v: want the same status and probes", got)
	}
	for _, want := range []string{"judged 1m10s earlier on the same cluster", from, baseline.ReuseEnv, passed.Verdict} {
		if !strings.Contains(got.Verdict, want) {
			t.Errorf("verdict %q lacks %q", got.Verdict, want)
		}
	}

	for name, c := range map[string]struct {
		b    *report.Baseline
		age  time.Duration
		want string
	}{
		"failed":  {&failed, time.Second, "is failed, not passed"},
		"missing": {nil, time.Second, "has no baseline"},
		"old":     {&passed, baseline.MaxReuseAge + time.Second, "judged 15m1s ago"},
	} {
		if _, ok, why := baseline.Reuse(c.b, from, c.age); ok || !strings.Contains(why, c.want) {
			t.Errorf("%s: Reuse = ok %t, %q; want refused with %q", name, ok, why, c.want)
		}
	}
}
