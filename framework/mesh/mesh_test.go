package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"meshconform/internal/istiosrc"
	"meshconform/manifests/kind"
)

func TestParseVersion(t *testing.T) {
	good := map[string]Version{
		"1.31.1":          {1, 31, 1, ""},
		"1.32.0-beta.0":   {1, 32, 0, "beta.0"},
		"1.30.0-rc.1":     {1, 30, 0, "rc.1"},
		"10.0.12":         {10, 0, 12, ""},
		"1.0.0-alpha.abc": {1, 0, 0, "alpha.abc"},
	}
	for in, want := range good {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("ParseVersion(%q).String() = %q", in, got.String())
		}
	}
	bad := map[string]string{
		"v1.31.1":  `drop the leading v: "1.31.1"`,
		"1.31":     "give the patch release too",
		" 1.31.1":  "surrounding spaces",
		"1.31.x":   "MAJOR.MINOR.PATCH",
		"01.31.1":  "MAJOR.MINOR.PATCH",
		"latest":   "MAJOR.MINOR.PATCH",
		"":         "MAJOR.MINOR.PATCH",
		"1.31.1-":  "MAJOR.MINOR.PATCH",
		"1.31.1+b": "MAJOR.MINOR.PATCH",
	}
	for in, hint := range bad {
		_, err := ParseVersion(in)
		if err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), hint) || !strings.Contains(err.Error(), EnvVersion) {
			t.Errorf("ParseVersion(%q) error %q: want it to contain %q and name %s", in, err, hint, EnvVersion)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	ordered := []string{"1.29.9", "1.30.0-alpha.1", "1.30.0-beta.0", "1.30.0-beta.2", "1.30.0-beta.10", "1.30.0-rc.0", "1.30.0", "1.30.1", "1.31.0", "2.0.0"}
	for a := range ordered {
		for b := range ordered {
			va, vb := mustVersion(t, ordered[a]), mustVersion(t, ordered[b])
			if got, want := va.Compare(vb), sign(a-b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", va, vb, got, want)
			}
		}
	}
}

