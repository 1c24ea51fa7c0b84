package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/registry"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// ociScheme prefixes an OCI chart repository reference (ISTIO_CHART_REPO=oci://…).
const ociScheme = "oci://"

// IsOCI reports whether a chart repository reference names an OCI registry.
func IsOCI(repo string) bool { return strings.HasPrefix(repo, ociScheme) }

// ociSource reads charts from an OCI registry with Helm's registry client: the versions of a
// chart are the tags of <ref>/<chart>, and a version is pulled as <ref>/<chart>:<version>
// (as Istio publishes them under oci://ghcr.io/istio/release/charts). Tags are listed once per
// chart and charts pulled once per version.
type ociSource struct {
	ref       string // host[:port]/path, without oci:// and trailing slash
	plainHTTP bool
	timeout   time.Duration

	mu     sync.Mutex
	tags   map[Chart][]Version
	charts map[string]*chart.Chart

	netMu sync.Mutex // held by do
	cl    *registry.Client
	ctx   atomic.Pointer[context.Context] // the context of the call in do
}

func newOCISource(repo string) *ociSource {
	ref := strings.TrimSuffix(strings.TrimPrefix(repo, ociScheme), "/")
	host := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		host = ref[:i]
	}
	return &ociSource{ref: ref, plainHTTP: loopbackHost(host), timeout: 90 * time.Second}
}

// loopbackHost: a registry on this machine (localhost:5000, 127.0.0.1:5000, [::1]:5000) is
// spoken to over plain HTTP, as Docker does for its local registries; any other over HTTPS.
func loopbackHost(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (o *ociSource) String() string { return "OCI chart repository " + ociScheme + o.ref }

// do runs f with the source's registry client, every request of which carries ctx: Helm's
// client itself uses context.Background, so a deadline or Ctrl-C would otherwise not reach the
// network. Calls are serialised (the install reads charts one after another anyway) so that
// one client, and its cache of registry tokens, serves them all.
func (o *ociSource) do(ctx context.Context, f func(*registry.Client) error) error {
	o.netMu.Lock()
	defer o.netMu.Unlock()
	if o.cl == nil {
		base := http.DefaultTransport.(*http.Transport).Clone()
		hc := &http.Client{Timeout: o.timeout, Transport: &ctxTransport{ctx: &o.ctx, base: base}}
		opts := []registry.ClientOption{registry.ClientOptHTTPClient(hc), registry.ClientOptEnableCache(true)}
		if o.plainHTTP {
			opts = append(opts, registry.ClientOptPlainHTTP())
		}
		cl, err := registry.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("helm registry client: %w", err)
		}
		o.cl = cl
	}
	o.ctx.Store(&ctx)
	defer o.ctx.Store(nil)
	return f(o.cl)
}

// ctxTransport gives each request the context of the call in progress.
type ctxTransport struct {
	ctx  *atomic.Pointer[context.Context]
	base http.RoundTripper
}

func (t *ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := context.Background()
	if p := t.ctx.Load(); p != nil {
		ctx = *p
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(req.WithContext(ctx))
}

func (o *ociSource) versions(ctx context.Context, c Chart) ([]Version, error) {
	o.mu.Lock()
	cached, ok := o.tags[c]
	o.mu.Unlock()
	if ok {
		return cached, nil
	}
	repo := o.ref + "/" + string(c)
	var tags []string
	err := o.do(ctx, func(cl *registry.Client) (err error) {
		tags, err = cl.Tags(repo)
		return err
	})
	var resp *errcode.ErrorResponse
	switch {
	case errors.As(err, &resp) && resp.StatusCode == http.StatusNotFound:
		// The registry has no such chart: a version error names it, with what exists.
		tags = nil
	case err != nil:
		return nil, fmt.Errorf("cannot list the versions (tags) of %s%s: %w; %s", ociScheme, repo, err, sourceFix())
	}
	var out []Version
	for _, t := range tags {
		if v, err := ParseVersion(t); err == nil {
			out = append(out, v)
		}
	}
	o.mu.Lock()
	if o.tags == nil {
		o.tags = map[Chart][]Version{}
	}
	o.tags[c] = out
	o.mu.Unlock()
	return out, nil
}

func (o *ociSource) load(ctx context.Context, c Chart, v Version) (*chart.Chart, error) {
	key := string(c) + "-" + v.String()
	o.mu.Lock()
	cached := o.charts[key]
	o.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	ref := o.ref + "/" + string(c) + ":" + v.String()
	// Helm's client checks every blob against its digest in the manifest.
	var res *registry.PullResult
	err := o.do(ctx, func(cl *registry.Client) (err error) {
		res, err = cl.Pull(ref, registry.PullOptWithChart(true))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot pull chart %s %s from %s%s: %w; %s", c, v, ociScheme, ref, err, sourceFix())
	}
	if res.Chart == nil || len(res.Chart.Data) == 0 {
		return nil, fmt.Errorf("%s%s holds no Helm chart layer", ociScheme, ref)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s%s: %w", c, v, ociScheme, ref, err)
	}
	if err := checkLoaded(ch, c, v, ociScheme+ref); err != nil {
		return nil, err
	}
	o.mu.Lock()
	if o.charts == nil {
		o.charts = map[string]*chart.Chart{}
	}
	o.charts[key] = ch
	o.mu.Unlock()
	return ch, nil
}

// validOCIRef checks an oci:// chart repository reference without the network.
func validOCIRef(repo string) error {
	u, err := url.Parse(repo)
	if err != nil || u.Scheme != "oci" || u.Host == "" {
		return errors.New("is not an oci://host/path reference")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(u.Path, ":@") {
		return errors.New("must name the repository only (no tag, digest, query or credentials): the chart and version are appended")
	}
	return nil
}
