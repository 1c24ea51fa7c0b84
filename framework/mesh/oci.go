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

// client returns a registry client whose every request carries ctx: Helm's client itself
// uses context.Background, so a deadline or Ctrl-C would otherwise not reach the network.
func (o *ociSource) client(ctx context.Context) (*registry.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Timeout: o.timeout, Transport: ctxTransport{ctx: ctx, base: base}}
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(hc)}
	if o.plainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	c, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	return c, nil
}

type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(req.WithContext(t.ctx))
}

func (o *ociSource) versions(ctx context.Context, c Chart) ([]Version, error) {
	o.mu.Lock()
	cached, ok := o.tags[c]
	o.mu.Unlock()
	if ok {
		return cached, nil
	}
	cl, err := o.client(ctx)
	if err != nil {
		return nil, err
	}
	repo := o.ref + "/" + string(c)
	tags, err := cl.Tags(repo)
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
	cl, err := o.client(ctx)
	if err != nil {
		return nil, err
	}
	ref := o.ref + "/" + string(c) + ":" + v.String()
	// Helm's client checks every blob against its digest in the manifest.
	res, err := cl.Pull(ref, registry.PullOptWithChart(true))
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
