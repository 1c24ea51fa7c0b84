package mesh

import (
	"embed"
	"fmt"

	"sigs.k8s.io/yaml"
)

// The NodePorts of the ingress gateway's service; manifests/kind maps them to the host.
const (
	HTTPNodePort  = 30080
	HTTPSNodePort = 30443
	// StatusNodePort is fixed only so that no port of the Service is allocated at random: a
	// random one can draw HTTPNodePort or HTTPSNodePort (values/gateway.yaml).
	StatusNodePort = 30021
)

//go:embed values/*.yaml
var valuesFS embed.FS

// DefaultValues returns meshconform's values for chart c (values/<c>.yaml), as a new map the
// caller may change.
func DefaultValues(c Chart) (map[string]any, error) {
	if !knownChart(c) {
		return nil, fmt.Errorf("no values for unknown chart %q", c)
	}
	data, err := valuesFS.ReadFile("values/" + string(c) + ".yaml")
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("values/%s.yaml: %w", c, err)
	}
	return out, nil
}

// ChartValues is what Install and Upgrade give chart c: DefaultValues, then what Options
// decide (revision, hub, namespace; a revisioned gateway without fixed nodePorts), then
// o.Values[c] over both. Helm merges the result over the chart's own values.yaml.
func (o Options) ChartValues(c Chart) (map[string]any, error) {
	o = o.withDefaults()
	vals, err := DefaultValues(c)
	if err != nil {
		return nil, err
	}
	switch c {
	case ChartBase:
		setPath(vals, o.Namespace, "global", "istioNamespace")
	case ChartIstiod:
		setPath(vals, o.Namespace, "global", "istioNamespace")
		if o.Revision != "" {
			vals["revision"] = o.Revision
		}
		// Always: see DefaultHub. The gateway chart has no hub of its own: its container is
		// `image: auto` (gateway/templates/deployment.yaml), which istiod's injector fills in
		// from this chart's global.hub (pkg/kube/inject/inject.go, ProxyImage).
		setPath(vals, o.Hub, "global", "hub")
		// Always, like the hub: a release chart's global.tag is its version (release-builder
		// rewrites it), but the source charts say `tag: latest`
		// (manifests/charts/istio-control/istio-discovery/values.yaml, release-1.30 and
		// release-1.31), so only an explicit tag makes the images run the images preloaded.
		setPath(vals, o.Version, "global", "tag")
		if o.Ambient {
			vals["profile"] = ambientProfile
		}
	case ChartCNI, ChartZtunnel:
		// Always, as for istiod: the source charts default to registry.istio.io/testing and
		// `latest` (istio-cni/values.yaml and ztunnel/values.yaml, global.hub and global.tag,
		// release-1.30 and release-1.31). ztunnel's chart copies global.* to its top level
		// ("Flatten globals", ztunnel/templates/zzz_profile.yaml); cni's reads
		// `.Values.hub | default .Values.global.hub` and the same for tag and variant.
		setPath(vals, o.Hub, "global", "hub")
		setPath(vals, o.Version, "global", "tag")
		if c == ChartZtunnel {
			// Where ztunnel finds istiod (CA and xDS: istiod.<istioNamespace>.svc:15012,
			// ztunnel/templates/daemonset.yaml); the chart's default is istio-system.
			vals["istioNamespace"] = o.Namespace
		}
		if o.Ambient {
			vals["profile"] = ambientProfile
		}
	case ChartGateway:
		if o.Revision != "" {
			vals["revision"] = o.Revision
			// Two services cannot hold the same nodePort: only the default gateway gets the
			// ones manifests/kind maps.
			if svc, ok := vals["service"].(map[string]any); ok {
				if ports, ok := svc["ports"].([]any); ok {
					for _, p := range ports {
						if pm, ok := p.(map[string]any); ok {
							delete(pm, "nodePort")
						}
					}
				}
			}
		}
	}
	return MergeValues(vals, o.Values[c]), nil
}

// Images are the images an install with o runs, derived from the values Install gives the
// istiod chart, so that what a kind cluster is preloaded with is what the pods will pull:
// <global.hub>/pilot:<tag> (istio-discovery/templates/deployment.yaml:
// "{{ .Values.hub | default .Values.global.hub }}/{{ .Values.image | default "pilot" }}:…")
// and <global.hub>/proxyv2:<tag> for sidecars and the gateway (pkg/kube/inject/inject.go,
// ProxyImage: "{{ .Values.global.hub }}/{{ .Values.global.proxy.image }}:{{ .Values.global.tag }}").
// The tag is global.tag (the version, unless Values override it); global.variant (e.g.
// distroless) is appended as the charts do.
//
// With Ambient it refuses: the profile sets global.variant inside the charts, which these
// values do not show; use Installer.RenderedImages, which reads the rendered manifests.
func (o Options) Images() ([]string, error) {
	if o.Ambient {
		return nil, fmt.Errorf("with the ambient profile the charts choose the image variant themselves (global.variant: distroless in their files/profile-ambient.yaml): list the images with Installer.RenderedImages")
	}
	vals, err := o.ChartValues(ChartIstiod)
	if err != nil {
		return nil, err
	}
	hub, _ := lookupPath(vals, "global", "hub")
	h, ok := hub.(string)
	if !ok || h == "" {
		return nil, fmt.Errorf("the istiod chart's values set no global.hub (got %v): the chart's own default would decide where images come from; set %s (default %s)", hub, EnvHub, DefaultHub)
	}
	tag := o.Version
	if t, ok := lookupPath(vals, "global", "tag"); ok && t != nil && fmt.Sprint(t) != "" {
		tag = fmt.Sprint(t)
	}
	if v, ok := lookupPath(vals, "global", "variant"); ok && v != nil && fmt.Sprint(v) != "" {
		tag += "-" + fmt.Sprint(v)
	}
	return []string{h + "/pilot:" + tag, h + "/proxyv2:" + tag}, nil
}

// ambientProfile is Istio's profile for ambient mode (files/profile-ambient.yaml in the istiod,
// cni and ztunnel charts, copies of manifests/helm-profiles/ambient.yaml).
const ambientProfile = "ambient"

// MergeValues returns base with over merged in: maps merge key by key, recursively; any other
// value in over (lists included, and nil) replaces base's. Neither input is changed.
func MergeValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = deepCopy(v)
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = MergeValues(bm, om)
			continue
		}
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = deepCopy(x)
		}
		return l
	}
	return v
}

// setPath sets m[path[0]][path[1]]...= v, creating maps on the way.
func setPath(m map[string]any, v any, path ...string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// lookupPath reads m[path[0]][path[1]]...; ok is false when any step is missing.
func lookupPath(m map[string]any, path ...string) (any, bool) {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