func mustVersion(t testing.TB, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func versions(t testing.TB, ss ...string) []Version {
	out := make([]Version, len(ss))
	for i, s := range ss {
		out[i] = mustVersion(t, s)
	}
	return out
}

func TestNearest(t *testing.T) {
	have := versions(t, "1.29.0", "1.29.3", "1.30.0", "1.30.4", "1.30.5", "1.31.0", "1.31.1", "1.31.2", "1.31.4",
		"1.32.0-beta.0", "1.32.0", "1.32.1", "1.33.0", "1.28.7", "2.0.0")
	cases := []struct {
		want  string
		limit int
		out   string
	}{
		// Same minor first, closest patch first (newer wins a tie), then the newest of each
		// other minor, closest minor first (newer minor wins a tie).
		{"1.31.3", 0, "1.31.4 1.31.2 1.31.1 1.31.0 1.32.1 1.30.5 1.33.0 1.29.3 1.28.7 2.0.0"},
		{"1.31.9", 3, "1.31.4 1.31.2 1.31.1"},
		{"1.34.0", 3, "1.33.0 1.32.1 1.31.4"},
		{"1.27.0", 2, "1.28.7 1.29.3"},
		// A pre-release is suggested only for a pre-release.
		{"1.32.0-beta.1", 2, "1.32.0 1.32.0-beta.0"},
		{"1.32.5", 2, "1.32.1 1.32.0"},
	}
	for _, c := range cases {
		got := Nearest(mustVersion(t, c.want), have, c.limit)
		var s []string
		for _, v := range got {
			s = append(s, v.String())
		}
		if strings.Join(s, " ") != c.out {
			t.Errorf("Nearest(%s, limit %d) = %s\n want %s", c.want, c.limit, strings.Join(s, " "), c.out)
		}
	}
}

func TestNewValidates(t *testing.T) {
	cases := map[string]struct {
		o    Options
		want string
	}{
		"no version":      {Options{}, EnvVersion},
		"bad version":     {Options{Version: "1.31"}, EnvVersion},
		"bad revision":    {Options{Version: "1.31.1", Revision: "Canary_1"}, EnvRevision},
		"default":         {Options{Version: "1.31.1", Revision: "default"}, EnvRevision},
		"bad repo":        {Options{Version: "1.31.1", ChartRepo: "istio-release.storage.googleapis.com/charts"}, EnvChartRepo},
		"bad namespace":   {Options{Version: "1.31.1", Namespace: "Istio"}, "namespace"},
		"values of chart": {Options{Version: "1.31.1", Values: map[Chart]map[string]any{"istio-cni": {}}}, "unknown chart"},
	}
	for name, c := range cases {
		_, err := New(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New(%+v) error %v, want one containing %q", name, c.o, err, c.want)
		}
	}
	in, err := New(Options{Version: "1.31.1"})
	if err != nil {
		t.Fatal(err)
	}
	o := in.Options()
	if o.ChartRepo != DefaultChartRepo || o.Namespace != "istio-system" || o.GatewayNamespace != "istio-ingress" || o.Timeout != DefaultTimeout {
		t.Errorf("defaults not applied: %+v", o)
	}
}

func TestNames(t *testing.T) {
	def := Options{}
	rev := Options{Revision: "1-31-1"}
	got := []string{
		def.ReleaseName(ChartBase), def.ReleaseName(ChartIstiod), def.ReleaseName(ChartGateway),
		def.InjectorWebhookName(), def.MeshConfigMapName(), def.IstiodDeploymentName(),
		rev.ReleaseName(ChartBase), rev.ReleaseName(ChartIstiod), rev.ReleaseName(ChartGateway),
		rev.InjectorWebhookName(), rev.MeshConfigMapName(), rev.IstiodDeploymentName(),
	}
	want := []string{
		"istio-base", "istiod", "istio-ingressgateway", "istio-sidecar-injector", "istio", "istiod",
		"istio-base", "istiod-1-31-1", "istio-ingressgateway-1-31-1", "istio-sidecar-injector-1-31-1", "istio-1-31-1", "istiod-1-31-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names = %v\nwant %v", got, want)
	}
	// Outside istio-system Istio's chart appends the namespace to the injector's name.
	webhooks := []struct {
		ns, rev, want string
	}{
		{"istio-system", "", "istio-sidecar-injector"},
		{"istio-system", "1-31", "istio-sidecar-injector-1-31"},
		{"mesh", "", "istio-sidecar-injector-mesh"},
		{"mesh", "1-31", "istio-sidecar-injector-1-31-mesh"},
	}
	for _, w := range webhooks {
		o, want := Options{Namespace: w.ns, Revision: w.rev}, w.want
		if got := o.InjectorWebhookName(); got != want {
			t.Errorf("Options{Namespace: %q, Revision: %q}.InjectorWebhookName() = %q, want %q", o.Namespace, o.Revision, got, want)
		}
	}
}

// A control plane found on a cluster names its webhook the same way (provision waits on it).
func TestControlPlaneInjectorName(t *testing.T) {
	for cp, want := range map[ControlPlane]string{
		{Namespace: "istio-system"}:                     "istio-sidecar-injector",
		{Namespace: "istio-system", Revision: "canary"}: "istio-sidecar-injector-canary",
		{Namespace: "mesh", Revision: "canary"}:         "istio-sidecar-injector-canary-mesh",
	} {
		if got := cp.InjectorWebhookName(); got != want {
			t.Errorf("%+v.InjectorWebhookName() = %q, want %q", cp, got, want)
		}
	}
}

// TestRenderedInjectorName renders the istiod chart (whose webhook is named as in Istio's
// istio-discovery/templates/mutatingwebhook.yaml) in and outside istio-system, with and without
// a revision: the name the readiness wait looks for is the name the chart gives.
func TestRenderedInjectorName(t *testing.T) {
	dir := chartDir(t, allCharts("1.31.1"))
	for _, ns := range []string{"istio-system", "mesh"} {
		for _, rev := range []string{"", "canary"} {
			in, err := New(Options{Version: "1.31.1", ChartDir: dir, Namespace: ns, Revision: rev})
			if err != nil {
				t.Fatal(err)
			}
			out, err := in.Render(context.Background(), ChartIstiod)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for k := range manifestObjects(t, out) {
				if name, ok := strings.CutPrefix(k, "MutatingWebhookConfiguration/"); ok {
					names = append(names, name)
				}
			}
			if want := in.Options().InjectorWebhookName(); len(names) != 1 || names[0] != want {
				t.Errorf("namespace %q, revision %q: chart renders webhook %v, InjectorWebhookName() = %q", ns, rev, names, want)
			}
		}
	}
}

