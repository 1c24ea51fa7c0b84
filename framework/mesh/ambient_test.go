package mesh

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"meshconform/internal/istiosrc"
)

// ambientOptions are the options of an ambient render of branch b's real charts in namespace ns.
func ambientOptions(t testing.TB, b istiosrc.Branch, ns string) Options {
	return Options{Version: b.Version, ChartDir: realCharts(t, b), Namespace: ns, Hub: srcHub, Ambient: true}
}

// container returns the first container of the pod template of obj.
func container(t testing.TB, obj map[string]any) map[string]any {
	t.Helper()
	return get(t, obj, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
}

// envOf returns a container's env as name → value (valueFrom entries are left out).
func envOf(c map[string]any) map[string]any {
	out := map[string]any{}
	env, _ := c["env"].([]any)
	for _, e := range env {
		em := e.(map[string]any)
		if v, ok := em["value"]; ok {
			out[em["name"].(string)] = v
		}
	}
	return out
}

// TestAmbientRender renders istiod, cni and ztunnel of every pinned branch with
// profile=ambient, as Istio's ambient Helm install does, outside istio-system: the profile took
// (PILOT_ENABLE_AMBIENT on istiod, AMBIENT_ENABLED on the node agent, the -distroless variant on
// every image), every chart got meshconform's hub and tag and small requests, and the names
// that tie the three together agree: istiod trusts <its namespace>/ztunnel, and ztunnel is
// that DaemonSet and finds istiod in that namespace.
func TestAmbientRender(t *testing.T) {
	ctx := context.Background()
	const ns = "mesh-ns"
	for _, b := range istiosrc.Branches {
		o := ambientOptions(t, b, ns)
		in, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		render := func(c Chart) map[string]map[string]any {
			m, err := in.Render(ctx, c)
			if err != nil {
				t.Fatalf("%s %s: %v", b.Name, c, err)
			}
			return manifestObjects(t, m)
		}
		tag := b.Version + "-distroless"

		istiod := render(ChartIstiod)
		c := container(t, istiod["Deployment/istiod"])
		env := envOf(c)
		if env["PILOT_ENABLE_AMBIENT"] != "true" || env["CA_TRUSTED_NODE_ACCOUNTS"] != ns+"/ztunnel" {
			t.Errorf("%s: istiod env PILOT_ENABLE_AMBIENT=%v CA_TRUSTED_NODE_ACCOUNTS=%v; want true and %s/ztunnel", b.Name, env["PILOT_ENABLE_AMBIENT"], env["CA_TRUSTED_NODE_ACCOUNTS"], ns)
		}
		if got := c["image"]; got != srcHub+"/pilot:"+tag {
			t.Errorf("%s: istiod image %v, want %s/pilot:%s", b.Name, got, srcHub, tag)
		}

		cni := render(ChartCNI)
		ds := cni["DaemonSet/istio-cni-node"]
		if ds == nil {
			t.Fatalf("%s: cni renders no DaemonSet/istio-cni-node; objects %v", b.Name, keys(cni))
		}
		if got := get(t, ds, "metadata", "namespace"); got != ns {
			t.Errorf("%s: istio-cni-node in namespace %v, want %s", b.Name, got, ns)
		}
		c = container(t, ds)
		if got := c["image"]; got != srcHub+"/install-cni:"+tag {
			t.Errorf("%s: install-cni image %v", b.Name, got)
		}
		if got := fmt.Sprint(get(t, c, "resources", "requests")); got != "map[cpu:10m memory:40Mi]" {
			t.Errorf("%s: istio-cni-node requests %s, want cpu 10m, memory 40Mi", b.Name, got)
		}
		if got := get(t, cni["ConfigMap/istio-cni-config"], "data", "AMBIENT_ENABLED"); got != "true" {
			t.Errorf("%s: istio-cni-config AMBIENT_ENABLED = %v, want \"true\" (the ambient profile's cni.ambient.enabled)", b.Name, got)
		}

		zt := render(ChartZtunnel)
		ds = zt["DaemonSet/ztunnel"]
		if ds == nil {
			t.Fatalf("%s: ztunnel renders no DaemonSet/ztunnel; objects %v", b.Name, keys(zt))
		}
		if got := get(t, ds, "metadata", "namespace"); got != ns {
			t.Errorf("%s: ztunnel in namespace %v, want %s (istiod trusts %s/ztunnel)", b.Name, got, ns, ns)
		}
		c = container(t, ds)
		if got := c["image"]; got != srcHub+"/ztunnel:"+tag {
			t.Errorf("%s: ztunnel image %v", b.Name, got)
		}
		if got := fmt.Sprint(get(t, c, "resources", "requests")); got != "map[cpu:10m memory:40Mi]" {
			t.Errorf("%s: ztunnel requests %s, want cpu 10m, memory 40Mi", b.Name, got)
		}
		env = envOf(c)
		for _, k := range []string{"CA_ADDRESS", "XDS_ADDRESS"} {
			if want := "istiod." + ns + ".svc:15012"; env[k] != want {
				t.Errorf("%s: ztunnel %s = %v, want %s", b.Name, k, env[k], want)
			}
		}
	}
	if got := (Options{Revision: "canary"}).ReleaseName(ChartZtunnel); got != "ztunnel" {
		t.Errorf("ztunnel's release under a revision is %q; istiod trusts only \"ztunnel\"", got)
	}
	if got := (Options{}).ReleaseName(ChartCNI); got != "istio-cni" {
		t.Errorf("cni's release is %q, want istio-cni (Istio's docs: helm install istio-cni istio/cni)", got)
	}
}

// TestAmbientImages: the images an ambient install runs, read from the charts' renders, on
// both pinned branches: pilot, proxyv2 (the injector's, for waypoints and gateways),
// install-cni and ztunnel, every one with the -distroless tag the ambient profile's
// global.variant gives them. Options.Images, which cannot see a profile, refuses.
func TestAmbientImages(t *testing.T) {
	ctx := context.Background()
	for _, b := range istiosrc.Branches {
		o := ambientOptions(t, b, "istio-system")
		in, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.RenderedImages(ctx, ChartIstiod, ChartCNI, ChartZtunnel)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, name := range []string{"install-cni", "pilot", "proxyv2", "ztunnel"} {
			want = append(want, srcHub+"/"+name+":"+b.Version+"-distroless")
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: RenderedImages = %v\nwant %v", b.Name, got, want)
		}
		if _, err := o.Images(); err == nil || !strings.Contains(err.Error(), "RenderedImages") {
			t.Errorf("%s: Options.Images with Ambient = %v; want a refusal naming RenderedImages", b.Name, err)
		}
	}
}

// TestRenderedImagesAgreeWithImages: without a profile, what the renders run is exactly the
// preload list Options.Images derives from the values (the gateway's `image: auto` is the proxy
// image), so the two ways of listing images cannot drift apart unnoticed.
func TestRenderedImagesAgreeWithImages(t *testing.T) {
	for _, b := range istiosrc.Branches {
		o := Options{Version: b.Version, ChartDir: realCharts(t, b), Hub: srcHub}
		in, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.RenderedImages(context.Background(), ChartBase, ChartIstiod, ChartGateway)
		if err != nil {
			t.Fatal(err)
		}
		want, err := o.Images()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: RenderedImages = %v, Options.Images = %v", b.Name, got, want)
		}
	}
}

