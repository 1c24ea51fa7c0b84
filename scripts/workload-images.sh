#!/usr/bin/env bash
# Builds, without pulling any image, the images of the sample workloads that need no Istio image
# (the curl clients, go-httpbin, nginx), under the exact names manifests/workloads uses, into the
# engine at DOCKER_HOST. The preload (framework/cluster) then finds them on the host and loads them
# into kind without pulling ("present on the host, not pulled"). Prints the image names on stdout;
# timings per step go to stderr.
#
#   export "$(scripts/local-engine.sh start)"; scripts/workload-images.sh
#
# Built:
#   docker.io/curlimages/curl:<tag>        Debian bookworm's curl (7.88.1: has -w '%{json}', which
#                                          needs 7.70; >= 7.83 and not 8.14.x, see DESIGN.md) in a
#                                          debootstrap --variant=minbase root with ca-certificates.
#                                          The samples run it as `command: ["/bin/sleep", "infinity"]`
#                                          and exec `curl` from PATH (framework/probe), as the sidecar
#                                          -less plain-client does. Upstream curlimages/curl runs as
#                                          user curl_user with ENTRYPOINT ["/entrypoint.sh"] and
#                                          CMD ["curl"] (as derived images show, e.g. p3lim/cloudflare-
#                                          ddns's Dockerfile switching back to USER curl_user); the uid
#                                          100 / gid 101 here are what that image is known to use, not
#                                          verified offline.
#   docker.io/mccutchen/go-httpbin:<tag>   github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin at the
#                                          manifests' tag, CGO_ENABLED=0, as /bin/go-httpbin with
#                                          CMD ["/bin/go-httpbin"] and port 8080 (upstream Dockerfile:
#                                          "COPY ... dist/go-httpbin* /bin/", "EXPOSE 8080",
#                                          CMD ["/bin/go-httpbin"]); the samples set PORT=8081 where
#                                          they want another port, which go-httpbin reads itself.
#   docker.io/library/nginx:<tag>          Debian bookworm's nginx-light (1.22, not the tag's 1.27: the
#                                          samples only need a server on port 80) with the official
#                                          image's CMD ["nginx", "-g", "daemon off;"] (not its STOPSIGNAL
#                                          SIGQUIT: docker import refuses it; SIGTERM is nginx's fast
#                                          shutdown) and logs on stdout/stderr; the default site listens
#                                          on IPv4 only (a pod without IPv6 cannot bind [::]:80).
# Not built: docker.io/library/mysql (Debian ships MariaDB, not MySQL 8.4: an image under mysql's
# name would test another server; the mysql samples are "slow" and opt-in), and Istio's proxyv2 and
# pilot (Envoy is not buildable here); samples needing those still need a registry or `docker load`.
#
# Every artifact is cached under CACHE/artifacts/NAME/KEY, KEY naming its source version and RECIPE;
# an image already in the engine with this script's key label is kept. An image under one of these
# names that this script did not build (e.g. the real one, pulled or loaded) is left alone.
#
# Environment:
#   MESHCONFORM_WORKLOAD_CACHE  cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/workload-images)
#   DEBIAN_MIRROR               debootstrap's mirror (default http://deb.debian.org/debian)
#   DOCKER_HOST                 the engine that receives the images (required)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
XC="${XDG_CACHE_HOME:-$HOME/.cache}/meshconform"
CACHE="${MESHCONFORM_WORKLOAD_CACHE:-$XC/workload-images}"
PROG=workload-images
# shellcheck source=lib/cached-step.sh
. "$(dirname "$0")/lib/cached-step.sh"

SUITE=bookworm
RECIPE=w1 # bump when a step's way of building changes
LABEL=io.meshconform.workload-image


[ -n "${DOCKER_HOST:-}" ] || die 'DOCKER_HOST is not set: export "$(scripts/local-engine.sh start)" first'
docker version --format '{{.Server.Version}}' >/dev/null || die "no engine answers at $DOCKER_HOST"