// TestDefaultValues checks the values as data: what a CI runner needs, in Istio's value paths.
func TestDefaultValues(t *testing.T) {
	istiod, err := DefaultValues(ChartIstiod)
	if err != nil {
		t.Fatal(err)
	}
	gateway, err := DefaultValues(ChartGateway)
	if err != nil {
		t.Fatal(err)
	}
	expect := []struct {
		vals map[string]any
		path string
		want any
	}{
		{istiod, "resources.requests.cpu", "10m"},
		{istiod, "resources.requests.memory", "100Mi"},
		{istiod, "global.proxy.resources.requests.cpu", "10m"},
		{istiod, "global.proxy.resources.requests.memory", "40Mi"},
		{istiod, "meshConfig.accessLogFile", "/dev/stdout"},
		{istiod, "global.logAsJson", false},
		{istiod, "autoscaleEnabled", false},
		{gateway, "service.type", "NodePort"},
		{gateway, "autoscaling.enabled", false},
		{gateway, "resources.requests.cpu", "10m"},
	}
	for _, e := range expect {
		got, ok := lookupPath(e.vals, strings.Split(e.path, ".")...)
		if !ok || !reflect.DeepEqual(got, e.want) {
			t.Errorf("%s = %v (set: %v), want %v", e.path, got, ok, e.want)
		}
	}
	ports := map[string]float64{}
	for _, p := range gateway["service"].(map[string]any)["ports"].([]any) {
		pm := p.(map[string]any)
		if np, ok := pm["nodePort"]; ok {
			ports[pm["name"].(string)] = np.(float64)
		}
	}
	if want := map[string]float64{"status-port": StatusNodePort, "http2": HTTPNodePort, "https": HTTPSNodePort}; !reflect.DeepEqual(ports, want) {
		t.Errorf("gateway nodePorts = %v, want %v (manifests/kind maps these)", ports, want)
	}
	if _, err := DefaultValues("istio-cni"); err == nil {
		t.Error("DefaultValues of an unknown chart succeeded")
	}
}

func TestChartValuesMerge(t *testing.T) {
	o := Options{
		Version: "1.31.1", Revision: "canary", Hub: "mirror.example/istio", Namespace: "mesh",
		Values: map[Chart]map[string]any{
			ChartIstiod: {
				"meshConfig": map[string]any{"trustDomain": "example.org"},
				"resources":  map[string]any{"requests": map[string]any{"memory": "200Mi"}},
			},
		},
	}
	v, err := o.ChartValues(ChartIstiod)
	if err != nil {
		t.Fatal(err)
	}
	expect := map[string]any{
		"meshConfig.trustDomain":                 "example.org", // override added
		"meshConfig.accessLogFile":               "/dev/stdout", // default kept beside it
		"resources.requests.memory":              "200Mi",       // override replaced
		"resources.requests.cpu":                 "10m",         // sibling kept
		"revision":                               "canary",
		"global.hub":                             "mirror.example/istio",
		"global.istioNamespace":                  "mesh",
		"global.proxy.resources.requests.memory": "40Mi",
	}
	for path, want := range expect {
		if got, _ := lookupPath(v, strings.Split(path, ".")...); !reflect.DeepEqual(got, want) {
			t.Errorf("istiod %s = %v, want %v", path, got, want)
		}
	}
	// Overrides must not leak into the defaults.
	if d, _ := DefaultValues(ChartIstiod); d["meshConfig"].(map[string]any)["trustDomain"] != nil {
		t.Error("an override changed DefaultValues")
	}
	gw, err := o.ChartValues(ChartGateway)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range gw["service"].(map[string]any)["ports"].([]any) {
		if np, ok := p.(map[string]any)["nodePort"]; ok {
			t.Errorf("revisioned gateway keeps nodePort %v: it would collide with the default gateway's", np)
		}
	}
	def, _ := Options{Version: "1.31.1"}.ChartValues(ChartGateway)
	if _, ok := lookupPath(def, "revision"); ok {
		t.Error("default gateway got a revision value")
	}
}

