package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// Fake CLIs: shell scripts standing in for the docker CLI on the host and for crictl, ctr and
// containerd inside a kind node. They keep their state in files so that a test can check what
// the real code (os/exec, kind's exec and nodeutils) made them do.

// fakeHost is a docker CLI whose images, pulls and saves live under dir.
type fakeHost struct {
	dir string
	bin string
}

// newFakeDocker writes a docker script. pullFails is how many pulls fail (as a network hiccup)
// before one succeeds; images containing "doesnotexist" fail as unknown manifests. The engine's
// API version is 1.51 unless the file "api" says otherwise (setAPI). It models Docker's
// containerd image store: `docker save` without --platform of an image whose name contains
// "multiarch" writes an archive whose index names a blob it lacks (kind issue 3795), which the
// fake ctr rejects as the real one does.
func newFakeDocker(t *testing.T, pullFails int) fakeHost {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
S=%q
echo "$*" >> "$S/calls"
case "$1" in
version)
  case "$3" in
  *APIVersion*) cat "$S/api" 2>/dev/null || echo 1.51 ;;
  *) echo 27.5.1 ;;
  esac ;;
image)
  img="$5"
  if grep -qxF "$img" "$S/host-images" 2>/dev/null; then echo sha256:feed; exit 0; fi
  echo "Error response from daemon: No such image: $img" >&2; exit 1 ;;
pull)
  img="$3"
  case "$img" in *doesnotexist*) echo "Error response from daemon: manifest unknown" >&2; exit 1 ;; esac
  n=$(cat "$S/pulls" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$S/pulls"
  if [ $n -le %d ]; then echo "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: TLS handshake timeout" >&2; exit 1; fi
  echo "$img" >> "$S/host-images"; echo "$img" ;;
save)
  out="$3"; shift 3
  platform=""
  if [ "$1" = "--platform" ]; then
    if [ -e "$S/cli-without-platform" ]; then echo "unknown flag: --platform" >&2; echo "See 'docker save --help'." >&2; exit 125; fi
    platform="$2"; shift 2
  fi
  case "$*" in *unsaveable*) echo "Error response from daemon: write /var/lib/docker/tmp/docker-export: no space left on device" >&2; exit 1 ;; esac
  for i in "$@"; do
    echo "$i"
    case "$i$platform" in *multiarch*) [ -n "$platform" ] || echo MISSING-BLOB ;; esac
  done > "$out" ;;
ps) cat "$S/kind-clusters" 2>/dev/null ;;
port)
  if grep -q "^$2 $3 " "$S/published" 2>/dev/null; then grep "^$2 $3 " "$S/published" | cut -d' ' -f3; exit 0; fi
  echo "Error: No public port '$3' published for $2" >&2; exit 1 ;;
*) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`, dir, pullFails)
	bin := filepath.Join(dir, "docker")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return fakeHost{dir: dir, bin: bin}
}

// setAPI makes the fake engine report API version v.
func (f fakeHost) setAPI(t *testing.T, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, "api"), []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fakeHost) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.dir, name))
	return string(b)
}

// fakeNode is a kind node whose commands run as local scripts: crictl lists the images in its
// state file, ctr imports an "archive" (the image names docker save wrote), failing the first
// importFails times and on an archive lacking a blob, containerd prints a config naming the
// snapshotter, and uname -m prints x86_64.
type fakeNode struct {
	name string
	dir  string
}

func newFakeNode(t *testing.T, name string, importFails int, images ...string) fakeNode {
	t.Helper()
	dir := t.TempDir()
	write := func(file, body string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("images", strings.Join(images, "\n")+"\n")
	write("crictl", fmt.Sprintf(`#!/bin/sh
S=%q
[ "$1 $2 $3" = "images -o json" ] || { echo "fake crictl: $*" >&2; exit 2; }
printf '{"images":['
sep=""
while read -r img; do
  [ -n "$img" ] || continue
  case "$img" in
  *@*) printf '%%s{"id":"sha256:1","repoTags":[],"repoDigests":["%%s"]}' "$sep" "$img" ;;
  *)   printf '%%s{"id":"sha256:1","repoTags":["%%s"],"repoDigests":[]}' "$sep" "$img" ;;
  esac
  sep=","
done < "$S/images"
printf ']}\n'
`, dir))
	write("uname", "#!/bin/sh\n[ \"$1\" = -m ] && echo x86_64\n")
	write("containerd", "#!/bin/sh\nprintf 'version = 3\\n[plugins]\\n  [plugins.\"io.containerd.cri.v1.images\"]\\n    snapshotter = \"overlayfs\"\\n'\n")
	write("ctr", fmt.Sprintf(`#!/bin/sh
S=%q
echo "$*" >> "$S/ctr-calls"
n=$(cat "$S/imports" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$S/imports"
if [ $n -le %d ]; then cat > /dev/null; echo "ctr: failed to import: unexpected EOF" >&2; exit 1; fi
archive=$(cat)
if printf '%%s\n' "$archive" | grep -qx MISSING-BLOB; then
  echo "ctr: content digest sha256:9106d83981393d7489c50e7cfa87a9d30b78444420c22931094256e55f9d0e5f: not found" >&2; exit 1
fi
printf '%%s\n' "$archive" | while read -r img; do
  case "$img" in
  */*/*) echo "$img" ;;
  */*) echo "docker.io/$img" ;;
  *) echo "docker.io/library/$img" ;;
  esac
done >> "$S/images"
`, dir, importFails))
	return fakeNode{name: name, dir: dir}
}

func (n fakeNode) String() string { return n.name }

func (n fakeNode) Command(name string, args ...string) kindexec.Cmd {
	return kindexec.Command(filepath.Join(n.dir, name), args...)
}

func (n fakeNode) CommandContext(ctx context.Context, name string, args ...string) kindexec.Cmd {
	return kindexec.CommandContext(ctx, filepath.Join(n.dir, name), args...)
}

func (n fakeNode) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, name))
	return string(b)
}
