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

// TestClaimingPod: on Istio's golden grpc-agent pod at each pinned commit, CERT-006's claiming
// pod differs only in its agent's SERVICE_ACCOUNT (a literal claim instead of the pod's service
// account), its app label and being marked not to be injected: the token is the pod's own.
func TestClaimingPod(t *testing.T) {
	for _, b := range istiosrc.Branches {
		injected, err := istiosrc.GoldenPod(context.Background(), b, "grpc-agent.yaml.injected")
		if err != nil {
			t.Fatal(err)
		}
		p, err := ClaimingPod(injected, "claims", ClaimedServiceAccount)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if p.Labels["app"] != "claims" || p.Labels[istionames.InjectLabel] != "false" || p.Spec.ServiceAccountName != injected.Spec.ServiceAccountName {
			t.Errorf("%s: labels %v, service account %q: want app=claims, not injected, the injected pod's account", b.Name, p.Labels, p.Spec.ServiceAccountName)
		}
		if !reflect.DeepEqual(p.Spec.Volumes, injected.Spec.Volumes) {
			t.Errorf("%s: the claiming pod's volumes (its token among them) differ from the injected pod's", b.Name)
		}
		var claims, changed int
		for ci, c := range p.Spec.Containers {
			orig := injected.Spec.Containers[ci]
			for ei, e := range c.Env {
				if reflect.DeepEqual(e, orig.Env[ei]) {
					continue
				}
				changed++
				if e.Name == "SERVICE_ACCOUNT" && e.Value == ClaimedServiceAccount && e.ValueFrom == nil && orig.Env[ei].ValueFrom != nil {
					claims++
				}
			}
		}
		if claims != 1 || changed != 1 {
			t.Errorf("%s: %d claims among %d changed variables; want the agent's SERVICE_ACCOUNT (from the pod's spec) claimed, nothing else", b.Name, claims, changed)
		}
	}
	if _, err := ClaimingPod(&corev1.Pod{}, "x", ClaimedServiceAccount); err == nil {
		t.Error("a pod without an istio-proxy container made a claiming pod")
	}
}
