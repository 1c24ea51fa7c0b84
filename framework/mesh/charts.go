package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// chartSource finds Istio's charts: a Helm repository, an OCI registry or a local directory.
type chartSource interface {
	// versions lists every version of c the source holds.
	versions(ctx context.Context, c Chart) ([]Version, error)
	// load returns c at exactly version v.
	load(ctx context.Context, c Chart, v Version) (*chart.Chart, error)
	// String names the source in messages.
	String() string
}

func newChartSource(o Options) chartSource {
	if o.ChartDir != "" {
		return &dirSource{dir: o.ChartDir}
	}
	if IsOCI(o.ChartRepo) {
		return newOCISource(o.ChartRepo)
	}
	// The timeout backs up callers that pass a context without a deadline: a blackholed
	// mirror must not hang a run for the operating system's connect timeout.
	return &repoSource{url: strings.TrimSuffix(o.ChartRepo, "/"), client: &http.Client{Timeout: 90 * time.Second}}
}

// repoSource reads a Helm HTTP repository: index.yaml, then the packaged charts it lists.
// The index is read once per Installer; charts once per version.
type repoSource struct {
	url    string
	client *http.Client

	mu     sync.Mutex
	index  *repo.IndexFile
	charts map[string]*chart.Chart
}

func (r *repoSource) String() string { return "chart repository " + r.url }

// fix is the advice every source error ends with.
func sourceFix() string {
	return fmt.Sprintf("check the network (and HTTPS_PROXY), set %s to a reachable mirror of %s (or of %s), or set %s to a local directory holding base/, istiod/ and gateway/ charts",
		EnvChartRepo, DefaultChartRepo, OCIChartRepo, EnvChartDir)
}

func (r *repoSource) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	// Istio's index is a few MB; 256 MiB bounds a misbehaving server.
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}

func (r *repoSource) loadIndex(ctx context.Context) (*repo.IndexFile, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.index != nil {
		return r.index, nil
	}
	u := r.url + "/index.yaml"
	data, err := r.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("cannot read the Istio chart index %s: %w; %s", u, err, sourceFix())
	}
	idx := &repo.IndexFile{}
	if err := yaml.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("%s is not a Helm repository index: %w; %s", u, err, sourceFix())
	}
	if idx.APIVersion == "" {
		return nil, fmt.Errorf("%s is not a Helm repository index (no apiVersion); %s", u, sourceFix())
	}
	idx.SortEntries()
	r.index = idx
	return idx, nil
}

func (r *repoSource) versions(ctx context.Context, c Chart) ([]Version, error) {
	idx, err := r.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, cv := range idx.Entries[string(c)] {
		if cv == nil || cv.Metadata == nil || cv.Removed {
			continue
		}
		if v, err := ParseVersion(cv.Version); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

func (r *repoSource) load(ctx context.Context, c Chart, v Version) (*chart.Chart, error) {
	idx, err := r.loadIndex(ctx)
	if err != nil {
		return nil, err
	}
	key := string(c) + "-" + v.String()
	r.mu.Lock()
	cached := r.charts[key]
	r.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	var entry *repo.ChartVersion
	for _, cv := range idx.Entries[string(c)] {
		if cv != nil && cv.Metadata != nil && cv.Version == v.String() {
			entry = cv
			break
		}
	}
	if entry == nil || len(entry.URLs) == 0 {
		return nil, fmt.Errorf("%s lists no chart %s at %s; %s", r, c, v, sourceFix())
	}
	u, err := repo.ResolveReferenceURL(r.url, entry.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("chart %s %s: bad URL %q in %s/index.yaml: %w", c, v, entry.URLs[0], r.url, err)
	}
	data, err := r.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("cannot download chart %s %s from %s: %w; %s", c, v, u, err, sourceFix())
	}
	if entry.Digest != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, entry.Digest) {
			return nil, fmt.Errorf("chart %s %s from %s has sha256 %s, but the index says %s: the download is corrupt or the mirror is stale; retry, or refresh the mirror", c, v, u, got, entry.Digest)
		}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart %s %s from %s: %w", c, v, u, err)
	}
	if err := checkLoaded(ch, c, v, u); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.charts == nil {
		r.charts = map[string]*chart.Chart{}
	}
	r.charts[key] = ch
	r.mu.Unlock()
	return ch, nil
}

// dirSource reads charts from a directory: <dir>/<chart>/ (an unpacked chart, one version) and
// <dir>/<chart>-<version>.tgz (as `helm pull` saves them).
type dirSource struct{ dir string }

func (d *dirSource) String() string { return "chart directory " + d.dir }

func (d *dirSource) versions(_ context.Context, c Chart) ([]Version, error) {
	if st, err := os.Stat(d.dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s=%s is not a directory: set it to a directory holding base/, istiod/ and gateway/ charts (or %s-<version>.tgz files from `helm pull`)", EnvChartDir, d.dir, c)
	}
	var out []Version
	if md, err := chartutil.LoadChartfile(filepath.Join(d.dir, string(c), "Chart.yaml")); err == nil {
		if v, err := ParseVersion(md.Version); err == nil {
			out = append(out, v)
		}
	}
	archives, _ := filepath.Glob(filepath.Join(d.dir, string(c)+"-*.tgz"))
	for _, a := range archives {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(a), string(c)+"-"), ".tgz")
		if v, err := ParseVersion(s); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

