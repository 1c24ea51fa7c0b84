package cluster

import (
	"context"
	"meshconform/internal/kindtest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/envfuncs"
)

// Kind composes with e2e-framework's envfuncs: CreateClusterWithOpts drives it through the
// provider interface (SetDefaults, WithName, WithOpts, Create). Without a Docker engine the
// env func fails at once with kind's error; nothing is created. (DOCKER_HOST names a socket
// that does not exist: see noEngine.)
func TestEnvfuncsCompose(t *testing.T) {
	kindtest.NoEngine(t)
	k := NewKind("")
	fn := envfuncs.CreateClusterWithOpts(k, "meshconform-envfuncs", WithKubeconfigPath(filepath.Join(t.TempDir(), "kc")), WithReuse(true))
	start := time.Now()
	_, err := fn(context.Background(), envconf.New())
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	if err == nil || !strings.Contains(err.Error(), "list kind clusters") {
		t.Fatalf("err = %v", err)
	}
	if k.Name() != "meshconform-envfuncs" || !k.reuse || k.Created() {
		t.Errorf("options not applied through the interface: name %q reuse %v created %v", k.Name(), k.reuse, k.Created())
	}
	if k.GetKubectlContext() != "kind-meshconform-envfuncs" {
		t.Errorf("context %q", k.GetKubectlContext())
	}
}
