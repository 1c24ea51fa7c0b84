// Package preflight checks, before any work, that a run can succeed: the Docker engine answers
// (for kind), its cgroup version suits the node image's kubelet, its image store is named, the
// kind config's host ports are free, the cluster name and kind config are valid, an existing
// context is reachable, the host kernel has what ambient's node agent needs (DATAPLANE_MODE=ambient
// on kind), the Istio version is well formed and its charts can be fetched, the
// reports directory is writable. It reports every problem at once, one line each with its
// fix, in seconds.
package preflight

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"meshconform"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"meshconform/framework/cluster"
	"meshconform/framework/mesh"
	"meshconform/framework/settings"
)

// DefaultTimeout bounds each check: each asks one local daemon or one server a small question.
const DefaultTimeout = 5 * time.Second

// Problem is one failed check: what was seen and what to do.
type Problem struct {
	Check  string
	Detail string
	Fix    string
}

func (p Problem) String() string {
	s := p.Check + ": " + strings.TrimSpace(p.Detail)
	if p.Fix != "" {
		if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
			s += "."
		}
		s += " " + p.Fix
	}
	return s
}

// Error is every problem preflight found.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("preflight: %d problem(s); nothing was created:", len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  - "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Result is the outcome of one check.
type Result struct {
	Check  string
	Passed bool
	Detail string // what was found (e.g. "Docker 28.1.1"), or the problem
	// Warning is something that does not stop the run but may surprise (e.g. images the
	// nodes will pull themselves); a passed check with a warning prints as WARN.
	Warning  string
	Skipped  bool // not checked, because what it asks could not answer (reported elsewhere)
	Problems []Problem
	Elapsed  time.Duration
}

// outcome is what one check found.
type outcome struct {
	detail, warning string
	skipped         bool
	problems        []Problem
}

func found(detail string, problems ...Problem) outcome {
	return outcome{detail: detail, problems: problems}
}

// ChartCheck checks that the charts of version can be fetched from the settings' source.
// framework/mesh provides the thorough one (it lists the nearest versions that exist).
type ChartCheck func(ctx context.Context, s settings.Settings) error

// Options adjusts how checks run; the zero value is right for a real run.
type Options struct {
	Docker  cluster.Docker
	Timeout time.Duration
	// Charts replaces the built-in chart source check (an index.yaml fetch, or a look at
	// ISTIO_CHART_DIR).
	Charts ChartCheck
	HTTP   *http.Client
	// HostRoot is where the kernel check reads /proc and /lib/modules ("/" when empty).
	HostRoot string
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Charts == nil {
		o.Charts = o.builtinCharts
	}
	return o
}

type check struct {
	name string
	run  func(ctx context.Context) outcome
}

// Run runs every check that applies to s, side by side, and returns their results in a fixed
// order, and an *Error holding all problems when any check failed.
func Run(ctx context.Context, s settings.Settings, o Options) ([]Result, error) {
	o = o.withDefaults()
	checks := plan(s, o)
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			start := time.Now()
			out := c.run(cctx)
			results[i] = Result{Check: c.name, Passed: len(out.problems) == 0, Detail: out.detail, Warning: out.warning,
				Skipped: out.skipped, Problems: out.problems, Elapsed: time.Since(start)}
		})
	}
	wg.Wait()
	var all []Problem
	for _, r := range results {
		all = append(all, r.Problems...)
	}
	if len(all) > 0 {
		return results, &Error{Problems: all}
	}
	return results, nil
}

// Print writes one line per check result.
func Print(w io.Writer, results []Result) {
	for _, r := range results {
		mark := "ok  "
		switch {
		case !r.Passed:
			mark = "FAIL"
		case r.Skipped:
			mark = "skip"
		case r.Warning != "":
			mark = "WARN"
		}
		line := fmt.Sprintf("  preflight %s %-13s %6s", mark, r.Check, r.Elapsed.Round(time.Millisecond))
		if r.Passed && r.Detail != "" {
			line += "  " + r.Detail
		}
		if r.Passed && r.Warning != "" {
			line += "  warning: " + r.Warning
		}
		fmt.Fprintln(w, line)
	}
}

