package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/provision"
	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }

// `up` then `down` on a real API server through KUBE_CONTEXT, without Istio (ISTIO_INSTALL=none:
// nothing to install): up prints the export line of the state it saved, and down ends that run,
// removing nothing from a cluster it did not create.
func TestTier1UpThenDown(t *testing.T) {
	env := apitest.Env(t)
	reports := isolate(t)
	raw, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	t.Setenv("KUBE_CONTEXT", raw.CurrentContext)
	t.Setenv("ISTIO_INSTALL", "none")
	ctx := context.Background()

	var stdout, stderr strings.Builder
	code := Main(ctx, []string{"up"}, &stdout, &stderr)
	t.Logf("up: exit %d\n%s", code, stderr.String())
	path := provision.StatePath(filepath.Join(reports, "run"))
	if code != 0 || stdout.String() != "export "+provision.StateEnv+"="+path+"\n" {
		t.Fatalf("up: exit %d, stdout %q", code, stdout.String())
	}
	st, err := provision.LoadState(path)
	if err != nil || st.Context != raw.CurrentContext || !st.Existing {
		t.Fatalf("the state up saved: context %q, existing %v, %v", st.Context, st.Existing, err)
	}

	t.Setenv(provision.StateEnv, path)
	stdout.Reset()
	stderr.Reset()
	if code := Main(ctx, []string{"down", "failed"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Errorf("down: exit %d, stderr %q: an existing cluster loses nothing and needs no words", code, stderr.String())
	}
}
