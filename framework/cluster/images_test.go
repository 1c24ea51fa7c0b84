package cluster

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCrictlImagesAndHas(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// The shape `crictl images -o json` prints (trimmed to the fields that matter).
	out := `{"images":[
	 {"id":"sha256:aa","repoTags":["docker.io/library/nginx:1.27"],"repoDigests":["docker.io/library/nginx@` + dg + `"],"size":"1","pinned":false},
	 {"id":"sha256:bb","repoTags":["docker.io/istio/proxyv2:1.31.1","registry.example.com/istio/proxyv2:1.31.1"],"repoDigests":[]},
	 {"id":"sha256:cc","repoTags":[],"repoDigests":["docker.io/curlimages/curl@` + dg + `"]}]}`
	imgs, err := ParseCrictlImages([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"nginx:1.27":                   true,
		"docker.io/library/nginx:1.27": true,
		"nginx:1.28":                   false,
		"nginx":                        false, // latest is not there
		"nginx@" + dg:                  true,
		"nginx:whatever@" + dg:         true, // the digest decides, as for the kubelet
		"istio/proxyv2:1.31.1":         true,
		"registry.example.com/istio/proxyv2:1.31.1": true,
		"curlimages/curl@" + dg:                     true,
		"curlimages/curl:8.11.1":                    false,
		"not a ref":                                 false,
	}
	for img, want := range tests {
		if got := imgs.Has(img); got != want {
			t.Errorf("Has(%q) = %v, want %v", img, got, want)
		}
	}
	if _, err := ParseCrictlImages([]byte("FATA[0000] connect: no such file")); err == nil {
		t.Error("garbage parsed")
	}
}

func quiet(t *testing.T) Backoff {
	return Backoff{Attempts: 4, Initial: time.Millisecond, Max: 2 * time.Millisecond, Factor: 2, Deadline: time.Minute}
}

// Images are pulled once on the host (retrying a flaky pull), saved, and loaded only into the
// nodes that lack them (retrying a flaky import), through the real nodeutils.LoadImageArchive.
func TestPreloadPullsOnceAndLoadsWhereMissing(t *testing.T) {
	docker := newFakeDocker(t, 2) // two pull failures before success
	a := newFakeNode(t, "kind-control-plane", 1, "docker.io/library/nginx:1.27")
	b := newFakeNode(t, "kind-worker", 0)
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: &strings.Builder{}}
	res, err := p.Preload(context.Background(), []Node{a, b}, []string{"curlimages/curl:8.11.1", "nginx:1.27", "curlimages/curl:8.11.1"})
	if err != nil {
		t.Fatalf("Preload: %v\nlog:\n%s", err, p.Log)
	}
	// nginx is on node a but not on the host: the host pulls it for node b.
	if strings.Join(res.Pulled, ",") != "curlimages/curl:8.11.1,nginx:1.27" {
		t.Errorf("pulled %v, want curl and nginx", res.Pulled)
	}
	if got := strings.Count(docker.read("calls"), "pull --quiet curlimages/curl:8.11.1"); got != 3 {
		t.Errorf("curl pulled %d times, want 3 (two failures, one success)", got)
	}
	// nginx is missing on b only: it is loaded there and nowhere else.
	wantLoaded := []string{"curlimages/curl:8.11.1 → kind-control-plane", "curlimages/curl:8.11.1 → kind-worker", "nginx:1.27 → kind-worker"}
	if strings.Join(res.Loaded, "|") != strings.Join(wantLoaded, "|") {
		t.Errorf("loaded %q\nwant   %q", res.Loaded, wantLoaded)
	}
	if n := strings.Count(a.read("ctr-calls"), "images import"); n != 2 {
		t.Errorf("node a saw %d imports, want 2 (one failed, one retried)", n)
	}
	if !strings.Contains(a.read("ctr-calls"), "--snapshotter=overlayfs") {
		t.Errorf("kind's LoadImageArchive did not pass the node's snapshotter: %s", a.read("ctr-calls"))
	}
	for _, n := range []fakeNode{a, b} {
		imgs, err := ListNodeImages(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range []string{"curlimages/curl:8.11.1", "nginx:1.27"} {
			if !imgs.Has(img) {
				t.Errorf("%s lacks %s after Preload", n, img)
			}
		}
	}
	if len(res.NotVisible) != 0 {
		t.Errorf("NotVisible = %v", res.NotVisible)
	}
	if left, _ := os.ReadDir(p.Dir); len(left) != 0 {
		t.Errorf("%d archives left in %s after loading", len(left), p.Dir)
	}

	// A second run finds everything in place: nothing pulled, saved or loaded.
	before := docker.read("calls")
	res, err = p.Preload(context.Background(), []Node{a, b}, []string{"curlimages/curl:8.11.1", "nginx:1.27"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Loaded)+len(res.Pulled) != 0 || len(res.Present) != 2 || docker.read("calls") != before {
		t.Errorf("second run did work: %+v; docker calls %q", res, strings.TrimPrefix(docker.read("calls"), before))
	}
}

func TestPreloadUnknownImageFailsAtOnce(t *testing.T) {
	docker := newFakeDocker(t, 0)
	n := newFakeNode(t, "n", 0)
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t)}
	_, err := p.Preload(context.Background(), []Node{n}, []string{"example/doesnotexist:1"})
	if err == nil || !strings.Contains(err.Error(), "retrying cannot help") || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Count(docker.read("calls"), "pull"); got != 1 {
		t.Errorf("pulled %d times, want 1", got)
	}
}