func TestMergeValuesReplacesLists(t *testing.T) {
	base := map[string]any{"a": map[string]any{"l": []any{1, 2}, "k": "v"}, "s": "x"}
	over := map[string]any{"a": map[string]any{"l": []any{3}}, "s": nil}
	got := MergeValues(base, over)
	want := map[string]any{"a": map[string]any{"l": []any{3}, "k": "v"}, "s": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MergeValues = %v, want %v", got, want)
	}
	got["a"].(map[string]any)["k"] = "changed"
	if base["a"].(map[string]any)["k"] != "v" {
		t.Error("MergeValues shares maps with its input")
	}
}

// manifestObjects parses a rendered manifest into objects keyed "Kind/name".
func manifestObjects(t testing.TB, manifest string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("rendered manifest is not YAML: %v\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		md, _ := obj["metadata"].(map[string]any)
		out[fmt.Sprintf("%s/%s", obj["kind"], md["name"])] = obj
	}
	return out
}

func get(t testing.TB, obj map[string]any, path ...string) any {
	t.Helper()
	v, ok := lookupPath(obj, path...)
	if !ok {
		t.Errorf("%s missing in %v", strings.Join(path, "."), obj["metadata"])
	}
	return v
}

// srcHub is the image registry the tests give Istio's source charts: their values leave hub and
// tag empty for istio/release-builder to fill in (istio-discovery/values.yaml: `hub: ""`,
// `tag: ""`), so an install from source must name both. No image is pulled in these tests.
const srcHub = "registry.meshconform.test/istio"

// srcValues are the values an install from Istio's source charts of branch b adds: the image tag
// b.Version (see srcHub).
func srcValues(b istiosrc.Branch) map[Chart]map[string]any {
	return map[Chart]map[string]any{ChartIstiod: {"global": map[string]any{"tag": b.Version}}}
}