// plan picks the checks that apply: kind needs Docker and a kind config; an existing cluster
// needs its context; charts are needed only when the run may install Istio.
func plan(s settings.Settings, o Options) []check {
	checks := []check{{"settings", func(context.Context) outcome { return found("", settingsProblems(s)...) }}}
	if s.Existing() {
		checks = append(checks, check{"context", func(ctx context.Context) outcome { return contextCheck(ctx, s, o) }})
	} else {
		e := &engine{docker: o.Docker, cluster: s.ClusterName}
		checks = append(checks,
			check{"docker", func(ctx context.Context) outcome { return dockerCheck(ctx, s, o, e) }},
			check{"cgroup", func(ctx context.Context) outcome { return cgroupCheck(ctx, s, e) }},
			check{"image store", func(ctx context.Context) outcome { return imageStoreCheck(ctx, e) }},
			check{"host ports", func(ctx context.Context) outcome { return hostPortsCheck(ctx, s, e) }},
			check{"kind config", func(context.Context) outcome { return kindConfigCheck(s) }},
			check{"support", func(context.Context) outcome { return supportCheck(s, meshconform.SupportedVersions()) }})
		if s.Ambient() && InstallMayRun(s) {
			checks = append(checks, check{"kernel", func(context.Context) outcome { return kernelCheck(cmp.Or(o.HostRoot, "/")) }})
		}
	}
	if InstallMayRun(s) {
		checks = append(checks, check{"charts", func(ctx context.Context) outcome {
			if !settings.ValidIstioVersion(s.IstioVersion) {
				return found("") // reported by "settings"; a chart lookup would only repeat it
			}
			if err := o.Charts(ctx, s); err != nil {
				fix := chartFix(s)
				if strings.Contains(err.Error(), "ISTIO_CHART_") {
					fix = "" // the check already named the variables to set
				}
				return found("", Problem{Check: "charts", Detail: err.Error(), Fix: fix})
			}
			return found(chartSourceName(s))
		}})
	}
	checks = append(checks, check{"reports dir", func(context.Context) outcome { return reportsCheck(s) }})
	return checks
}

// engine asks the Docker engine what several checks need, once each.
type engine struct {
	docker  cluster.Docker
	cluster string

	infoOnce sync.Once
	info     cluster.EngineInfo
	infoErr  error

	existsOnce sync.Once
	exists     bool
	existsErr  error
}

func (e *engine) Info(ctx context.Context) (cluster.EngineInfo, error) {
	e.infoOnce.Do(func() { e.info, e.infoErr = e.docker.Info(ctx) })
	return e.info, e.infoErr
}

// ClusterExists reports whether docker runs node containers of the kind cluster.
func (e *engine) ClusterExists(ctx context.Context) (bool, error) {
	e.existsOnce.Do(func() {
		out, err := e.docker.Run(ctx, "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+e.cluster, "--format", "{{.Names}}")
		e.exists, e.existsErr = err == nil && strings.TrimSpace(string(out)) != "", err
	})
	return e.exists, e.existsErr
}

// InstallMayRun reports whether the run may install Istio, and so needs its charts.
func InstallMayRun(s settings.Settings) bool {
	switch s.Install {
	case settings.InstallNo, settings.InstallNone:
		return false
	case settings.InstallYes:
		return true
	}
	return !s.Existing()
}

func settingsProblems(s settings.Settings) []Problem {
	err := s.Validate()
	if err == nil {
		return nil
	}
	var out []Problem
	for line := range strings.Lines(err.Error()) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, Problem{Check: "settings", Detail: line})
		}
	}
	return out
}

const dockerFix = "Start Docker (or set KUBE_CONTEXT to use an existing cluster)"

func dockerCheck(ctx context.Context, s settings.Settings, o Options, e *engine) outcome {
	v, err := o.Docker.ServerVersion(ctx)
	if err != nil {
		return found("", DockerProblem(err, o.Timeout))
	}
	detail := "Docker engine " + v
	// A taken name would fail only after the images and the config were prepared: say it now.
	if exists, _ := e.ClusterExists(ctx); exists {
		if err := cluster.ExistingDecision(s.ClusterName, true, s.ReuseCluster); err != nil {
			return found(detail, Problem{Check: "cluster name", Detail: err.Error()})
		}
		detail += fmt.Sprintf("; reusing kind cluster %q", s.ClusterName)
	}
	return found(detail)
}

