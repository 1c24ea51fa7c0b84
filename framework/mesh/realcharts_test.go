package mesh

import (
	"context"
	"strings"
	"testing"

	"meshconform/internal/istiosrc"
)

// TestRealChartsTakeOurValues renders Istio's real charts of every pinned branch, default
// revision and canary, with meshconform's values: the gateway chart's values.schema.json
// (which Helm checks whenever a chart has one; base and istiod ship none) accepts them, and
// the objects the readiness waits look for are the ones the charts make.
func TestRealChartsTakeOurValues(t *testing.T) {
	ctx := context.Background()
	for _, b := range istiosrc.Branches {
		dir := realCharts(t, b)
		for _, rev := range []string{"", "canary"} {
			o := Options{Version: b.Version, ChartDir: dir, Namespace: "mesh-ns", Revision: rev, Hub: srcHub, Values: srcValues(b)}
			in, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			want := map[Chart][]string{
				ChartBase:    {"ServiceAccount/istio-reader-service-account", "ValidatingWebhookConfiguration/istiod-default-validator", "CustomResourceDefinition/virtualservices.networking.istio.io"},
				ChartIstiod:  {"Deployment/" + o.IstiodDeploymentName(), "MutatingWebhookConfiguration/" + o.InjectorWebhookName(), "ConfigMap/" + o.MeshConfigMapName()},
				ChartGateway: {"Deployment/" + o.GatewayDeploymentName(), "Service/" + o.GatewayDeploymentName()},
			}
			for _, c := range Charts {
				m, err := in.Render(ctx, c)
				if err != nil {
					t.Errorf("%s %s (revision %q): %v", b.Name, c, rev, err)
					continue
				}
				objs := manifestObjects(t, m)
				for _, k := range want[c] {
					if objs[k] == nil {
						t.Errorf("%s %s (revision %q) renders no %s; objects: %v", b.Name, c, rev, k, keys(objs))
					}
				}
			}
		}
	}
}

// TestRealChartsSchemaChecked: a value the gateway chart's schema forbids fails the render, so
// values meshconform passes are checked against Istio's schema, not silently ignored.
func TestRealChartsSchemaChecked(t *testing.T) {
	b := istiosrc.Release131
	in, err := New(Options{Version: b.Version, ChartDir: realCharts(t, b), Values: map[Chart]map[string]any{ChartGateway: {"kind": "StatefulSet"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Render(context.Background(), ChartGateway)
	if err == nil || !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), "kind") {
		t.Errorf("gateway render with kind: StatefulSet = %v; want the chart's values.schema.json to reject it", err)
	}
}
