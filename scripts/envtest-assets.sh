#!/usr/bin/env bash
# Obtains kube-apiserver, etcd and kube-controller-manager for tier-1 tests and prints the
# directory that holds them (the value for KUBEBUILDER_ASSETS).
#
# Order: a cache hit (seconds); setup-envtest's download for kube-apiserver and etcd (it has no
# kube-controller-manager); a build from the Go module proxy for whatever is still missing:
# k8s.io/kubernetes at KUBE_VERSION with every staging module pinned to the matching v0 release
# (replace directives in a dependency's go.mod are ignored, so they must be restated), and etcd
# from the server module that release depends on. The cache lives outside the source tree.
#
# Environment:
#   KUBE_VERSION              Kubernetes release to build (default 1.37.2)
#   MESHCONFORM_ASSETS_DIR    where to cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/envtest)
#   MESHCONFORM_NO_DOWNLOAD=1 skip setup-envtest and build everything
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-v0.25.1}"
CACHE="${MESHCONFORM_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/envtest}"
BIN="$CACHE/k8s-$KUBE_VERSION/bin"
BINARIES=(kube-apiserver etcd kube-controller-manager)
# Bumped whenever the way the binaries are made changes, so caches made the old way are rebuilt.
RECIPE="build-r2: etcd pinned to the release's own version; version stamped by ldflags"

log() { printf 'envtest-assets: %s\n' "$*" >&2; }
die() { printf 'envtest-assets: error: %s\n' "$*" >&2; exit 1; }

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
  [ "$(cat "$BIN/.recipe" 2>/dev/null)" = "$RECIPE" ] || [ -f "$BIN/.downloaded" ]
}

if ! [[ "$KUBE_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  die "KUBE_VERSION=$KUBE_VERSION is not a release like 1.37.2"
fi
command -v go >/dev/null || die "go is not on PATH: install Go 1.26 (https://go.dev/dl) and retry"

if have_all; then
  echo "$BIN"
  exit 0
fi
# One obtainer at a time: .ci/run's two lanes (make test, and make live's node image) both ask
# for these binaries, and two builds would share $BIN.new and the build module. The second
# waits, then finds the first one's binaries.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another envtest-assets.sh is obtaining the binaries (lock $CACHE/.lock): waiting for it"
  flock 9
fi
if have_all; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$BIN" "$BIN.new"

# 1. setup-envtest, where the machine can reach its download store.
if [ "${MESHCONFORM_NO_DOWNLOAD:-}" != 1 ] && { [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/etcd" ]; }; then
  log "trying setup-envtest $SETUP_ENVTEST_VERSION for kube-apiserver and etcd $KUBE_VERSION"
  dl="$CACHE/setup-envtest"
  if out=$(timeout 120 go run "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" \
        use "$KUBE_VERSION" --bin-dir "$dl" -p path 2>"$CACHE/setup-envtest.log") && [ -x "$out/kube-apiserver" ]; then
    cp "$out/kube-apiserver" "$out/etcd" "$BIN/" && touch "$BIN/.downloaded"
    log "downloaded kube-apiserver and etcd"
  else
    log "setup-envtest could not download (see $CACHE/setup-envtest.log); building from the Go module proxy instead"
  fi
fi

missing=()
if [ -f "$BIN/.downloaded" ]; then
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || missing+=("$b"); done
else
  missing=("${BINARIES[@]}") # built binaries from an older recipe are all rebuilt
fi
if [ ${#missing[@]} -eq 0 ]; then echo "$BIN"; exit 0; fi

# 2. Build what is missing.
src="$CACHE/build-$KUBE_VERSION"
mkdir -p "$src/etcd"
log "building ${missing[*]} from k8s.io/kubernetes v$KUBE_VERSION (cold: about 8 minutes on 2 cores; cached afterwards)"

kmod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" 2>&1) ||
  die "cannot download k8s.io/kubernetes@v$KUBE_VERSION from the Go module proxy ($kmod); check GOPROXY and network, or set KUBE_VERSION to a served release"
gomod=$(printf '%s\n' "$kmod" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$gomod" ] || die "go mod download gave no go.mod for k8s.io/kubernetes@v$KUBE_VERSION"

staging_version="v0.${KUBE_VERSION#*.}"
etcd_version=$(sed -n 's#^[[:space:]]*go.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$gomod")
[ -n "$etcd_version" ] || die "k8s.io/kubernetes@v$KUBE_VERSION's go.mod names no go.etcd.io/etcd/server/v3 version"
{
  echo "module meshconform.local/envtest-build"
  echo
  echo "go $(sed -n 's/^go \(.*\)/\1/p' "$gomod")"
  echo
  echo "require k8s.io/kubernetes v$KUBE_VERSION"
  echo
  echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
  echo ")"
} >"$src/go.mod"

cat >"$src/etcd/main.go" <<'GO'
// etcd, built from the etcd server module the Kubernetes release depends on.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

pkgs=()
for b in "${missing[@]}"; do
  case "$b" in
    etcd) pkgs+=(./etcd) ;;
    *) pkgs+=("k8s.io/kubernetes/cmd/$b") ;;
  esac
done

(
  cd "$src"
  export GOFLAGS=-mod=mod CGO_ENABLED=0
  # go mod tidy would walk all of Kubernetes' tests; resolving only what the builds import is enough.
  minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  v=k8s.io/component-base/version
  ldflags="-s -w -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  go get "k8s.io/kubernetes@v$KUBE_VERSION" "go.etcd.io/etcd/server/v3@$etcd_version" >"$src/build.log" 2>&1 &&
    go build -trimpath -ldflags "$ldflags" -o "$BIN.new/" "${pkgs[@]}" >>"$src/build.log" 2>&1
) || { tail -n 30 "$src/build.log" >&2; die "building ${missing[*]} failed (full log: $src/build.log)"; }

# Replace the binaries only once all of them built (tests may be running against the old ones).
for b in "${missing[@]}"; do mv -f "$BIN.new/$b" "$BIN/$b"; done
rmdir "$BIN.new" 2>/dev/null || true
[ -f "$BIN/.downloaded" ] || echo "$RECIPE" >"$BIN/.recipe"
have_all || die "build finished but ${BINARIES[*]} are not all in $BIN"
log "built into $BIN"
echo "$BIN"