// DockerProblem turns a failed `docker version` into what the user should do.
func DockerProblem(err error, timeout time.Duration) Problem {
	var ce *cluster.CommandError
	switch {
	case errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist):
		return Problem{Check: "docker", Detail: "Docker CLI not found on PATH (" + err.Error() + ")",
			Fix: "Install Docker (https://docs.docker.com/engine/install/), or set KUBE_CONTEXT to use an existing cluster"}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return Problem{Check: "docker", Detail: fmt.Sprintf("Docker engine did not answer within %s: %v", timeout, err), Fix: dockerFix}
	case errors.As(err, &ce) && strings.TrimSpace(ce.Stderr) != "":
		return Problem{Check: "docker", Detail: "Docker engine not reachable: " + firstLine(ce.Stderr), Fix: dockerFix}
	}
	return Problem{Check: "docker", Detail: "Docker engine not reachable: " + err.Error(), Fix: dockerFix}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

func kindConfigCheck(s settings.Settings) outcome {
	c, err := cluster.LoadKindConfig(s.KindConfig)
	if err != nil {
		var out []Problem
		for line := range strings.Lines(err.Error()) {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, Problem{Check: "kind config", Detail: line, Fix: "fix the file, or unset KIND_CONFIG to use the default"})
			}
		}
		return found("", out...)
	}
	return found(fmt.Sprintf("%s, %d node(s)", c.Source, len(c.Cluster.Nodes)))
}

func contextCheck(ctx context.Context, s settings.Settings, o Options) outcome {
	a, err := cluster.Attach(ctx, s.Kubeconfig, s.KubeContext, o.Timeout)
	if err != nil {
		return found("", Problem{Check: "context", Detail: err.Error()})
	}
	return found(fmt.Sprintf("%s at %s, Kubernetes %s", a.Context, a.Server, a.ServerVersion))
}

func reportsCheck(s settings.Settings) outcome {
	fix := "set REPORTS_DIR to a writable directory"
	if err := os.MkdirAll(s.ReportsDir, 0o755); err != nil {
		return found("", Problem{Check: "reports dir", Detail: err.Error(), Fix: fix})
	}
	f, err := os.CreateTemp(s.ReportsDir, ".preflight-*")
	if err != nil {
		return found("", Problem{Check: "reports dir", Detail: err.Error(), Fix: fix})
	}
	f.Close()
	os.Remove(f.Name())
	return found(s.ReportsDir)
}

func chartSourceName(s settings.Settings) string {
	if s.ChartDir != "" {
		return "charts in " + s.ChartDir
	}
	return "charts at " + s.ChartRepo
}

func chartFix(s settings.Settings) string {
	if s.ChartDir != "" {
		return "set ISTIO_CHART_DIR to a directory holding base/, istiod/ and gateway/ (e.g. an unpacked Istio release's manifests/charts), or unset it to use a repository"
	}
	return fmt.Sprintf("Istio publishes its charts at %s and %s: set ISTIO_CHART_REPO to one of those or a reachable mirror, or ISTIO_CHART_DIR to local charts", mesh.DefaultChartRepo, mesh.OCIChartRepo)
}

// Charts Istio's install needs, in install order.
var chartNames = []string{"base", "istiod", "gateway"}

// builtinCharts checks the chart source: a local directory has the three charts; a
// repository serves an index.yaml listing them at the version; an OCI registry (oci://) has
// the version among the tags of each chart, asked through framework/mesh (Helm's registry
// client), whose error names the registry and the versions it holds.
func (o Options) builtinCharts(ctx context.Context, s settings.Settings) error {
	if s.ChartDir != "" {
		return CheckChartDir(s.ChartDir)
	}
	if mesh.IsOCI(s.ChartRepo) {
		inst, err := mesh.New(mesh.Options{Version: s.IstioVersion, ChartRepo: s.ChartRepo})
		if err != nil {
			return err
		}
		return inst.CheckVersion(ctx, s.IstioVersion)
	}
	return CheckRepoIndex(ctx, o.HTTP, s.ChartRepo, s.IstioVersion)
}

