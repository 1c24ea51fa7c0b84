package behaviors

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/expect"
	"meshconform/internal/apitest"
)

func TestCheckNotRestarted(t *testing.T) {
	same := map[string]string{"istiod-a": "uid=1 restarts=0"}
	if err := CheckNotRestarted(same, map[string]string{"istiod-a": "uid=1 restarts=0"}); err != nil {
		t.Errorf("same pods: %v", err)
	}
	for name, tc := range map[string]struct {
		before, after map[string]string
		want          string
	}{
		"restarted container": {same, map[string]string{"istiod-a": "uid=1 restarts=1"}, "pod istiod-a was uid=1 restarts=0, now uid=1 restarts=1"},
		"replaced pod":        {same, map[string]string{"istiod-b": "uid=2 restarts=0"}, "pod istiod-a (uid=1 restarts=0) is gone; pod istiod-b (uid=2 restarts=0) is new"},
		"no istiod":           {nil, nil, "no istiod pod"},
	} {
		err := CheckNotRestarted(tc.before, tc.after)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestTier1CERT005: on a real API server, blanking empties every webhook's bundle (CERT-003's
// check then fails); an "istiod" that patches it back, as webhookpatch.go does on the change
// event, makes the wait converge with nothing left to restore; with none, the wait fails and
// the cleanup puts every bundle back.
func TestTier1CERT005(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	bundle := caBundlePEM(t)
	api := env.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg := expect.Config{Timeout: 3 * time.Second, Poll: 50 * time.Millisecond, Consecutive: 3}
	for _, patcher := range []bool{true, false} {
		mwc := injectorConfig("istio-sidecar-injector", "", bundle)
		if _, err := api.Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		saved, err := BlankInjectorCABundle(ctx, env.Kube, "", "")
		if err != nil || len(saved) != len(mwc.Webhooks) {
			t.Fatalf("blank: %d saved, %v", len(saved), err)
		}
		if err := CheckInjectorCABundle(ctx, env.Kube, "", ""); err == nil || !strings.Contains(err.Error(), "caBundle is empty") {
			t.Fatalf("after blanking, CERT-003's check says %v", err)
		}
		if patcher {
			go func() { _, _ = RestoreInjectorCABundle(ctx, env.Kube, "", "", saved) }()
		}
		err = expect.ConvergeFunc(ctx, cfg, func(ctx context.Context) error { return CheckInjectorCABundle(ctx, env.Kube, "", "") })
		n, rerr := RestoreInjectorCABundle(ctx, env.Kube, "", "", saved)
		switch {
		case rerr != nil:
			t.Fatal(rerr)
		case patcher && (err != nil || n != 0):
			t.Errorf("patched back: wait %v, cleanup restored %d", err, n)
		case !patcher && (err == nil || n != len(mwc.Webhooks)):
			t.Errorf("nobody patched it back: wait %v, cleanup restored %d, want %d", err, n, len(mwc.Webhooks))
		}
		if err := CheckInjectorCABundle(ctx, env.Kube, "", ""); err != nil {
			t.Errorf("after the cleanup: %v", err)
		}
		if err := api.Delete(ctx, mwc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}
