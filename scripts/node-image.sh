#!/usr/bin/env bash
# Builds a kind node image for Kubernetes KUBE_VERSION without pulling any image: every binary is
# built from the Go module proxy, the OS comes from a debootstrap'ed Debian rootfs plus Debian
# packages, and the control-plane, etcd, CoreDNS and pause images are one-binary images made with
# `docker import`. Prints the image name on stdout; timings per step go to stderr.
#
#   export "$(scripts/local-engine.sh start)"; scripts/node-image.sh
#
# Layout replicated from sigs.k8s.io/kind@KIND_VERSION (images/base/Dockerfile and
# pkg/build/nodeimage): kind's base files (/usr/local/bin/entrypoint, /kind/bin, containerd config,
# kubelet units), containerd + ctr + shim in /usr/local/bin, runc in /usr/local/sbin, crictl,
# CNI plugins in /opt/cni/bin, kubeadm/kubelet/kubectl in /usr/bin, /kind/version, and the images
# `kubeadm config images list` names imported into the node's containerd (namespace k8s.io, pinned).
# kindnet is not on the Go module proxy, so the image carries a bridge CNI conflist for one node
# (use it with kind's networking.disableDefaultCNI: true, as manifests/kind/offline.yaml does).
#
# Every artifact is cached under CACHE/artifacts/NAME/KEY, KEY naming its source version and
# RECIPE; a step whose KEY dir holds .done is skipped. The node image's name hashes all keys.
#
# Environment:
#   KUBE_VERSION               Kubernetes release (default 1.37.2)
#   MESHCONFORM_NODE_CACHE     cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/node-image)
#   MESHCONFORM_NODE_ROOTFS    a debootstrap'ed Debian rootfs with systemd to start from (default: built
#                              here, debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus)
#   DEBIAN_MIRROR              debootstrap's mirror (default http://deb.debian.org/debian)
#   DOCKER_HOST                the engine that receives the images (required)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
XC="${XDG_CACHE_HOME:-$HOME/.cache}/meshconform"
KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
CACHE="${MESHCONFORM_NODE_CACHE:-$XC/node-image}"
PROG=node-image
# shellcheck source=lib/cached-step.sh
. "$(dirname "$0")/lib/cached-step.sh"

SUITE=bookworm
BASE_PACKAGES=systemd,systemd-sysv,dbus
KIND_VERSION=v0.33.0
# Versions kind v0.33.0's base image uses, where the proxy serves them (cri-tools: only v1.37.0).
CONTAINERD_VERSION=v2.3.4
RUNC_VERSION=v1.4.3
CRICTL_VERSION=v1.37.0
CNI_PLUGINS_VERSION=v1.9.1
# Debian packages kind's base image installs that a one-node cluster uses.
PACKAGES="conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2 pigz bash ca-certificates curl jq procps"
RECIPE=r1 # bump when a step's way of building changes