// A node that keeps refusing an image is a warning naming the image and saying the node will
// pull it; the run goes on.
func TestPreloadGivesUpOnAFlakyNode(t *testing.T) {
	docker := newFakeDocker(t, 0)
	n := newFakeNode(t, "n", 100)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{n}, []string{"nginx:1.27"})
	if err != nil {
		t.Fatalf("a failed load must not abort: %v", err)
	}
	if len(res.NotLoaded) != 1 {
		t.Fatalf("NotLoaded = %q", res.NotLoaded)
	}
	for _, want := range []string{"nginx:1.27 → n: load nginx:1.27 into node n failed 4 times", "failed to load image", "unexpected EOF"} {
		if !strings.Contains(res.NotLoaded[0], want) {
			t.Errorf("NotLoaded lacks %q: %s", want, res.NotLoaded[0])
		}
	}
	if !strings.Contains(log.String(), "warning: image nginx:1.27: not loaded into node n; the node will pull it") {
		t.Errorf("no warning in the log:\n%s", log)
	}
}

// With engine API 1.48 or newer, the archive holds the node's platform only (docker save
// --platform linux/<arch of uname -m in the node>), so a multi-arch image under the
// containerd image store loads (kind issue 3795).
func TestPreloadSavesTheNodePlatform(t *testing.T) {
	docker := newFakeDocker(t, 0)
	docker.setAPI(t, "1.48")
	a := newFakeNode(t, "kind-control-plane", 0)
	b := newFakeNode(t, "kind-worker", 0)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{a, b}, []string{"example/multiarch:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NotLoaded) != 0 || len(res.Loaded) != 2 {
		t.Fatalf("loaded %q, not loaded %q\nlog:\n%s", res.Loaded, res.NotLoaded, log)
	}
	calls := docker.read("calls")
	if n := strings.Count(calls, "save -o "); n != 1 {
		t.Errorf("saved %d times, want once for both nodes (same platform):\n%s", n, calls)
	}
	if !strings.Contains(calls, " --platform linux/amd64 example/multiarch:1\n") {
		t.Errorf("docker save did not get the node's platform:\n%s", calls)
	}
}

// An image the host cannot save is a warning too; the other images still load.
func TestPreloadSaveFailureIsAWarning(t *testing.T) {
	docker := newFakeDocker(t, 0)
	n := newFakeNode(t, "kind-control-plane", 0)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{n}, []string{"example/unsaveable:1", "nginx:1.27"})
	if err != nil {
		t.Fatalf("a failed save must not abort: %v", err)
	}
	if strings.Join(res.Loaded, ",") != "nginx:1.27 → kind-control-plane" || len(res.NotLoaded) != 1 ||
		!strings.Contains(res.NotLoaded[0], "no space left on device") {
		t.Errorf("loaded %q, not loaded %q", res.Loaded, res.NotLoaded)
	}
	if !strings.Contains(log.String(), "warning: image example/unsaveable:1: not loaded into node kind-control-plane; the node will pull it") {
		t.Errorf("log:\n%s", log)
	}
}