// TestRenderCarriesSmallRequests renders Istio's real charts (release-1.31's source, whose
// values.yaml hold Istio's large defaults) through the installer, and checks the manifests
// carry meshconform's values.
func TestRenderCarriesSmallRequests(t *testing.T) {
	b := istiosrc.Release131
	in, err := New(Options{Version: b.Version, ChartDir: realCharts(t, b), Hub: srcHub, Values: srcValues(b)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	istiod, err := in.Render(ctx, ChartIstiod)
	if err != nil {
		t.Fatal(err)
	}
	objs := manifestObjects(t, istiod)
	dep := objs["Deployment/istiod"]
	if dep == nil {
		t.Fatalf("no Deployment/istiod in the istiod chart's manifest; objects: %v", keys(objs))
	}
	c := get(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	if got := fmt.Sprint(get(t, c, "resources", "requests")); got != "map[cpu:10m memory:100Mi]" {
		t.Errorf("istiod requests = %s, want cpu 10m, memory 100Mi", got)
	}
	if got := get(t, c, "image"); got != srcHub+"/pilot:"+b.Version {
		t.Errorf("istiod image = %v", got)
	}
	for _, a := range get(t, c, "args").([]any) {
		if a == "--log_as_json" {
			t.Error("istiod logs as JSON")
		}
	}
	var mesh map[string]any
	if err := yaml.Unmarshal([]byte(get(t, objs["ConfigMap/istio"], "data", "mesh").(string)), &mesh); err != nil {
		t.Fatal(err)
	}
	if mesh["accessLogFile"] != "/dev/stdout" || mesh["enablePrometheusMerge"] != true {
		t.Errorf("mesh config = %v: want accessLogFile /dev/stdout beside the chart's defaults", mesh)
	}
	var inj map[string]any
	if err := yaml.Unmarshal([]byte(get(t, objs["ConfigMap/istio-sidecar-injector"], "data", "values").(string)), &inj); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(get(t, inj, "global", "proxy", "resources", "requests")); got != "map[cpu:10m memory:40Mi]" {
		t.Errorf("sidecar requests in the injector's values = %s, want cpu 10m, memory 40Mi", got)
	}
	for _, k := range []string{"PodDisruptionBudget/istiod", "HorizontalPodAutoscaler/istiod"} {
		if objs[k] != nil {
			t.Errorf("%s rendered: the CI values should switch it off", k)
		}
	}

	gw, err := in.Render(ctx, ChartGateway)
	if err != nil {
		t.Fatal(err)
	}
	gobjs := manifestObjects(t, gw)
	svc := gobjs["Service/istio-ingressgateway"]
	if svc == nil {
		t.Fatalf("no Service/istio-ingressgateway; objects: %v", keys(gobjs))
	}
	if got := get(t, svc, "spec", "type"); got != "NodePort" {
		t.Errorf("gateway service type = %v, want NodePort", got)
	}
	nodePorts := map[string]any{}
	for _, p := range get(t, svc, "spec", "ports").([]any) {
		pm := p.(map[string]any)
		nodePorts[pm["name"].(string)] = pm["nodePort"]
	}
	if nodePorts["http2"] != float64(HTTPNodePort) || nodePorts["https"] != float64(HTTPSNodePort) {
		t.Errorf("gateway nodePorts = %v, want http2 %d, https %d", nodePorts, HTTPNodePort, HTTPSNodePort)
	}
	// Every port fixed: the API server allocates a Service's ports in order, and a random
	// nodePort for one of them can draw 30080/30443 before the port that asks for it.
	for name, np := range nodePorts {
		if np == nil {
			t.Errorf("gateway port %s renders no nodePort: the API server would pick one at random", name)
		}
	}
	if gobjs["HorizontalPodAutoscaler/istio-ingressgateway"] != nil {
		t.Error("gateway HPA rendered")
	}
	gc := get(t, gobjs["Deployment/istio-ingressgateway"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	if got := fmt.Sprint(get(t, gc, "resources", "requests")); got != "map[cpu:10m memory:40Mi]" {
		t.Errorf("gateway requests = %s", got)
	}
}

// TestImagesAreTheRenderedOnes: the images preloaded (Options.Images) are the images the
// rendered charts run, for the default hub, ISTIO_HUB, and a global.hub given in Values: istiod's
// container, and the proxy image istiod's injector builds from the values it is given
// (global.hub/global.proxy.image:tag, as pkg/kube/inject's ProxyImage does).
func TestImagesAreTheRenderedOnes(t *testing.T) {
	dir := chartDir(t, allCharts("1.30.5"))
	cases := []struct {
		name string
		o    Options
		hub  string
	}{
		{"default", Options{}, DefaultHub},
		{"ISTIO_HUB", Options{Hub: "mirror.local:5000/istio"}, "mirror.local:5000/istio"},
		{"values", Options{Values: map[Chart]map[string]any{ChartIstiod: {"global": map[string]any{"hub": "other.example/istio"}}}}, "other.example/istio"},
	}
	for _, c := range cases {
		o := c.o
		o.Version, o.ChartDir = "1.30.5", dir
		imgs, err := o.Images()
		if err != nil {
			t.Fatalf("%s: Images: %v", c.name, err)
		}
		if want := []string{c.hub + "/pilot:1.30.5", c.hub + "/proxyv2:1.30.5"}; !reflect.DeepEqual(imgs, want) {
			t.Errorf("%s: Images() = %v, want %v", c.name, imgs, want)
		}
		in, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		out, err := in.Render(context.Background(), ChartIstiod)
		if err != nil {
			t.Fatal(err)
		}
		objs := manifestObjects(t, out)
		pilot := get(t, objs["Deployment/istiod"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["image"]
		var inj map[string]any
		if err := yaml.Unmarshal([]byte(get(t, objs["ConfigMap/istio-sidecar-injector"], "data", "values").(string)), &inj); err != nil {
			t.Fatal(err)
		}
		proxy := fmt.Sprintf("%v/%v:%s", get(t, inj, "global", "hub"), get(t, inj, "global", "proxy", "image"), o.Version)
		if rendered := []string{fmt.Sprint(pilot), proxy}; !reflect.DeepEqual(rendered, imgs) {
			t.Errorf("%s: the charts run %v, but Images() (the preload list) is %v", c.name, rendered, imgs)
		}
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestChartDir loads charts from a directory: unpacked and as `helm pull` archives.
func TestChartDir(t *testing.T) {
	ctx := context.Background()
	b := istiosrc.Release131
	unpacked, err := New(Options{Version: b.Version, ChartDir: realCharts(t, b)})
	if err != nil {
		t.Fatal(err)
	}
	if err := unpacked.CheckVersion(ctx, b.Version); err != nil {
		t.Fatalf("CheckVersion on the unpacked charts: %v", err)
	}
	ch, err := unpacked.LoadChart(ctx, ChartIstiod, b.Version)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Name != "istiod" || len(ch.Templates) == 0 {
		t.Errorf("loaded %s with %d templates", ch.Metadata.Name, len(ch.Templates))
	}

	dir := chartDir(t, map[Chart][]string{ChartBase: {"1.30.5", "1.31.1"}, ChartIstiod: {"1.30.5", "1.31.1"}, ChartGateway: {"1.30.5"}})
	in, err := New(Options{Version: "1.30.5", ChartDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.30.5"); err != nil {
		t.Fatal(err)
	}
	ch, err = in.LoadChart(ctx, ChartGateway, "1.30.5")
	if err != nil || ch.Metadata.Version != "1.30.5" {
		t.Fatalf("LoadChart(gateway 1.30.5) = %v, %v", ch, err)
	}
	// gateway is missing at 1.31.1: the error says which chart, and suggests 1.30.5.
	err = in.CheckVersion(ctx, "1.31.1")
	var ve *VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckVersion(1.31.1) = %v, want a *VersionError", err)
	}
	if !reflect.DeepEqual(ve.Missing, []Chart{ChartGateway}) || len(ve.Nearest) != 1 || ve.Nearest[0].String() != "1.30.5" {
		t.Errorf("VersionError = %+v", ve)
	}
	for _, s := range []string{"gateway chart", "1.30.5", EnvVersion, EnvChartRepo, EnvChartDir, dir} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	// A chart whose metadata disagrees with its file name is refused.
	bogus := t.TempDir()
	p := packageChart(t, ChartIstiod, "1.29.0", bogus)
	if err := os.Rename(p, filepath.Join(bogus, "istiod-1.29.1.tgz")); err != nil {
		t.Fatal(err)
	}
	bg, _ := New(Options{Version: "1.29.1", ChartDir: bogus})
	if _, err := bg.LoadChart(ctx, ChartIstiod, "1.29.1"); err == nil || !strings.Contains(err.Error(), "is istiod 1.29.0, expected istiod 1.29.1") {
		t.Errorf("mislabelled archive: %v", err)
	}
	missing, _ := New(Options{Version: "1.31.1", ChartDir: filepath.Join(bogus, "nope")})
	if err := missing.CheckVersion(ctx, "1.31.1"); err == nil || !strings.Contains(err.Error(), EnvChartDir) {
		t.Errorf("missing directory: %v", err)
	}
}

// TestChartRepo reads a repository index and packaged charts from a loopback HTTP server.
func TestChartRepo(t *testing.T) {
	ctx := context.Background()
	r := serveRepo(t, map[Chart][]string{
		ChartBase:    {"1.29.3", "1.30.4", "1.30.5", "1.31.0", "1.31.1", "1.32.0-beta.0"},
		ChartIstiod:  {"1.29.3", "1.30.4", "1.30.5", "1.31.0", "1.31.1", "1.32.0-beta.0"},
		ChartGateway: {"1.29.3", "1.30.4", "1.30.5", "1.31.0", "1.31.1", "1.32.0-beta.0"},
	})
	in, err := New(Options{Version: "1.31.1", ChartRepo: r.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.31.1"); err != nil {
		t.Fatalf("CheckVersion(1.31.1) against %s: %v", r.URL, err)
	}
	for _, c := range Charts {
		ch, err := in.LoadChart(ctx, c, "1.30.5")
		if err != nil {
			t.Fatalf("LoadChart(%s 1.30.5): %v", c, err)
		}
		if ch.Metadata.Name != string(c) || ch.Metadata.Version != "1.30.5" || ch.Metadata.AppVersion != "1.30.5" {
			t.Errorf("loaded %s %s (app %s)", ch.Metadata.Name, ch.Metadata.Version, ch.Metadata.AppVersion)
		}
	}
	// The index is read once; each chart once.
	before := r.requests.Load()
	if _, err := in.LoadChart(ctx, ChartIstiod, "1.30.5"); err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.30.4"); err != nil {
		t.Fatal(err)
	}
	if r.requests.Load() != before {
		t.Errorf("cached index and chart fetched again: %d more requests", r.requests.Load()-before)
	}
	avail, err := in.AvailableVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(avail) != "[1.32.0-beta.0 1.31.1 1.31.0 1.30.5 1.30.4 1.29.3]" {
		t.Errorf("AvailableVersions = %v", avail)
	}

	// A gap in what the repository holds: the message names the repository read, the newest
	// version it holds and the nearest ones, and suggests another version first.
	err = in.CheckVersion(ctx, "1.30.7")
	var ve *VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckVersion(1.30.7) = %v, want a *VersionError", err)
	}
	want := "Istio 1.30.7: chart repository " + r.URL + " has no base, istiod, gateway chart at that version; the newest version it holds is 1.31.1; nearest versions that exist: 1.30.5, 1.30.4, 1.31.1, 1.29.3. " +
		"Fix: set ISTIO_VERSION to one of those, or ISTIO_CHART_REPO to a repository that has 1.30.7, or ISTIO_CHART_DIR to a directory holding its base/, istiod/ and gateway/ charts"
	if err.Error() != want {
		t.Errorf("CheckVersion(1.30.7):\n got %s\nwant %s", err, want)
	}

	// A malformed version is rejected before any network access.
	fresh, _ := New(Options{Version: "1.31.1", ChartRepo: r.URL})
	before = r.requests.Load()
	if err := fresh.CheckVersion(ctx, "1.31"); err == nil || !strings.Contains(err.Error(), EnvVersion) {
		t.Errorf("CheckVersion(1.31) = %v", err)
	}
	if n := r.requests.Load() - before; n != 0 {
		t.Errorf("a malformed version caused %d requests to the repository", n)
	}
}

// TestChartRepoStale is the default run against the retired storage.googleapis.com repository
// (or a stale mirror): it holds nothing newer than 1.30, so the fix is the repository, named
// with Istio's own, not an older Istio.
func TestChartRepoStale(t *testing.T) {
	r := serveRepo(t, allCharts("1.29.3", "1.30.4", "1.30.5"))
	in, err := New(Options{Version: "1.31.1", ChartRepo: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	err = in.CheckVersion(context.Background(), "1.31.1")
	want := "Istio 1.31.1: chart repository " + r.URL + " has no base, istiod, gateway chart at that version; the newest version it holds is 1.30.5, older than 1.31.1; nearest versions that exist: 1.30.5, 1.29.3. " +
		"Fix: set ISTIO_CHART_REPO to a repository that has 1.31.1 (Istio publishes its charts at https://blob.istio.io/istio-release/charts and oci://ghcr.io/istio/release/charts; a mirror may be stale), or ISTIO_VERSION to one of those, or ISTIO_CHART_DIR to a directory holding its base/, istiod/ and gateway/ charts"
	if err == nil || err.Error() != want {
		t.Errorf("CheckVersion(1.31.1):\n got %v\nwant %s", err, want)
	}
	// Istio's own repository lacking a newer version means it is not released: no other
	// repository to suggest.
	ve := &VersionError{Want: Version{1, 32, 0, ""}, Missing: Charts, Newest: &Version{1, 31, 1, ""}, Nearest: []Version{{1, 31, 1, ""}},
		Source: "chart repository " + DefaultChartRepo, Official: true}
	if !strings.Contains(ve.Error(), "Fix: set ISTIO_VERSION to one of those") {
		t.Errorf("official repository: %s", ve)
	}
	if !official(newChartSource(Options{ChartRepo: DefaultChartRepo + "/"})) || !official(newChartSource(Options{ChartRepo: OCIChartRepo})) || official(newChartSource(Options{ChartRepo: r.URL})) {
		t.Error("official() misjudges the sources")
	}
}

func TestChartRepoDigestMismatch(t *testing.T) {
	r := serveRepo(t, allCharts("1.31.1"))
	// Replace the archive after indexing: same name, other content.
	p := filepath.Join(r.Dir, "istiod-1.31.1.tgz")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ch := packageChart(t, ChartIstiod, "1.31.1", tmp)
	data, err := os.ReadFile(ch)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := New(Options{Version: "1.31.1", ChartRepo: r.URL})
	_, err = in.LoadChart(context.Background(), ChartIstiod, "1.31.1")
	if err == nil || !strings.Contains(err.Error(), "but the index says") {
		t.Errorf("tampered chart loaded: %v", err)
	}
}

func TestChartRepoUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	in, _ := New(Options{Version: "1.31.1", ChartRepo: "http://" + addr + "/charts"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = in.CheckVersion(ctx, "1.31.1")
	if err == nil || !strings.Contains(err.Error(), EnvChartRepo) || !strings.Contains(err.Error(), EnvChartDir) || !strings.Contains(err.Error(), addr) {
		t.Errorf("unreachable repository: %v", err)
	}
	if IsVersionError(err) {
		t.Error("an unreachable repository reported as a missing version")
	}
}

func TestVersionFromImage(t *testing.T) {
	cases := map[string]string{
		"docker.io/istio/pilot:1.31.1":                       "1.31.1",
		"registry.example.com/istio/pilot:1.31.1-distroless": "1.31.1",
		"istio/pilot:1.32.0-beta.0-debug":                    "1.32.0-beta.0",
		"localhost:5000/istio/pilot:1.30.5":                  "1.30.5",
		"localhost:5000/istio/pilot":                         "",
		"docker.io/istio/pilot@sha256:0123abcd":              "",
		"docker.io/istio/pilot:latest":                       "",
		"docker.io/istio/pilot:1.31.1@sha256:0123abcd":       "1.31.1",
	}
	for image, want := range cases {
		got, ok := versionFromImage(image)
		if got != want || ok != (want != "") {
			t.Errorf("versionFromImage(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
}

func TestRolloutGap(t *testing.T) {
	two := int32(2)
	base := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istiod", Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: &two}}
	cases := []struct {
		name   string
		status appsv1.DeploymentStatus
		want   string
	}{
		{"rolled out", appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}, ""},
		{"new spec not seen", appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2},
			"Deployment istio-system/istiod: generation 3 not yet observed by its controller (observed 2)"},
		{"rolling", appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Message: "ReplicaSet progressing"}, {Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Message: "Deployment does not have minimum availability."}}},
			"Deployment istio-system/istiod: 2/2 replicas available, 1/2 updated, 2 old replicas still running (Available: Deployment does not have minimum availability.)"},
		{"old pod left", appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 3},
			"Deployment istio-system/istiod: 1 old replicas still running"},
		{"nothing yet", appsv1.DeploymentStatus{},
			"Deployment istio-system/istiod: generation 3 not yet observed by its controller (observed 0), 0/2 replicas available, 0/2 updated"},
	}
	for _, c := range cases {
		d := base
		d.Status = c.status
		if got := rolloutGap(&d); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestNodePortsMatchKind: the gateway's nodePorts are the ones the kind configs map to the host.
func TestNodePortsMatchKind(t *testing.T) {
	if HTTPNodePort != kind.IngressHTTPNodePort || HTTPSNodePort != kind.IngressHTTPSNodePort {
		t.Errorf("gateway nodePorts %d/%d, kind configs map %d/%d", HTTPNodePort, HTTPSNodePort, kind.IngressHTTPNodePort, kind.IngressHTTPSNodePort)
	}
}

// NoGateway leaves the gateway chart out of Install and Upgrade, never istiod.
func TestControlCharts(t *testing.T) {
	if got := (Options{}).controlCharts(); len(got) != 2 || got[0] != ChartIstiod || got[1] != ChartGateway {
		t.Errorf("default: %v, want istiod then gateway", got)
	}
	if got := (Options{NoGateway: true}).controlCharts(); len(got) != 1 || got[0] != ChartIstiod {
		t.Errorf("NoGateway: %v, want istiod only", got)
	}
}