[ -n "${DOCKER_HOST:-}" ] || die 'DOCKER_HOST is not set: export "$(scripts/local-engine.sh start)" first'
command -v go >/dev/null || die "go is not on PATH"
docker version --format '{{.Server.Version}}' >/dev/null || die "no engine answers at $DOCKER_HOST"
[[ "$KUBE_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "KUBE_VERSION=$KUBE_VERSION is not a release"
minor=${KUBE_VERSION#*.}; minor=${minor%%.*}


# goinstall OUT PKG@VERSION [go build flags...]: builds with the module's own go.mod, cgo off unless set.
goinstall() {
  local out=$1 pkg=$2
  shift 2
  GOBIN="$out" CGO_ENABLED="${CGO_ENABLED:-0}" "${LOWPRI[@]}" go install -trimpath "$@" "$pkg"
}

# --- Kubernetes binaries: kubelet, kubeadm, kubectl, kube-scheduler, kube-proxy here; kube-apiserver,
# kube-controller-manager and etcd from scripts/envtest-assets.sh's cache (same pinning technique).
build_kube() {
  local out=$1 src="$CACHE/build/k8s-$KUBE_VERSION" kmod gomod
  mkdir -p "$src"
  kmod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION")
  gomod=$(printf '%s\n' "$kmod" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module meshconform.local/node-image-build"
    echo
    echo "go $(sed -n 's/^go \(.*\)/\1/p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\t\1 => \1 v0.'"$minor"'.'"${KUBE_VERSION##*.}"'#p' "$gomod"
    echo ")"
  } >"$src/go.mod.want"
  # go get rewrites go.mod; go.mod.in keeps what was written, so only a new recipe resets it.
  cmp -s "$src/go.mod.want" "$src/go.mod.in" 2>/dev/null || { cp "$src/go.mod.want" "$src/go.mod"; cp "$src/go.mod.want" "$src/go.mod.in"; }
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=${KUBE_VERSION%%.*} -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  (
    cd "$src"
    export GOFLAGS=-mod=mod CGO_ENABLED=0
    "${LOWPRI[@]}" go get "k8s.io/kubernetes@v$KUBE_VERSION"
    "${LOWPRI[@]}" go build -trimpath -ldflags "$ldflags" -o "$out/" \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy
  )
  # pause, from the C source Kubernetes ships; static so the image needs nothing else.
  local kdir
  kdir=$(printf '%s\n' "$kmod" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  "${LOWPRI[@]}" gcc -Os -static -o "$out/pause" "$kdir/build/pause/linux/pause.c"
  local envtest
  envtest=$(KUBE_VERSION=$KUBE_VERSION MESHCONFORM_NO_DOWNLOAD=1 "$ROOT/scripts/envtest-assets.sh")
  cp "$envtest/kube-apiserver" "$envtest/kube-controller-manager" "$envtest/etcd" "$out/"
}

build_containerd() {
  local out=$1 v=github.com/containerd/containerd/v2/version
  for c in containerd ctr containerd-shim-runc-v2; do
    goinstall "$out" "github.com/containerd/containerd/v2/cmd/$c@$CONTAINERD_VERSION" \
      -tags "no_aufs no_zfs no_btrfs no_devmapper" \
      -ldflags "-s -w -X $v.Version=$CONTAINERD_VERSION -X $v.Package=github.com/containerd/containerd/v2"
  done
}

build_runc() {
  # cgo (runc's nsenter) and libseccomp (Debian's libseccomp-dev); linked dynamically against
  # bookworm's glibc and libseccomp2, which the rootfs carries.
  dpkg -s libseccomp-dev >/dev/null 2>&1 || "${LOWPRI[@]}" apt-get install -y -q libseccomp-dev
  CGO_ENABLED=1 goinstall "$1" "github.com/opencontainers/runc@$RUNC_VERSION" -tags seccomp \
    -ldflags "-s -w -X main.version=${RUNC_VERSION#v}"
}

build_crictl() {
  goinstall "$1" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
}

build_cni() {
  for p in ipam/host-local main/loopback main/bridge main/ptp meta/portmap; do
    goinstall "$1" "github.com/containernetworking/plugins/plugins/$p@$CNI_PLUGINS_VERSION" -ldflags "-s -w"
  done
}

build_coredns() {
  goinstall "$1" "github.com/coredns/coredns@$COREDNS_VERSION" -ldflags "-s -w"
}

# --- The Debian root that boots systemd as PID 1, unless the caller brings one.
build_base() {
  minbase "$1" "$BASE_PACKAGES"
}

# --- Rootfs: the debootstrap'ed systemd rootfs plus kind's packages, then kind's base image steps.
build_rootfs() {
  local out=$1 r="$1/rootfs" kind
  cp -a "$BASE_ROOTFS" "$r"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mount -t proc proc "$r/proc"
  trap 'umount "$r/proc" 2>/dev/null || true' RETURN
  chroot "$r" /usr/bin/env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $PACKAGES && apt-get clean && rm -rf /var/lib/apt/lists/*"
  umount "$r/proc"
  kind=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  local f="$kind/images/base/files"
  install -m 0755 "$f"/usr/local/bin/* "$r/usr/local/bin/"
  mkdir -p "$r/kind/bin" "$r/LICENSES" "$r/etc/containerd" "$r/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$f/kind/README.txt" "$r/kind/"
  install -m 0755 "$f"/kind/bin/* "$r/kind/bin/"
  install -m 0644 "$f/etc/crictl.yaml" "$r/etc/"
  install -m 0644 "$f"/etc/containerd/* "$r/etc/containerd/"
  install -m 0644 "$f"/etc/default/* "$r/etc/default/"
  install -m 0644 "$f"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  install -m 0644 "$f"/etc/systemd/system/*.service "$f"/etc/systemd/system/*.slice "$r/etc/systemd/system/"
  install -m 0644 "$f"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
  # The Dockerfile's RUN steps.
  chroot "$r" /bin/sh -c '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service
    systemctl mask systemd-binfmt.service
    mkdir -p /etc/kubernetes/manifests'
  rm -f "$r/etc/resolv.conf"
}

# --- One-binary images, saved as docker archives for the node's containerd to import.
# image_from OUT NAME:TAG BINARY ENTRYPOINT-JSON: a layer with BINARY as /usr/local/bin/<name>.
image_from() {
  local out=$1 ref=$2 bin=$3 entry=$4 ctx
  ctx=$(mktemp -d "$out/ctx.XXXX")
  mkdir -p "$ctx/usr/local/bin" "$ctx/etc" "$ctx/tmp" "$ctx/var/run"
  chmod 1777 "$ctx/tmp"
  cp "$bin" "$ctx/usr/local/bin/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$ctx/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$ctx/etc/group"
  [ -d /etc/ssl/certs ] && mkdir -p "$ctx/etc/ssl" && cp -rL /etc/ssl/certs "$ctx/etc/ssl/"
  tar -C "$ctx" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change "ENTRYPOINT $entry" - "$ref" >/dev/null
  rm -rf "$ctx"
}

build_images() {
  local out=$1 k="$KUBE_OUT" c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    image_from "$out" "registry.k8s.io/$c:v$KUBE_VERSION" "$k/$c" "[\"/usr/local/bin/$c\"]"
  done
  image_from "$out" "$ETCD_IMAGE" "$k/etcd" '["/usr/local/bin/etcd"]'
  image_from "$out" "$COREDNS_IMAGE" "$COREDNS_OUT/coredns" '["/usr/local/bin/coredns"]'
  image_from "$out" "$PAUSE_IMAGE" "$k/pause" '["/usr/local/bin/pause"]'
  docker tag "$PAUSE_IMAGE" "$SANDBOX_IMAGE"
  # kube-proxy runs iptables/nft/conntrack: it gets the node rootfs as its base.
  tar -C "$ROOTFS_OUT/rootfs" -c . | docker import --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' - "meshconform.local/kube-proxy-base:tmp" >/dev/null
  c=$(docker create meshconform.local/kube-proxy-base:tmp)
  docker cp "$k/kube-proxy" "$c:/usr/local/bin/kube-proxy"
  docker commit "$c" "registry.k8s.io/kube-proxy:v$KUBE_VERSION" >/dev/null
  docker rm "$c" >/dev/null
  docker rmi meshconform.local/kube-proxy-base:tmp >/dev/null
  local refs=("registry.k8s.io/kube-apiserver:v$KUBE_VERSION" "registry.k8s.io/kube-controller-manager:v$KUBE_VERSION"
    "registry.k8s.io/kube-scheduler:v$KUBE_VERSION" "registry.k8s.io/kube-proxy:v$KUBE_VERSION"
    "$ETCD_IMAGE" "$COREDNS_IMAGE" "$PAUSE_IMAGE" "$SANDBOX_IMAGE")
  for c in "${refs[@]}"; do
    docker save "$c" >"$out/$(echo "$c" | tr '/:' '__').tar"
  done
  docker rmi "${refs[@]}" >/dev/null # the archives are what the node step uses
}

# --- The node image: rootfs + binaries + kind's metadata, images imported into its containerd.
CNI_CONFLIST='{
  "cniVersion": "1.0.0",
  "name": "meshconform-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}'

build_node() {
  local out=$1 ctx="$1/ctx"
  mkdir -p "$ctx"
  cp -a "$ROOTFS_OUT/rootfs/." "$ctx/"
  local k="$KUBE_OUT"
  install -m 0755 "$k/kubeadm" "$k/kubelet" "$k/kubectl" "$ctx/usr/bin/"
  install -m 0755 "$CONTAINERD_OUT"/* "$CRICTL_OUT/crictl" "$ctx/usr/local/bin/"
  install -m 0755 "$RUNC_OUT/runc" "$ctx/usr/local/sbin/runc"
  mkdir -p "$ctx/opt/cni/bin" "$ctx/etc/cni/net.d" "$ctx/kind/manifests"
  install -m 0755 "$CNI_OUT"/* "$ctx/opt/cni/bin/"
  printf '%s\n' "$CNI_CONFLIST" >"$ctx/etc/cni/net.d/10-meshconform-bridge.conflist"
  printf 'v%s' "$KUBE_VERSION" >"$ctx/kind/version"
  # kind's base image: cri-base.json from `ctr oci spec` with the product-files hook, no rlimits.
  chroot "$ctx" /usr/local/bin/ctr oci spec |
    chroot "$ctx" jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    chroot "$ctx" jq 'del(.process.rlimits)' >"$ctx/etc/containerd/cri-base.json"
  sed -i "s#sandbox_image = .*#sandbox_image = \"$PAUSE_IMAGE\"#" "$ctx/etc/containerd/config.toml"
  # Pods must not ask for a lower oom_score_adj than containerd's own: lowering it needs
  # CAP_SYS_RESOURCE, which hosts whose bounding set lacks it (see scripts/runc-shim) cannot give the
  # node, and runc init then fails with "failed to update /proc/self/oom_score_adj: Permission denied".
  sed -i 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' "$ctx/etc/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$ctx/etc/containerd/config.toml"
  tar -C "$ctx" -c . | docker import --change 'ENV container=docker' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$NODE_IMAGE-unloaded" >/dev/null
  rm -rf "$ctx"
  # As kind's nodeimage builder does: containerd in a build container imports the archives.
  id=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined \
    -v "$IMAGES_OUT:/kind/images-in:ro" "$NODE_IMAGE-unloaded" infinity)
  trap 'docker rm -f -v "${id:-}" >/dev/null 2>&1 || true' EXIT # this step runs in its own subshell
  docker exec "$id" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &
    for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && break; sleep 1; done
    ctr info >/dev/null
    for t in /kind/images-in/*.tar; do
      ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - <"$t"
    done
    ctr --namespace=k8s.io images list -q
    pkill containerd; for i in $(seq 1 30); do pgrep containerd >/dev/null || break; sleep 1; done
    rm -f /var/log/containerd-build.log'
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$id" "$NODE_IMAGE" >/dev/null
  docker rm -f -v "$id" >/dev/null
  docker rmi "$NODE_IMAGE-unloaded" >/dev/null
  echo "$NODE_IMAGE" >"$out/image"
}

t0=$(now)
step containerd "$CONTAINERD_VERSION-$RECIPE" build_containerd; CONTAINERD_OUT=$OUT
step runc "$RUNC_VERSION-$RECIPE" build_runc; RUNC_OUT=$OUT
step crictl "$CRICTL_VERSION-$RECIPE" build_crictl; CRICTL_OUT=$OUT
step cni "$CNI_PLUGINS_VERSION-$RECIPE" build_cni; CNI_OUT=$OUT
if [ -n "${MESHCONFORM_NODE_ROOTFS:-}" ]; then
  BASE_ROOTFS=$MESHCONFORM_NODE_ROOTFS
  [ -x "$BASE_ROOTFS/lib/systemd/systemd" ] || die "MESHCONFORM_NODE_ROOTFS=$BASE_ROOTFS holds no systemd (lib/systemd/systemd)"
  BASE_KEY=$(basename "$BASE_ROOTFS")
else
  BASE_KEY="$SUITE-$(echo "$BASE_PACKAGES" | md5sum | cut -c1-8)-$RECIPE"
  step base "$BASE_KEY" build_base
  BASE_ROOTFS=$OUT/rootfs
fi
rootfs_key="$BASE_KEY-kind-$KIND_VERSION-$(echo "$PACKAGES" | md5sum | cut -c1-8)-$RECIPE"
step rootfs "$rootfs_key" build_rootfs; ROOTFS_OUT=$OUT
step kube "k8s-v$KUBE_VERSION-$RECIPE" build_kube; KUBE_OUT=$OUT
# Image names from kubeadm itself.
mapfile -t WANT < <("$KUBE_OUT/kubeadm" config images list --kubernetes-version "v$KUBE_VERSION")
for ref in "${WANT[@]}"; do
  case "$ref" in
    */etcd:*) ETCD_IMAGE=$ref ;;
    */coredns:*) COREDNS_IMAGE=$ref ;;
    */pause:*) PAUSE_IMAGE=$ref ;;
  esac
done
COREDNS_VERSION=${COREDNS_IMAGE##*:}
SANDBOX_IMAGE=registry.k8s.io/pause:3.10 # kind's containerd config names this one; the image names both
step coredns "$COREDNS_VERSION-$RECIPE" build_coredns; COREDNS_OUT=$OUT
step images "k8s-v$KUBE_VERSION-etcd-${ETCD_IMAGE##*:}-coredns-$COREDNS_VERSION-$(echo "$rootfs_key" | md5sum | cut -c1-8)-$RECIPE" build_images; IMAGES_OUT=$OUT
NODE_RECIPE=n2 # bump when build_node changes
# The tag is the bare version (the suite reads the node's Kubernetes version from a vX.Y.Z tag, as
# kind's images have); what the image was built from goes into the repository name.
node_key=$(printf '%s\n' "${KEYS[@]}" "$NODE_RECIPE" | md5sum | cut -c1-10)
NODE_IMAGE="meshconform.local/kind-node-$node_key:v$KUBE_VERSION"
if ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
  rm -f "$CACHE/artifacts/node/$node_key/.done" # the engine lost it: rebuild
fi
step node "$node_key" build_node
# Node images built from other keys are stale: drop those no container uses, and their records.
for old in $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^meshconform\.local/kind-node'); do
  [ "$old" = "$NODE_IMAGE" ] && continue
  old_key=${old%%:*}
  old_key=${old_key#meshconform.local/kind-node-}
  docker rmi "$old" >/dev/null 2>&1 && rm -rf "${CACHE:?}/artifacts/node/${old_key##*/}" && log "removed stale $old"
done
log "total $(took "$t0")"
echo "$NODE_IMAGE"