// CheckChartDir checks that dir holds base/, istiod/ and gateway/ charts.
func CheckChartDir(dir string) error {
	var missing []string
	for _, c := range chartNames {
		if _, err := os.Stat(filepath.Join(dir, c, "Chart.yaml")); err != nil {
			missing = append(missing, c+"/Chart.yaml")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("chart directory %s lacks %s", dir, strings.Join(missing, ", "))
	}
	return nil
}

// CheckRepoIndex fetches repo/index.yaml and checks that it lists the three charts at version.
func CheckRepoIndex(ctx context.Context, hc *http.Client, repo, version string) error {
	index := strings.TrimRight(repo, "/") + "/index.yaml"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, index, nil)
	if err != nil {
		return fmt.Errorf("chart repository index %s: %w", index, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("chart repository index %s not reachable: %w", index, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chart repository index %s answered %s", index, resp.Status)
	}
	// Istio's index is a few MB; bound it so a wrong URL serving something huge cannot hurt.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("chart repository index %s: %w", index, err)
	}
	var idx struct {
		Entries map[string][]indexEntry `json:"entries"`
	}
	if err := yaml.Unmarshal(body, &idx); err != nil || idx.Entries == nil {
		return fmt.Errorf("chart repository index %s is not a Helm index (%d bytes)", index, len(body))
	}
	var missing []string
	for _, c := range chartNames {
		found := slices.ContainsFunc(idx.Entries[c], func(e indexEntry) bool { return e.Version == version })
		if !found {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("Istio %s has no %s chart in %s; %s (it lists istiod %s)", version, strings.Join(missing, ", "),
			index, newestHeld(idx.Entries), nearest(idx.Entries["istiod"], version))
	}
	return nil
}

// indexEntry is the part of an index.yaml chart version this check reads.
type indexEntry struct {
	Version string `json:"version"`
}

// newestHeld says which is the newest Istio release (else pre-release) at which the index
// lists all three charts.
func newestHeld(entries map[string][]indexEntry) string {
	count := map[mesh.Version]int{}
	for _, c := range chartNames {
		seen := map[mesh.Version]bool{}
		for _, e := range entries[c] {
			if v, err := mesh.ParseVersion(e.Version); err == nil && !seen[v] {
				seen[v] = true
				count[v]++
			}
		}
	}
	var best *mesh.Version
	for v, n := range count {
		if n != len(chartNames) {
			continue
		}
		if best == nil || (v.Stable() && !best.Stable()) || (v.Stable() == best.Stable() && v.Compare(*best) > 0) {
			best = &v
		}
	}
	if best == nil {
		return "it holds no version with all of " + strings.Join(chartNames, ", ")
	}
	return "the newest version it holds is " + best.String()
}

// nearest names a few istiod versions of the index that share version's minor, else the newest.
func nearest(entries []indexEntry, version string) string {
	minor := version
	if i := strings.LastIndex(version, "."); i > 0 {
		minor = version[:i+1]
	}
	var same, all []string
	for _, e := range entries {
		all = append(all, e.Version)
		if strings.HasPrefix(e.Version, minor) {
			same = append(same, e.Version)
		}
	}
	pick := same
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) == 0 {
		return "no versions"
	}
	if len(pick) > 5 {
		pick = pick[:5]
	}
	return strings.Join(pick, ", ")
}

// supportCheck warns when the node image runs a Kubernetes version outside the Istio release's
// supported range (versions.yaml's istioKubernetes, from Istio's release announcements): the
// run goes on, since testing such a pair can be deliberate, but a failure there may be no
// finding about the mesh. The default node image is always inside the range.
func supportCheck(s settings.Settings, v meshconform.Versions) outcome {
	k := s.NodeKubernetesVersion()
	r, known := v.KubernetesRangeOf(s.IstioVersion)
	switch {
	case s.NoMesh():
		return found("no Istio (ISTIO_INSTALL=none): no version pair to check")
	case !known:
		return outcome{detail: "Istio " + s.IstioVersion, warning: fmt.Sprintf("versions.yaml gives no supported Kubernetes range for Istio %s (it lists %s), so the pair with node image %s is unchecked",
			s.IstioVersion, strings.Join(v.Istio, ", "), s.NodeImage)}
	case k == "":
		return outcome{detail: "Istio " + s.IstioVersion, warning: fmt.Sprintf("the Kubernetes version of node image %s is unknown (its tag is not vX.Y.Z), so whether Istio %s supports it (Kubernetes %s to %s) is unchecked",
			s.NodeImage, s.IstioVersion, r.Min, r.Max)}
	case !v.Supports(s.IstioVersion, k):
		return outcome{detail: fmt.Sprintf("Istio %s on Kubernetes %s", s.IstioVersion, k),
			warning: fmt.Sprintf("Istio %s supports Kubernetes %s to %s, not %s: a failure may be no finding about the mesh; unset K8S_NODE_IMAGE for %s",
				s.IstioVersion, r.Min, r.Max, k, v.DefaultNodeImageFor(s.IstioVersion).Image)}
	}
	return found(fmt.Sprintf("Istio %s supports Kubernetes %s (%s to %s)", s.IstioVersion, k, r.Min, r.Max))
}

// AmbientModules are the kernel modules ambient's node agent needs on the host that runs the
// kind nodes (they share its kernel): its host-side rule for kubelet's probes matches
// `-m owner --socket-exists` (xt_owner) and `-m set --match-set` on an ipset (ip_set, xt_set)
// (istio.io/istio cni/pkg/iptables/iptables.go:636-647 at the pinned release-1.31 commit).
var AmbientModules = []string{"xt_owner", "ip_set", "xt_set"}

// kernelCheck finds which of AmbientModules the host kernel has neither loaded (/proc/modules)
// nor built in (/lib/modules/<release>/modules.builtin, which names built-in modules by path,
// kernel/net/netfilter/xt_owner.ko). root is "/" but in tests.
func kernelCheck(root string) outcome {
	procModules := filepath.Join(root, "proc", "modules")
	loaded, err := os.ReadFile(procModules)
	if err != nil {
		// Not Linux (Docker Desktop: the modules are its VM's), or /proc hidden: say so.
		return outcome{detail: fmt.Sprintf("not checked (%v); ambient needs %s in the kernel that runs the kind nodes", err, strings.Join(AmbientModules, ", ")), skipped: true}
	}
	have := map[string]bool{}
	for line := range strings.Lines(string(loaded)) {
		if f := strings.Fields(line); len(f) > 0 {
			have[f[0]] = true
		}
	}
	release, _ := os.ReadFile(filepath.Join(root, "proc", "sys", "kernel", "osrelease"))
	rel := strings.TrimSpace(string(release))
	builtin, builtinErr := os.ReadFile(filepath.Join(root, "lib", "modules", rel, "modules.builtin"))
	for line := range strings.Lines(string(builtin)) {
		// Module names treat '-' and '_' alike; /proc/modules uses '_'.
		name := strings.ReplaceAll(strings.TrimSuffix(filepath.Base(strings.TrimSpace(line)), ".ko"), "-", "_")
		have[name] = true
	}
	var missing []string
	for _, m := range AmbientModules {
		if !have[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return found(strings.Join(AmbientModules, ", ") + " present (ambient)")
	}
	detail := fmt.Sprintf("DATAPLANE_MODE=ambient needs the kernel modules %s, and %s neither loaded (%s) nor built in",
		strings.Join(AmbientModules, ", "), strings.Join(missing, ", "), procModules)
	if builtinErr != nil {
		detail += fmt.Sprintf(" (modules.builtin of kernel %q unreadable: %v)", rel, builtinErr)
	} else {
		detail += fmt.Sprintf(" (/lib/modules/%s/modules.builtin)", rel)
	}
	fix := fmt.Sprintf("Load them on the host: sudo modprobe -a %s (to load them at boot: printf '%%s\\n' %s | sudo tee /etc/modules-load.d/istio-ambient.conf); istio-cni's rules fail without them",
		strings.Join(missing, " "), strings.Join(missing, " "))
	return found("", Problem{Check: "kernel", Detail: detail, Fix: fix})
}
