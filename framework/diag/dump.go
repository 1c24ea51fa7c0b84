// Package diag writes the evidence of a failed spec to disk: the namespaces involved (pods,
// events, every container's logs, the proxies' config dumps, the Istio policies) plus
// istiod's logs and mesh config. It is best effort (one failure is noted and the dump goes
// on) and it never writes a secret: Secret data is never read into a file, and every byte
// written passes through Redact.
package diag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
)

// Defaults of DumpOptions.
const (
	DefaultIstioNamespace = istionames.IstioSystemNamespace
	DefaultTailLines      = 2000
	DefaultLimitBytes     = 1 << 20
	DefaultCallTimeout    = 20 * time.Second
	DefaultExecTimeout    = 30 * time.Second
	DefaultParallelism    = 4
	// maxConfigDump bounds one proxy's config dump on disk; a real one is a few MiB.
	maxConfigDump = 32 << 20
	// ErrorsFile is written at the top of Dir when anything could not be collected.
	ErrorsFile = "errors.txt"
)

// DumpOptions say what to collect and where to write it.
type DumpOptions struct {
	// Kube reads pods, logs, events, services, ConfigMaps and Secret names. When nil it is
	// built from RestConfig.
	Kube kubernetes.Interface
	// Istio reads the Istio policies. When nil it is built from RestConfig; when that is nil
	// too, policies are skipped (and the skip is noted).
	Istio istioclient.Interface
	// RestConfig builds the clients above when they are nil.
	RestConfig *rest.Config
	// Namespaces to dump, each in a directory of its own name.
	Namespaces []string
	// IstioNamespace holds istiod (pods labelled app=istiod) and the mesh ConfigMap;
	// default "istio-system".
	IstioNamespace string
	// NoMesh: the cluster has no Istio on purpose (ISTIO_INSTALL=none): neither Istio's
	// policies nor istiod are asked for, so their absence is not noted as an error.
	NoMesh bool
	// Dir is where everything is written, e.g. reports/diag/<spec-slug>. Created if absent.
	Dir string
	// ReportsDir, when set, is what Summary.String() shows paths relative to (the directory
	// the Ginkgo report sits in). Default: paths are shown as Dir was given.
	ReportsDir string
	// ProxyExec gives an executor for a proxy container; nil means no config dumps. It is
	// called from several goroutines at once. PodExec(cfg) gives one that runs through the
	// API server's exec subresource.
	ProxyExec func(ns, pod, container string) probe.Executor
	// TailLines and LimitBytes bound each container log (defaults 2000 lines, 1 MiB).
	TailLines, LimitBytes int64
	// CallTimeout bounds each API call, ExecTimeout each config dump (defaults 20s, 30s).
	// The ctx given to Dump bounds the whole dump.
	CallTimeout, ExecTimeout time.Duration
	// Parallelism is how many logs and config dumps are fetched at once (default 4).
	Parallelism int
}

// PodExec returns a ProxyExec that runs commands in pods through cfg's API server.
func PodExec(cfg *rest.Config) func(ns, pod, container string) probe.Executor {
	return func(ns, pod, container string) probe.Executor {
		ex, err := probe.NewPodExecutor(cfg, ns, pod, container)
		if err != nil {
			return failingExecutor{where: fmt.Sprintf("pod %s/%s container %s", ns, pod, container), err: err}
		}
		return ex
	}
}

// failingExecutor carries an executor's construction error to the place it is recorded.
type failingExecutor struct {
	where string
	err   error
}

func (f failingExecutor) Exec(context.Context, []string) (probe.ExecResult, error) {
	return probe.ExecResult{ExitCode: -1}, f.err
}
func (f failingExecutor) String() string { return f.where }

// Summary is what a dump wrote and what it could not collect. It is valid even when Dump
// returns an error.
type Summary struct {
	// Dir is DumpOptions.Dir; ReportsDir is DumpOptions.ReportsDir.
	Dir, ReportsDir string
	// Files are the files written, relative to Dir, sorted.
	Files []string
	// Errors are what could not be collected, one line each, in the order met (also in
	// errors.txt).
	Errors  []string
	Elapsed time.Duration
}

