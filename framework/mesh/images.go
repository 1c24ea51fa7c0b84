package mesh

import (
	"context"
	"fmt"
	"slices"
	"strings"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
)

// RenderedImages renders each of charts (Render: the Installer's version and ChartValues) and
// lists, sorted and without duplicates, the images the manifests run: every container and init
// container of every pod template (Deployment, DaemonSet, StatefulSet, Job, ReplicaSet, Pod),
// and, when istiod is among charts, the proxy image its injector gives sidecars, waypoints and
// Gateway-API gateways, computed from the values istiod renders into its injector ConfigMap as
// Istio's injector computes it (pkg/kube/inject/inject.go, ProxyImage and proxyImageURL:
// <global.hub>/<global.proxy.image or proxyv2>:<global.tag>, with the image type from the mesh
// config's defaultConfig.image.imageType or else global.variant appended as "-<type>", a
// known type suffix already on the tag replaced, and type "default" meaning none).
//
// Unlike Options.Images it reads what the charts themselves decide, profiles included: with
// Ambient, the ambient profile's global.variant (distroless) gives every image a -distroless
// tag, which no value meshconform passes shows. The gateway chart's container (`image: auto`,
// filled in by the injector) counts as the proxy image.
func (i *Installer) RenderedImages(ctx context.Context, charts ...Chart) ([]string, error) {
	o := i.Options()
	var out []string
	for _, c := range charts {
		m, err := i.Render(ctx, c)
		if err != nil {
			return nil, err
		}
		imgs, err := manifestImages(m, c == ChartIstiod, o.Revision)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", c, o.Version, err)
		}
		out = append(out, imgs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// podTemplateObject is the part of a workload that holds its pod's containers: a pod template
// (spec.template.spec) or, for a Pod, spec itself.
type podTemplateObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		podSpec
		Template struct {
			Spec podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Data map[string]string `json:"data"`
}

type podSpec struct {
	Containers     []struct{ Image string } `json:"containers"`
	InitContainers []struct{ Image string } `json:"initContainers"`
}

// manifestImages lists the images of one rendered manifest (see RenderedImages); withProxy
// adds the injector's proxy image from istiod's ConfigMaps of revision rev.
func manifestImages(manifest string, withProxy bool, rev string) ([]string, error) {
	var out []string
	var injectorValues, meshConfig string
	// istio-discovery/templates/istiod-injector-configmap.yaml: istio-sidecar-injector[-<rev>],
	// never suffixed with the namespace (unlike the webhook).
	injector := suffix(istionames.SidecarInjectorWebhook, rev)
	mesh := suffix(istionames.MeshConfigMap, rev)
	for name, doc := range releaseutil.SplitManifests(manifest) {
		var obj podTemplateObject
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var spec podSpec
		switch obj.Kind {
		case "Deployment", "DaemonSet", "StatefulSet", "Job", "ReplicaSet":
			spec = obj.Spec.Template.Spec
		case "Pod":
			spec = obj.Spec.podSpec
		case "ConfigMap":
			switch obj.Metadata.Name {
			case injector:
				injectorValues = obj.Data["values"]
			case mesh:
				meshConfig = obj.Data["mesh"]
			}
		}
		for _, c := range append(spec.Containers, spec.InitContainers...) {
			switch c.Image {
			case "":
				return nil, fmt.Errorf("%s %s has a container without an image", obj.Kind, obj.Metadata.Name)
			case "auto":
				// The injector's proxy image (gateway chart): listed from istiod's values.
			default:
				out = append(out, c.Image)
			}
		}
	}
	if withProxy {
		if injectorValues == "" {
			return nil, fmt.Errorf("no ConfigMap %s with the injector's values: cannot tell the proxy image", injector)
		}
		img, err := proxyImage(injectorValues, meshConfig)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// proxyImage is Istio's ProxyImage for the injector's values (JSON) and mesh config (YAML).
func proxyImage(values, meshConfig string) (string, error) {
	var v struct {
		Global struct {
			Hub     string `json:"hub"`
			Tag     any    `json:"tag"`
			Variant string `json:"variant"`
			Proxy   struct {
				Image string `json:"image"`
			} `json:"proxy"`
		} `json:"global"`
	}
	if err := yaml.Unmarshal([]byte(values), &v); err != nil {
		return "", fmt.Errorf("the injector's values: %w", err)
	}
	var m struct {
		DefaultConfig struct {
			Image struct {
				ImageType string `json:"imageType"`
			} `json:"image"`
		} `json:"defaultConfig"`
	}
	if meshConfig != "" {
		if err := yaml.Unmarshal([]byte(meshConfig), &m); err != nil {
			return "", fmt.Errorf("the mesh config: %w", err)
		}
	}
	g := v.Global
	if g.Hub == "" || g.Tag == nil || fmt.Sprint(g.Tag) == "" {
		return "", fmt.Errorf("the injector's values set no global.hub or global.tag (hub %q, tag %v)", g.Hub, g.Tag)
	}
	name := "proxyv2"
	if g.Proxy.Image != "" {
		name = g.Proxy.Image
	}
	typ := g.Variant
	if t := m.DefaultConfig.Image.ImageType; t != "" {
		typ = t
	}
	return g.Hub + "/" + name + ":" + withImageType(fmt.Sprint(g.Tag), typ), nil
}

// withImageType is Istio's updateImageTypeIfPresent (pkg/kube/inject/inject.go).
func withImageType(tag, typ string) string {
	if typ == "" {
		return tag
	}
	for _, known := range []string{"distroless", "debug"} {
		if t, ok := strings.CutSuffix(tag, "-"+known); ok {
			tag = t
			break
		}
	}
	if typ == "default" {
		return tag
	}
	return tag + "-" + typ
}