// A docker CLI older than --platform (while the engine is new enough) saves every platform
// instead, once, and says so.
func TestPreloadOldCLIFallsBack(t *testing.T) {
	docker := newFakeDocker(t, 0)
	os.WriteFile(docker.dir+"/cli-without-platform", nil, 0o644)
	n := newFakeNode(t, "kind-control-plane", 0)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{n}, []string{"nginx:1.27"})
	if err != nil || strings.Join(res.Loaded, ",") != "nginx:1.27 → kind-control-plane" {
		t.Fatalf("loaded %q, err %v\nlog:\n%s", res.Loaded, err, log)
	}
	calls := docker.read("calls")
	if strings.Count(calls, "save -o ") != 2 || strings.Count(calls, "--platform") != 1 {
		t.Errorf("want one save with --platform, then one without:\n%s", calls)
	}
	if !strings.Contains(log.String(), "unknown flag: --platform") || !strings.Contains(log.String(), "saving every platform of nginx:1.27 instead") {
		t.Errorf("log:\n%s", log)
	}
}

// Below API 1.48 docker save cannot pick a platform: the archive of a multi-arch image lacks
// blobs, ctr refuses it once (retrying the same archive cannot help), and the run goes on
// with a warning while other images still load.
func TestPreloadOldEngineWarnsAndContinues(t *testing.T) {
	docker := newFakeDocker(t, 0)
	docker.setAPI(t, "1.47")
	n := newFakeNode(t, "kind-control-plane", 0)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{n}, []string{"example/multiarch:1", "nginx:1.27"})
	if err != nil {
		t.Fatalf("a failed load must not abort: %v", err)
	}
	if strings.Contains(docker.read("calls"), "--platform") {
		t.Errorf("--platform passed to an engine with API 1.47:\n%s", docker.read("calls"))
	}
	if strings.Join(res.Loaded, ",") != "nginx:1.27 → kind-control-plane" {
		t.Errorf("loaded %q, want nginx only", res.Loaded)
	}
	if len(res.NotLoaded) != 1 || !strings.Contains(res.NotLoaded[0], "example/multiarch:1 → kind-control-plane") ||
		!strings.Contains(res.NotLoaded[0], "content digest sha256:9106d839") {
		t.Errorf("NotLoaded = %q", res.NotLoaded)
	}
	if got := strings.Count(n.read("ctr-calls"), "images import"); got != 2 {
		t.Errorf("%d imports, want 2 (the multi-arch archive once, nginx once)", got)
	}
	for _, want := range []string{
		"engine API 1.47 is older than 1.48",
		"warning: image example/multiarch:1: not loaded into node kind-control-plane; the node will pull it",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if left, _ := os.ReadDir(p.Dir); len(left) != 0 {
		t.Errorf("%d archives left in %s", len(left), p.Dir)
	}
}

func TestAPIAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"1.48": true, "1.51": true, "1.100": true, "2.0": true, "1.47": false, "1.9": false, "": false, "x.y": false} {
		if got := APIAtLeast(v, SavePlatformAPI); got != want {
			t.Errorf("APIAtLeast(%q, 1.48) = %v", v, got)
		}
	}
}

func TestPreloadRejectsBadReference(t *testing.T) {
	_, err := Preloader{}.Preload(context.Background(), nil, []string{"Bad/Ref"})
	if err == nil {
		t.Fatal("accepted")
	}
}

func TestDockerCommandError(t *testing.T) {
	docker := newFakeDocker(t, 0)
	d := Docker{Path: docker.bin}
	if ok, err := d.HasImage(context.Background(), "nginx:1"); ok || err != nil {
		t.Fatalf("HasImage on an empty host: %v %v", ok, err)
	}
	_, err := d.Run(context.Background(), "frobnicate")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 2 || !strings.Contains(err.Error(), "fake docker: unexpected frobnicate") {
		t.Fatalf("err = %#v", err)
	}
	_, err = Docker{Path: "/nonexistent/docker"}.ServerVersion(context.Background())
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Fatalf("missing binary: %#v", err)
	}
	if got := ArchiveName("docker.io/library/nginx:1.27"); !strings.HasPrefix(got, "docker.io_library_nginx_1.27-") || !strings.HasSuffix(got, ".tar") {
		t.Errorf("ArchiveName = %q", got)
	}
	if ArchiveName("a:b") == ArchiveName("a_b") {
		t.Error("distinct references share an archive")
	}
}