// String is a short text for a Ginkgo report entry: where the dump is, what each directory
// holds, and the first errors.
func (s Summary) String() string {
	dir := s.Dir
	if s.ReportsDir != "" {
		if rel, err := filepath.Rel(s.ReportsDir, s.Dir); err == nil && !strings.HasPrefix(rel, "..") {
			dir = rel
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "diagnostics in %s: %d files in %s", dir, len(s.Files), s.Elapsed.Round(10*time.Millisecond))
	if len(s.Errors) > 0 {
		fmt.Fprintf(&b, "; %d not collected (%s)", len(s.Errors), filepath.Join(dir, ErrorsFile))
	}
	b.WriteString("\n")
	// Group by top directory: its files by name, its subdirectories by count.
	type group struct {
		files []string
		sub   map[string]int
	}
	groups := map[string]*group{}
	var order []string
	for _, f := range s.Files {
		if f == ErrorsFile {
			continue // named in the first line
		}
		parts := strings.Split(filepath.ToSlash(f), "/")
		top := "."
		if len(parts) > 1 {
			top, parts = parts[0], parts[1:]
		}
		g, ok := groups[top]
		if !ok {
			g = &group{sub: map[string]int{}}
			groups[top] = g
			order = append(order, top)
		}
		if len(parts) == 1 {
			g.files = append(g.files, parts[0])
		} else {
			g.sub[parts[0]]++
		}
	}
	for _, top := range order {
		g := groups[top]
		items := append([]string(nil), g.files...)
		subs := make([]string, 0, len(g.sub))
		for name := range g.sub {
			subs = append(subs, name)
		}
		sort.Strings(subs)
		for _, name := range subs {
			items = append(items, fmt.Sprintf("%s/ (%d)", name, g.sub[name]))
		}
		fmt.Fprintf(&b, "  %s/: %s\n", top, strings.Join(items, ", "))
	}
	const shown = 3
	for i, e := range s.Errors {
		if i == shown {
			fmt.Fprintf(&b, "  ... and %d more in %s\n", len(s.Errors)-shown, ErrorsFile)
			break
		}
		fmt.Fprintf(&b, "  not collected: %s\n", e)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Slug turns a spec's text into a directory name: lower case, [a-z0-9-], at most 80 bytes.
func Slug(text string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(text), "-"), "-")
	if len(s) > 80 {
		s = strings.TrimRight(s[:80], "-")
	}
	if s == "" {
		s = "spec"
	}
	return s
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// Dump writes the evidence for opts.Namespaces under opts.Dir. Failures to collect one thing
// are recorded in the Summary and errors.txt, and the dump goes on; the error is non-nil only
// when nothing could be written (no Dir, no client) or ctx ended before the dump did.
func Dump(ctx context.Context, opts DumpOptions) (Summary, error) {
	began := time.Now()
	d := &dumper{opts: withDefaults(opts)}
	d.sum = Summary{Dir: opts.Dir, ReportsDir: opts.ReportsDir}
	finish := func(err error) (Summary, error) {
		if len(d.sum.Errors) > 0 {
			d.writeErrors()
		}
		sort.Strings(d.sum.Files)
		d.sum.Elapsed = time.Since(began)
		return d.sum, err
	}
	if opts.Dir == "" {
		return finish(errors.New("diag: DumpOptions.Dir is empty; give a directory under reports/, e.g. reports/diag/" + Slug("my spec")))
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return finish(fmt.Errorf("diag: %w; make the reports directory writable", err))
	}
	if err := d.clients(); err != nil {
		return finish(err)
	}

	d.sem = make(chan struct{}, d.opts.Parallelism)
	for _, ns := range opts.Namespaces {
		if ctx.Err() != nil {
			break
		}
		d.namespace(ctx, ns)
	}
	if ctx.Err() == nil && !d.opts.NoMesh {
		d.istiod(ctx)
	}
	d.wg.Wait()
	if err := ctx.Err(); err != nil {
		d.noteErr("dump stopped early: %v; the files listed are complete, the rest was not collected (give Dump a longer deadline)", err)
		return finish(fmt.Errorf("diag: %w", err))
	}
	return finish(nil)
}

func withDefaults(o DumpOptions) DumpOptions {
	if o.IstioNamespace == "" {
		o.IstioNamespace = DefaultIstioNamespace
	}
	if o.TailLines <= 0 {
		o.TailLines = DefaultTailLines
	}
	if o.LimitBytes <= 0 {
		o.LimitBytes = DefaultLimitBytes
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.ExecTimeout <= 0 {
		o.ExecTimeout = DefaultExecTimeout
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	return o
}

type dumper struct {
	opts  DumpOptions
	kube  kubernetes.Interface
	istio istioclient.Interface

	sem chan struct{}
	wg  sync.WaitGroup

	mu   sync.Mutex
	sum  Summary
	logs map[string]bool // ns/pod/container/previous already fetched
}

func (d *dumper) clients() error {
	d.kube, d.istio = d.opts.Kube, d.opts.Istio
	var err error
	if d.kube == nil {
		if d.opts.RestConfig == nil {
			return errors.New("diag: DumpOptions needs Kube or RestConfig")
		}
		if d.kube, err = kubernetes.NewForConfig(d.opts.RestConfig); err != nil {
			return fmt.Errorf("diag: kubernetes client: %w", err)
		}
	}
	if d.istio == nil && d.opts.RestConfig != nil && !d.opts.NoMesh {
		if d.istio, err = istioclient.NewForConfig(d.opts.RestConfig); err != nil {
			d.noteErr("istio client: %v; Istio policies not collected", err)
		}
	}
	return nil
}

// noteErr records one thing that could not be collected.
func (d *dumper) noteErr(format string, args ...any) {
	msg := strings.ReplaceAll(RedactString(fmt.Sprintf(format, args...)), "\n", " ")
	d.mu.Lock()
	d.sum.Errors = append(d.sum.Errors, msg)
	d.mu.Unlock()
}

// write redacts data and writes it to rel (under Dir).
func (d *dumper) write(rel string, data []byte) {
	path := filepath.Join(d.opts.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.noteErr("write %s: %v", rel, err)
		return
	}
	if err := os.WriteFile(path, Redact(data), 0o644); err != nil {
		d.noteErr("write %s: %v", rel, err)
		return
	}
	d.mu.Lock()
	d.sum.Files = append(d.sum.Files, filepath.ToSlash(rel))
	d.mu.Unlock()
}

func (d *dumper) writeErrors() {
	d.mu.Lock()
	text := strings.Join(d.sum.Errors, "\n") + "\n"
	d.mu.Unlock()
	path := filepath.Join(d.opts.Dir, ErrorsFile)
	if err := os.WriteFile(path, Redact([]byte(text)), 0o644); err == nil {
		d.sum.Files = append(d.sum.Files, ErrorsFile)
	}
}

// async runs f with at most Parallelism others.
func (d *dumper) async(ctx context.Context, f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-d.sem }()
		if ctx.Err() == nil {
			f()
		}
	}()
}

func (d *dumper) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.CallTimeout)
}