# The names the manifests use (one tag each, or the samples disagree and we cannot pick).
ref_of() {
  local refs
  refs=$(grep -ho "image: *[^ ]*$1:[^ ]*" "$ROOT"/manifests/workloads/*.yaml | sed 's/image: *//' | sort -u)
  [ -n "$refs" ] || die "no manifest in manifests/workloads uses $1"
  [ "$(printf '%s\n' "$refs" | wc -l)" = 1 ] || die "manifests/workloads use several $1 tags: $(echo $refs)"
  echo "$refs"
}
CURL_IMAGE=$(ref_of docker.io/curlimages/curl)
HTTPBIN_IMAGE=$(ref_of docker.io/mccutchen/go-httpbin)
NGINX_IMAGE=$(ref_of docker.io/library/nginx)
HTTPBIN_VERSION=${HTTPBIN_IMAGE##*:}


build_curl_rootfs() {
  local r=$1/rootfs v
  minbase "$1" curl,ca-certificates
  v=$(chroot "$r" curl --version | sed -n '1s/^curl \([0-9.]*\).*/\1/p')
  # DESIGN.md: the probes parse -w '%{json}' (7.70+), need >= 7.83, and 8.14.x misreports it.
  printf '%s\n7.83.0\n' "$v" | sort -V -C -r || { echo "curl $v is older than 7.83" >&2; exit 1; }
  case "$v" in 8.14.*) echo "curl $v: 8.14.x is excluded (DESIGN.md)" >&2; exit 1 ;; esac
  chroot "$r" curl -sS -o /dev/null -w '%{json}' file:///etc/hostname | grep -q '"http_code"' ||
    { echo "curl $v does not honour -w '%{json}'" >&2; exit 1; }
  # curlimages/curl: user curl_user, ENTRYPOINT /entrypoint.sh (curl for arguments that are options).
  echo 'curl_user:x:100:101:curl_user:/home/curl_user:/bin/sh' >>"$r/etc/passwd"
  echo 'curl_group:x:101:' >>"$r/etc/group"
  mkdir -p "$r/home/curl_user" && chown 100:101 "$r/home/curl_user"
  printf '#!/bin/sh\nset -e\ncase "$1" in -*) set -- curl "$@" ;; esac\nexec "$@"\n' >"$r/entrypoint.sh"
  chmod 0755 "$r/entrypoint.sh"
  echo "$v" >"$1/curl-version"
}

build_nginx_rootfs() {
  local r=$1/rootfs
  minbase "$1" nginx-light
  sed -i '/listen \[::\]:80 default_server;/d' "$r/etc/nginx/sites-available/default"
  chroot "$r" nginx -t
  ln -sf /dev/stdout "$r/var/log/nginx/access.log"
  ln -sf /dev/stderr "$r/var/log/nginx/error.log"
}

build_httpbin() {
  GOBIN="$1" CGO_ENABLED=0 "${LOWPRI[@]}" go install -trimpath -ldflags "-s -w" \
    "github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin@$HTTPBIN_VERSION"
  # Static: the image has nothing else.
  ! ldd "$1/go-httpbin" >/dev/null 2>&1
}

# image REF KEY DIR CHANGES...: docker import DIR as REF labelled KEY, unless the engine holds REF
# with that label already; an image under REF that this script did not build is kept.
image() {
  local ref=$1 key=$2 dir=$3 have t
  shift 3
  have=$(docker image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$ref" 2>/dev/null) || have=missing
  case "$have" in
    "$key")
      log "image $ref: in the engine ($key)"
      return ;;
    "" | "<no value>")
      log "image $ref: in the engine and not built here (pulled or loaded): kept; docker rmi it to build it"
      return ;;
  esac
  t=$(now)
  local args=(--change "LABEL $LABEL=$key")
  for c in "$@"; do args+=(--change "$c"); done
  tar -C "$dir" --numeric-owner -c . | docker import "${args[@]}" - "$ref" >/dev/null
  log "image $ref: imported in $(took "$t")"
}

t0=$(now)
step curl-rootfs "$SUITE-minbase-curl-$RECIPE" build_curl_rootfs; CURL_OUT=$OUT
step nginx-rootfs "$SUITE-minbase-nginx-light-$RECIPE" build_nginx_rootfs; NGINX_OUT=$OUT
step httpbin "go-httpbin-$HTTPBIN_VERSION-$RECIPE" build_httpbin; HTTPBIN_OUT=$OUT

hb=$(mktemp -d)
trap 'rm -rf "$hb"' EXIT
mkdir -p "$hb/bin" "$hb/etc" "$hb/tmp" && chmod 1777 "$hb/tmp"
cp "$HTTPBIN_OUT/go-httpbin" "$hb/bin/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$hb/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$hb/etc/group"

image "$CURL_IMAGE" "curl-$(cat "$CURL_OUT/curl-version")-$SUITE-$RECIPE" "$CURL_OUT/rootfs" \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'USER curl_user' \
  'ENTRYPOINT ["/entrypoint.sh"]' 'CMD ["curl"]'
image "$HTTPBIN_IMAGE" "go-httpbin-$HTTPBIN_VERSION-$RECIPE" "$hb" \
  'EXPOSE 8080' 'CMD ["/bin/go-httpbin"]'
image "$NGINX_IMAGE" "nginx-light-$SUITE-$RECIPE" "$NGINX_OUT/rootfs" \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'EXPOSE 80' \
  'CMD ["nginx", "-g", "daemon off;"]'
log "total $(took "$t0")"
printf '%s\n' "$CURL_IMAGE" "$HTTPBIN_IMAGE" "$NGINX_IMAGE"
