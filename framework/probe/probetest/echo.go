package probetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"meshconform/internal/istiosrc"
)

// EchoBinaries returns Istio's echo server and client built from branch b's pinned commit, as
// scripts/istiod-image.sh builds them for the proxyless data plane's image: in the branch's
// build module (internal/istiosrc/build), -mod=readonly, Istio's STANDARD_TAGS, CGO off. They
// are kept under istiosrc.CacheDir()/echo/<pseudo-version>-<build module hash>, so only the
// first test run on a machine builds them (about 45 s on two cores with a warm Go build cache
// of pilot-discovery's packages).
func EchoBinaries(t testing.TB, b istiosrc.Branch) (server, client string) {
	t.Helper()
	gomod, gosum, err := istiosrc.BuildModule(b)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append(append([]byte{}, gomod...), gosum...))
	root, err := istiosrc.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "echo", b.Pseudo+"-"+hex.EncodeToString(h[:4]))
	server, client = filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if _, err := os.Stat(filepath.Join(dir, ".done")); err == nil {
		return server, client
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src := t.TempDir()
	if err := istiosrc.WriteBuildModule(b, src); err != nil {
		t.Fatal(err)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "vtprotobuf,disable_pgv", "-o", tmp+"/",
		"istio.io/istio/pkg/test/echo/cmd/server", "istio.io/istio/pkg/test/echo/cmd/client")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off", "CGO_ENABLED=0")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building Istio's echo server and client (%s): %v\n%s", b.Name, err, out)
	}
	t.Logf("built Istio's echo server and client of %s in %v", b.Name, time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(tmp, ".done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return server, client
}