// namespace dumps one namespace.
func (d *dumper) namespace(ctx context.Context, ns string) {
	pods := d.pods(ctx, ns, metav1.ListOptions{}, filepath.Join(ns, "pods.yaml"))
	d.events(ctx, ns)
	d.services(ctx, ns)
	d.configMaps(ctx, ns, filepath.Join(ns, "configmaps.yaml"), nil)
	d.secrets(ctx, ns)
	if !d.opts.NoMesh {
		d.policies(ctx, ns)
	}
	for i := range pods {
		d.podLogs(ctx, &pods[i])
		d.configDump(ctx, &pods[i])
	}
}

// istiod dumps istiod's pods and logs and the mesh ConfigMaps.
func (d *dumper) istiod(ctx context.Context) {
	ns := d.opts.IstioNamespace
	pods := d.pods(ctx, ns, metav1.ListOptions{LabelSelector: istionames.IstiodSelector}, filepath.Join(ns, "istiod-pods.yaml"))
	if pods != nil && len(pods) == 0 {
		d.noteErr("istiod: no pods labelled %s in namespace %s (set DumpOptions.IstioNamespace to where istiod runs)", istionames.IstiodSelector, ns)
	}
	for i := range pods {
		d.podLogs(ctx, &pods[i])
	}
	// The mesh config lives in ConfigMap "istio" ("istio-<revision>" per revision), key "mesh".
	d.configMaps(ctx, ns, filepath.Join(ns, "mesh-config.yaml"), func(cm *corev1.ConfigMap) bool {
		_, mesh := cm.Data[istionames.MeshConfigKey]
		return mesh && (cm.Name == istionames.MeshConfigMap || strings.HasPrefix(cm.Name, istionames.MeshConfigMap+"-"))
	})
}