// An image the host's engine already holds (built or `docker load`ed on an air-gapped machine)
// is saved and loaded as it is, never pulled, and the log says so; an absent image whose pull
// fails is an error naming the image and the fix.
func TestPreloadUsesHostImagesWithoutPulling(t *testing.T) {
	docker := newFakeDocker(t, 0)
	if err := os.WriteFile(docker.dir+"/host-images", []byte("docker.io/curlimages/curl:8.11.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newFakeNode(t, "kind-control-plane", 0)
	log := &strings.Builder{}
	p := Preloader{Docker: Docker{Path: docker.bin}, Dir: t.TempDir(), Backoff: quiet(t), Log: log}
	res, err := p.Preload(context.Background(), []Node{n}, []string{"docker.io/curlimages/curl:8.11.1"})
	if err != nil {
		t.Fatalf("Preload: %v\nlog:\n%s", err, log)
	}
	if strings.Contains(docker.read("calls"), "pull") {
		t.Errorf("pulled an image the host has: %s", docker.read("calls"))
	}
	if !strings.Contains(log.String(), "image docker.io/curlimages/curl:8.11.1: present on the host, not pulled") {
		t.Errorf("log does not say the host had it:\n%s", log)
	}
	if strings.Join(res.OnHost, ",") != "docker.io/curlimages/curl:8.11.1" || len(res.Pulled) != 0 ||
		strings.Join(res.Loaded, ",") != "docker.io/curlimages/curl:8.11.1 → kind-control-plane" {
		t.Errorf("result %+v", res)
	}

	// Absent from the host, and the registry unreachable: an error naming every such image and
	// the fix, once the images the host has are loaded.
	offline := newFakeDocker(t, 100)
	if err := os.WriteFile(offline.dir+"/host-images", []byte("docker.io/library/nginx:1.27.3-alpine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Docker = Docker{Path: offline.bin}
	res, err = p.Preload(context.Background(), []Node{n}, []string{"docker.io/mccutchen/go-httpbin:v2.15.0",
		"docker.io/istio/pilot:1.31.4", "docker.io/library/nginx:1.27.3-alpine"})
	for _, want := range []string{"2 of 3 images are neither on the host nor pullable",
		"image docker.io/mccutchen/go-httpbin:v2.15.0 is not on the host and cannot be pulled",
		"image docker.io/istio/pilot:1.31.4 is not on the host and cannot be pulled",
		"load it with `docker load`", "scripts/workload-images.sh", "TLS handshake timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	if strings.Join(res.Loaded, ",") != "docker.io/library/nginx:1.27.3-alpine → kind-control-plane" {
		t.Errorf("an absent image stopped the others from loading: %+v", res)
	}

	// The same, with the absent sample image optional (mysql on a host that cannot build it):
	// a warning naming it and what it costs, no error; a required absent image still stops it.
	log.Reset()
	p.Optional = []string{"docker.io/library/mysql:8.4.3"}
	res, err = p.Preload(context.Background(), []Node{n}, []string{"docker.io/library/mysql:8.4.3", "docker.io/library/nginx:1.27.3-alpine"})
	if err != nil || strings.Join(res.Unavailable, ",") != "docker.io/library/mysql:8.4.3" {
		t.Errorf("optional absent image: err %v, result %+v; want no error and it listed as unavailable", err, res)
	}
	if want := "warning: image docker.io/library/mysql:8.4.3 is not on the host and cannot be pulled"; !strings.Contains(log.String(), want) ||
		!strings.Contains(log.String(), "only the specs whose pods run it need it") {
		t.Errorf("log lacks %q and what it costs:\n%s", want, log)
	}
	// IMAGE_PULL=0: an image the host lacks is never pulled (no registry, no DNS asked).
	noPull := p
	noPull.NoPull, noPull.Docker = true, Docker{Path: docker.bin}
	calls := docker.read("calls")
	if _, err := noPull.Preload(context.Background(), []Node{n}, []string{"docker.io/istio/pilot:1.31.4"}); err == nil ||
		!strings.Contains(err.Error(), "image docker.io/istio/pilot:1.31.4 is not on the host, and IMAGE_PULL=0 forbids pulling it") {
		t.Errorf("IMAGE_PULL=0 and an absent image: %v", err)
	}
	if strings.Contains(strings.TrimPrefix(docker.read("calls"), calls), "pull") {
		t.Errorf("IMAGE_PULL=0 pulled: %s", strings.TrimPrefix(docker.read("calls"), calls))
	}
	if _, err = p.Preload(context.Background(), []Node{n}, []string{"docker.io/library/mysql:8.4.3", "docker.io/istio/pilot:1.31.4"}); err == nil ||
		!strings.Contains(err.Error(), "1 of 2 images are neither on the host nor pullable") || strings.Contains(err.Error(), "mysql") {
		t.Errorf("a required absent image beside an optional one: %v; want an error naming only the required one", err)
	}
}