func (d *dirSource) load(_ context.Context, c Chart, v Version) (*chart.Chart, error) {
	unpacked := filepath.Join(d.dir, string(c))
	if md, err := chartutil.LoadChartfile(filepath.Join(unpacked, "Chart.yaml")); err == nil && md.Version == v.String() {
		ch, err := loader.LoadDir(unpacked)
		if err != nil {
			return nil, fmt.Errorf("chart %s in %s: %w", c, unpacked, err)
		}
		return ch, checkLoaded(ch, c, v, unpacked)
	}
	archive := filepath.Join(d.dir, string(c)+"-"+v.String()+".tgz")
	if _, err := os.Stat(archive); err == nil {
		ch, err := loader.LoadFile(archive)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", archive, err)
		}
		return ch, checkLoaded(ch, c, v, archive)
	}
	return nil, fmt.Errorf("%s has no chart %s at %s (looked for %s/Chart.yaml with version %s and %s)", d, c, v, unpacked, v, archive)
}

// checkLoaded refuses a chart whose own metadata disagrees with where it was found: installing
// the wrong chart under the right name would make every later report lie.
func checkLoaded(ch *chart.Chart, c Chart, v Version, from string) error {
	if ch.Metadata == nil {
		return fmt.Errorf("chart at %s has no Chart.yaml metadata", from)
	}
	if ch.Metadata.Name != string(c) || ch.Metadata.Version != v.String() {
		return fmt.Errorf("chart at %s is %s %s, expected %s %s", from, ch.Metadata.Name, ch.Metadata.Version, c, v)
	}
	return nil
}

// VersionError says that a source lacks an Istio version, and what it has instead.
type VersionError struct {
	Want    Version
	Missing []Chart   // the charts that do not exist at Want
	Nearest []Version // versions at which all three charts exist, best first
	// Newest is the newest version at which all three charts exist (a release, unless the
	// source holds only pre-releases or Want is one); nil when there is none.
	Newest *Version
	Source string // the source read, as in messages: "chart repository https://…"
	// Official is whether the source is one of Istio's own repositories (DefaultChartRepo,
	// OCIChartRepo): a version newer than those hold is not released, rather than missing
	// from a stale mirror.
	Official bool
}

func (e *VersionError) Error() string {
	var b strings.Builder
	names := make([]string, len(e.Missing))
	for i, c := range e.Missing {
		names[i] = string(c)
	}
	fmt.Fprintf(&b, "Istio %s: %s has no %s chart at that version", e.Want, e.Source, strings.Join(names, ", "))
	newer := e.Newest != nil && e.Want.Compare(*e.Newest) > 0
	if e.Newest != nil {
		fmt.Fprintf(&b, "; the newest version it holds is %s", e.Newest)
		if newer {
			fmt.Fprintf(&b, ", older than %s", e.Want)
		}
	}
	if len(e.Nearest) > 0 {
		vs := make([]string, len(e.Nearest))
		for i, v := range e.Nearest {
			vs[i] = v.String()
		}
		fmt.Fprintf(&b, "; nearest versions that exist: %s", strings.Join(vs, ", "))
	} else {
		b.WriteString("; it holds no version with all of base, istiod and gateway")
	}
	switch {
	case newer && !e.Official:
		// A stale mirror, or the retired storage.googleapis.com repository (no 1.31 charts):
		// the fix is the source, not an older Istio.
		fmt.Fprintf(&b, ". Fix: set %s to a repository that has %s (Istio publishes its charts at %s and %s; a mirror may be stale), or %s to one of those, or %s to a directory holding its base/, istiod/ and gateway/ charts",
			EnvChartRepo, e.Want, DefaultChartRepo, OCIChartRepo, EnvVersion, EnvChartDir)
	default:
		fmt.Fprintf(&b, ". Fix: set %s to one of those, or %s to a repository that has %s, or %s to a directory holding its base/, istiod/ and gateway/ charts",
			EnvVersion, EnvChartRepo, e.Want, EnvChartDir)
	}
	return b.String()
}

// nearestLimit is how many alternatives an error lists.
const nearestLimit = 6

// checkVersion parses version (before any network access) and confirms that src holds every
// one of charts (default: the three of Charts) at it.
func checkVersion(ctx context.Context, src chartSource, version string, charts ...Chart) (Version, error) {
	if len(charts) == 0 {
		charts = Charts
	}
	want, err := ParseVersion(version)
	if err != nil {
		return Version{}, err
	}
	counts := map[Version]int{}
	var missing []Chart
	for _, c := range charts {
		vs, err := src.versions(ctx, c)
		if err != nil {
			return want, err
		}
		found := false
		seen := map[Version]bool{}
		for _, v := range vs {
			if v == want {
				found = true
			}
			if !seen[v] {
				seen[v] = true
				counts[v]++
			}
		}
		if !found {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return want, nil
	}
	var complete []Version
	for v, n := range counts {
		if n == len(charts) {
			complete = append(complete, v)
		}
	}
	sort.Slice(complete, func(i, j int) bool { return complete[i].Compare(complete[j]) > 0 })
	return want, &VersionError{Want: want, Missing: missing, Nearest: Nearest(want, complete, nearestLimit),
		Newest: newest(want, complete), Source: src.String(), Official: official(src)}
}

// newest picks from have (newest first) the newest release, or the newest pre-release when
// want is one or there is no release.
func newest(want Version, have []Version) *Version {
	for _, v := range have {
		if v.Stable() || !want.Stable() {
			return &v
		}
	}
	if len(have) > 0 {
		return &have[0]
	}
	return nil
}

// official reports whether src is one of Istio's own chart repositories.
func official(src chartSource) bool {
	switch s := src.(type) {
	case *repoSource:
		return s.url == strings.TrimSuffix(DefaultChartRepo, "/")
	case *ociSource:
		return ociScheme+s.ref == OCIChartRepo
	}
	return false
}

// IsVersionError reports whether err (or one it wraps) is a *VersionError.
func IsVersionError(err error) bool {
	var ve *VersionError
	return errors.As(err, &ve)
}