// pods lists and writes pods (nil when the list failed).
func (d *dumper) pods(ctx context.Context, ns string, lo metav1.ListOptions, rel string) []corev1.Pod {
	cctx, cancel := d.call(ctx)
	defer cancel()
	list, err := d.kube.CoreV1().Pods(ns).List(cctx, lo)
	if err != nil {
		d.noteErr("pods in %s: %v", ns, err)
		return nil
	}
	objs := make([]runtime.Object, 0, len(list.Items))
	for i := range list.Items {
		p := list.Items[i].DeepCopy()
		maskPodEnv(p)
		p.APIVersion, p.Kind = "v1", "Pod"
		objs = append(objs, p)
	}
	d.writeYAML(rel, fmt.Sprintf("pods in %s (%s)", ns, selectorText(lo)), objs)
	return list.Items
}

func selectorText(lo metav1.ListOptions) string {
	if lo.LabelSelector == "" {
		return "all"
	}
	return lo.LabelSelector
}

func (d *dumper) services(ctx context.Context, ns string) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	list, err := d.kube.CoreV1().Services(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		d.noteErr("services in %s: %v", ns, err)
		return
	}
	objs := make([]runtime.Object, 0, len(list.Items))
	for i := range list.Items {
		s := list.Items[i].DeepCopy()
		s.APIVersion, s.Kind = "v1", "Service"
		objs = append(objs, s)
	}
	d.writeYAML(filepath.Join(ns, "services.yaml"), "services in "+ns, objs)
}

func (d *dumper) configMaps(ctx context.Context, ns, rel string, keep func(*corev1.ConfigMap) bool) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	list, err := d.kube.CoreV1().ConfigMaps(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		d.noteErr("configmaps in %s: %v", ns, err)
		return
	}
	objs := make([]runtime.Object, 0, len(list.Items))
	for i := range list.Items {
		if keep != nil && !keep(&list.Items[i]) {
			continue
		}
		c := list.Items[i].DeepCopy()
		c.APIVersion, c.Kind = "v1", "ConfigMap"
		c.BinaryData = nil // opaque bytes say nothing readable and could hold anything
		objs = append(objs, c)
	}
	d.writeYAML(rel, "configmaps in "+ns, objs)
}

// secrets lists Secrets by name and type only: their data never reaches a file.
func (d *dumper) secrets(ctx context.Context, ns string) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	list, err := d.kube.CoreV1().Secrets(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		d.noteErr("secret names in %s: %v", ns, err)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Secrets in %s: name and type only; their data is never written.\n", ns)
	for _, s := range list.Items {
		fmt.Fprintf(&b, "%s\t%s\n", s.Name, s.Type)
	}
	d.write(filepath.Join(ns, "secrets.txt"), []byte(b.String()))
}

// writeYAML writes objects as a YAML stream, without managedFields (noise) and with a
// header saying what was listed (an empty list is evidence too).
func (d *dumper) writeYAML(rel, what string, objs []runtime.Object) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %d\n", what, len(objs))
	for _, o := range objs {
		if m, ok := o.(metav1.Object); ok {
			m.SetManagedFields(nil)
		}
		y, err := yaml.Marshal(o)
		if err != nil {
			d.noteErr("%s: marshal %T: %v", rel, o, err)
			continue
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	d.write(rel, []byte(b.String()))
}
