package behaviors

import (
	"context"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"meshconform/framework/istionames"
	"meshconform/internal/istiosrc"
)

// TestBadTokenControl: on what Istio's injector makes of a grpc-agent pod (its golden file at
// each pinned commit), the control differs only in the token's audience and in being marked not
// to be injected: containers, environment and volumes are the template's.
func TestBadTokenControl(t *testing.T) {
	for _, b := range istiosrc.Branches {
		injected, err := istiosrc.GoldenPod(context.Background(), b, "grpc-agent.yaml.injected")
		if err != nil {
			t.Fatal(err)
		}
		control, err := BadTokenControl(injected, "bad-token")
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if control.Name != "bad-token" || control.Labels[istionames.InjectLabel] != "false" || control.Annotations[istionames.InjectLabel] != "false" {
			t.Errorf("%s: name %q labels %v: want bad-token, not to be injected", b.Name, control.Name, control.Labels)
		}
		if !reflect.DeepEqual(control.Spec.Containers, injected.Spec.Containers) || !reflect.DeepEqual(control.Spec.InitContainers, injected.Spec.InitContainers) {
			t.Errorf("%s: the control's containers differ from the injected pod's", b.Name)
		}
		var auds []string
		for i, v := range control.Spec.Volumes {
			orig := injected.Spec.Volumes[i]
			if v.Name != AgentTokenVolume {
				if !reflect.DeepEqual(v, orig) {
					t.Errorf("%s: volume %s changed", b.Name, v.Name)
				}
				continue
			}
			for j, s := range v.Projected.Sources {
				auds = append(auds, s.ServiceAccountToken.Audience)
				if orig.Projected.Sources[j].ServiceAccountToken.Audience != "istio-ca" {
					t.Errorf("%s: the template's token audience is %q, not istio-ca", b.Name, orig.Projected.Sources[j].ServiceAccountToken.Audience)
				}
			}
		}
		if !reflect.DeepEqual(auds, []string{WrongAudience}) {
			t.Errorf("%s: the control's token audiences are %v, want [%s]", b.Name, auds, WrongAudience)
		}
	}
	if _, err := BadTokenControl(&corev1.Pod{}, "x"); err == nil {
		t.Error("a pod without the istio-token volume made a control")
	}
}