// TestWithImageType is Istio's updateImageTypeIfPresent (pkg/kube/inject/inject.go) case by case.
func TestWithImageType(t *testing.T) {
	for _, c := range []struct{ tag, typ, want string }{
		{"1.31.4", "", "1.31.4"},
		{"1.31.4", "distroless", "1.31.4-distroless"},
		{"1.31.4-distroless", "distroless", "1.31.4-distroless"},
		{"1.31.4-debug", "distroless", "1.31.4-distroless"},
		{"1.31.4-distroless", "default", "1.31.4"},
		{"1.31.4-distroless", "", "1.31.4-distroless"},
	} {
		if got := withImageType(c.tag, c.typ); got != c.want {
			t.Errorf("withImageType(%q, %q) = %q, want %q", c.tag, c.typ, got, c.want)
		}
	}
}

// TestProxyImageFromMeshConfig: the mesh config's defaultConfig.image.imageType wins over
// global.variant, as in Istio's ProxyImage.
func TestProxyImageFromMeshConfig(t *testing.T) {
	vals := `{"global":{"hub":"h","tag":"1.31.4","variant":"distroless","proxy":{"image":"proxyv2"}}}`
	for mesh, want := range map[string]string{
		"": "h/proxyv2:1.31.4-distroless",
		"defaultConfig:\n  image:\n    imageType: debug":   "h/proxyv2:1.31.4-debug",
		"defaultConfig:\n  image:\n    imageType: default": "h/proxyv2:1.31.4",
	} {
		got, err := proxyImage(vals, mesh)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("proxyImage with mesh config %q = %q, %v; want %q", mesh, got, err, want)
		}
	}
}

// daemonSetGap says what a node agent's DaemonSet lacks, as `kubectl rollout status` judges a
// DaemonSet, and a DaemonSet on no node is not ready.
func TestDaemonSetGap(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, ready, available int32) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{}
		d.Namespace, d.Name, d.Generation = "istio-system", "ztunnel", gen
		d.Status = appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired,
			UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: available}
		return d
	}
	for _, tc := range []struct {
		d    *appsv1.DaemonSet
		want string
	}{
		{ds(2, 2, 3, 3, 3, 3), ""},
		{ds(2, 1, 3, 3, 3, 3), "DaemonSet istio-system/ztunnel: generation 2 not yet observed by its controller (observed 1)"},
		{ds(1, 1, 0, 0, 0, 0), "DaemonSet istio-system/ztunnel: no node scheduled a pod"},
		{ds(1, 1, 2, 2, 1, 1), "DaemonSet istio-system/ztunnel: 1/2 pods ready, 1/2 available, 2/2 updated"},
		// An update rolling out: every pod ready, one still the old one.
		{ds(2, 2, 2, 1, 2, 2), "DaemonSet istio-system/ztunnel: 2/2 pods ready, 2/2 available, 1/2 updated"},
	} {
		if got := daemonSetGap(tc.d); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// With Ambient, the version check (preflight's, and Install's before anything touches the
// cluster) needs cni and ztunnel at the version too, and names them when they are missing.
func TestAmbientCheckVersionNeedsNodeAgentCharts(t *testing.T) {
	ctx := context.Background()
	dir := chartDir(t, allCharts("1.31.1"))
	in, err := New(Options{Version: "1.31.1", ChartDir: dir, Ambient: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.31.1"); err == nil || !strings.Contains(err.Error(), "has no cni, ztunnel chart at that version") {
		t.Errorf("ambient without cni and ztunnel charts: %v", err)
	}
	side, err := New(Options{Version: "1.31.1", ChartDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := side.CheckVersion(ctx, "1.31.1"); err != nil {
		t.Errorf("sidecar needs no cni or ztunnel chart: %v", err)
	}
	full := allCharts("1.31.1")
	full[ChartCNI], full[ChartZtunnel] = []string{"1.31.1"}, []string{"1.31.1"}
	in, err = New(Options{Version: "1.31.1", ChartDir: chartDir(t, full), Ambient: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckVersion(ctx, "1.31.1"); err != nil {
		t.Errorf("ambient with every chart: %v", err)
	}
}
