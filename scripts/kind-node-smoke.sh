#!/usr/bin/env bash
# Tries the offline node image from scripts/node-image.sh with kind: one control-plane node,
# disableDefaultCNI (the image carries a bridge conflist instead of kindnet), failCgroupV1: false
# where the host has cgroup v1. Reports how far it got: create, node Ready, CoreDNS Running.
# Leaves no cluster behind unless KEEP=1; on failure the node's logs go to CACHE/logs/kind-export.
#
#   export "$(scripts/local-engine.sh start)"; scripts/kind-node-smoke.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${MESHCONFORM_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/node-image}"
KIND_VERSION=v0.33.0
NAME="${CLUSTER_NAME:-meshconform-node}"
WAIT="${WAIT_SECONDS:-300}"

log() { printf 'kind-node-smoke: %s\n' "$*" >&2; }
die() { printf 'kind-node-smoke: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
[ -n "${DOCKER_HOST:-}" ] || die 'DOCKER_HOST is not set: export "$(scripts/local-engine.sh start)" first'

image=$("$ROOT/scripts/node-image.sh")
KIND="$CACHE/bin/kind-$KIND_VERSION/kind"
if [ ! -x "$KIND" ]; then
  t=$(now)
  GOBIN="$(dirname "$KIND")" CGO_ENABLED=0 nice -n 19 ionice -c3 go install "sigs.k8s.io/kind@$KIND_VERSION"
  log "kind $KIND_VERSION built in $(took "$t")"
fi

cfg="$CACHE/kind-config.yaml"
{
  cat <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: true
nodes:
- role: control-plane
  image: $image
YAML
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    cat <<'YAML'
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  apiVersion: kubelet.config.k8s.io/v1beta1
  failCgroupV1: false
YAML
  fi
} >"$cfg"

cleanup() {
  [ "${KEEP:-}" = 1 ] && return
  "$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$KIND" delete cluster --name "$NAME" >/dev/null 2>&1 || true

t=$(now)
if ! nice -n 19 "$KIND" create cluster --name "$NAME" --config "$cfg" --retain --wait 0s -v 1 2>&1 | tee "$CACHE/logs/kind-create.log" >&2 ||
  ! grep -q 'Set kubectl context' "$CACHE/logs/kind-create.log"; then
  log "kind create failed after $(took "$t")"
  rm -rf "$CACHE/logs/kind-export"
  "$KIND" export logs --name "$NAME" "$CACHE/logs/kind-export" >/dev/null 2>&1 || true
  exit 1
fi
log "kind create succeeded in $(took "$t")"

node="$NAME-control-plane"
kc() { docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
deadline=$(($(date +%s) + WAIT))
ready=no dns=no
while [ "$(date +%s)" -lt "$deadline" ]; do
  [ "$(kc get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && ready=yes
  if [ "$ready" = yes ] && kc -n kube-system wait --for=condition=Ready pod -l k8s-app=kube-dns --timeout=5s >/dev/null 2>&1; then
    dns=yes
    break
  fi
  sleep 5
done
log "after $(took "$t"): node Ready=$ready, CoreDNS Ready=$dns"
kc get nodes -o wide >&2 || true
kc get pods -A -o wide >&2 || true
if [ "$dns" != yes ]; then
  rm -rf "$CACHE/logs/kind-export"
  "$KIND" export logs --name "$NAME" "$CACHE/logs/kind-export" >/dev/null 2>&1 || true
  exit 1
fi
