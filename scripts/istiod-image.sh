#!/usr/bin/env bash
# Builds istiod and pilot-agent images from Istio's source for every branch internal/istiosrc pins,
# without pulling any image: pilot-discovery (and pilot-agent) is built from istio.io/istio@<pseudo-version> (in the
# branch's build module, internal/istiosrc/build/<branch>.mod and .sum, which substitutes the
# dependencies the Go module proxy refuses and hashes every module; modules from the proxy) and
# `docker import`ed as
# a one-binary image named as the charts expect, <ISTIO_HUB>/pilot:<version>, the version being the
# branch's chart version from internal/istiosrc (e.g. 1.31.0-dev.20260827124520), and pilot-agent
# likewise as <ISTIO_HUB>/pilot-agent:<version>: an image of its own name, not proxyv2 (it holds no
# Envoy), for pods that select it with sidecar.istio.io/proxyImage (the grpc-agent template,
# DISABLE_ENVOY=true; ISTIO_AGENT_IMAGE), so that sidecar-template pods still never start under
# DATAPLANE=0; and Istio's echo server and client (pkg/test/echo/cmd/{server,client}) as
# <ISTIO_HUB>/app:<version>, the name and layout of Istio's own echo image
# (pkg/test/echo/docker/Dockerfile.app: /usr/local/bin/{client,server}, USER 1338, ENTRYPOINT
# server), the proxyless data plane's samples (DATAPLANE_MODE=proxyless, ISTIO_ECHO_IMAGE). These
# are source builds of a release branch at a commit, not Istio releases. Prints one line per
# branch built on stdout, "<branch> <version> <istiod image> <agent image> <echo image>"; timings
# per step go to stderr. A branch that fails (e.g. the
# module proxy does not serve one of its dependencies) does not stop the others; the exit status is
# 1 then, naming it.
#
#   export "$(scripts/local-engine.sh start)"; scripts/istiod-image.sh
#
# Replicates Istio's own build at that commit:
#   - Makefile.core.mk: pilot-discovery is a STANDARD_BINARY, built with -tags=vtprotobuf,disable_pgv
#     and RELEASE_LDFLAGS '-extldflags -static -s -w'; common/scripts/gobuild.sh: CGO_ENABLED=0,
#     -trimpath, and -X for every line of common/scripts/report_build_info.sh
#     (istio.io/istio/pkg/version.buildVersion, buildGitRevision, buildStatus, buildTag, buildHub,
#     buildOS, buildArch): buildVersion is the branch's version, so istiod reports it, and
#     buildGitRevision the commit of the pseudo-version.
#   - pilot/docker/Dockerfile.pilot: COPY pilot-discovery /usr/local/bin/pilot-discovery,
#     USER 1337:1337, ENTRYPOINT ["/usr/local/bin/pilot-discovery"] on Istio's base/distroless
#     image; here the base is a minimal layer (passwd/group with 1337 istio-proxy, CA certificates,
#     /tmp), as the chart's istiod Deployment (templates/deployment.yaml) passes args "discovery ..."
#     and mounts everything else it reads (/var/run/secrets/..., /etc/cacerts, /etc/istio/config).
#
#   - echo: Makefile.core.mk lists ./pkg/test/echo/cmd/client and ./pkg/test/echo/cmd/server among
#     STANDARD_BINARIES (STANDARD_TAGS, like pilot-discovery, so the two share most compiled
#     packages); both are built by one go build.
#
# Every binary is cached under CACHE/artifacts/{pilot,agent,echo}/<pseudo-version>-<hub hash>-<RECIPE>; an
# image missing from the engine (or of another build) is re-imported from it.
#
# Environment:
#   ISTIO_HUB                   image repository prefix (default meshconform.local/istio)
#   MESHCONFORM_ISTIOD_CACHE    cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/istiod-image)
#   MESHCONFORM_ISTIOD_BRANCHES "<name> <pseudo> <version>" lines to build instead of
#                               internal/istiosrc's (tests)
#   DOCKER_HOST                 the engine that receives the images (required)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
XC="${XDG_CACHE_HOME:-$HOME/.cache}/meshconform"
CACHE="${MESHCONFORM_ISTIOD_CACHE:-$XC/istiod-image}"
PROG=istiod-image
STEP_CONTINUE=1 # a branch that fails must not stop the other
# shellcheck source=lib/cached-step.sh
. "$(dirname "$0")/lib/cached-step.sh"

HUB="${ISTIO_HUB:-meshconform.local/istio}"
TAGS=vtprotobuf,disable_pgv                          # Makefile.core.mk STANDARD_TAGS
AGENT_TAGS=agent,disable_pgv,grpcnotrace,retrynotrace # Makefile.core.mk AGENT_TAGS
RECIPE=r2 # bump when the build or the image's layout changes (r2: the committed build module)


[ -n "${DOCKER_HOST:-}" ] || die 'DOCKER_HOST is not set: export "$(scripts/local-engine.sh start)" first'
command -v go >/dev/null || die "go is not on PATH"
docker version --format '{{.Server.Version}}' >/dev/null || die "no engine answers at $DOCKER_HOST"


# build_binary OUT NAME PKG TAGS: NAME, built from PKG of istio.io/istio@$PSEUDO with TAGS and
# stamped with $VERSION, in the branch's build module (internal/istiosrc/build/<branch>.mod and
# .sum): -mod=readonly, so every module is checked against the committed go.sum and the build
# cannot change what it builds with.
build_binary() {
  local out=$1 bin=$2 pkg=$3 tags=$4 src="$CACHE/build/$NAME@$PSEUDO"
  rm -rf "$src"
  (cd "$ROOT" && go run ./internal/istiosrc/cmd/branches -module "$NAME" -dir "$src") ||
    die "$NAME: no build module (internal/istiosrc/build/$NAME.mod)"
  local v=istio.io/istio/pkg/version commit=${PSEUDO##*-}
  local ldflags="-extldflags -static -s -w -X $v.buildVersion=$VERSION -X $v.buildGitRevision=$commit"
  ldflags+=" -X $v.buildStatus=Clean -X $v.buildTag=$VERSION -X $v.buildHub=$HUB -X $v.buildOS=linux -X $v.buildArch=$(go env GOARCH)"
  (
    cd "$src"
    export GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 GOOS=linux
    "${LOWPRI[@]}" go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$bin" "$pkg"
  )
  "$out/$bin" version --short >"$out/version" # "client version: <buildVersion>"
  [ "$(sed 's/^client version: //' "$out/version")" = "$VERSION" ] || die "$bin reports $(cat "$out/version"), not $VERSION"
}

build_pilot() { build_binary "$1" pilot-discovery istio.io/istio/pilot/cmd/pilot-discovery "$TAGS"; }
build_agent() { build_binary "$1" pilot-agent istio.io/istio/pilot/cmd/pilot-agent "$AGENT_TAGS"; }

# build_echo OUT: echo's server and client in one go build (same module, tags and ldflags as
# pilot-discovery). Neither has a version command, so each is checked by what it was built
# from: `go version -m` must name istio.io/istio at $PSEUDO as the main package's module.
build_echo() {
  local out=$1 src="$CACHE/build/$NAME@$PSEUDO" b
  rm -rf "$src"
  (cd "$ROOT" && go run ./internal/istiosrc/cmd/branches -module "$NAME" -dir "$src") ||
    die "$NAME: no build module (internal/istiosrc/build/$NAME.mod)"
  (
    cd "$src"
    export GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 GOOS=linux
    "${LOWPRI[@]}" go build -trimpath -tags "$TAGS" -ldflags "-extldflags -static -s -w" -o "$out/" \
      istio.io/istio/pkg/test/echo/cmd/server istio.io/istio/pkg/test/echo/cmd/client
  )
  local info
  for b in server client; do
    info=$(go version -m "$out/$b")
    grep -qE "^[[:space:]]+mod[[:space:]]+istio.io/istio[[:space:]]+$PSEUDO([[:space:]]|\$)" <<<"$info" ||
      die "$b is not built from istio.io/istio@$PSEUDO: $(grep istio.io/istio <<<"$info")"
  done
}

# import_image BIN REF USER [MORE...]: BIN (and MORE binaries beside it) on a minimal layer
# (passwd/group with 1337 istio-proxy, CA certificates, /tmp; with USER 1338 also Dockerfile.app's
# user "application"), as its Dockerfile lays it out: /usr/local/bin/<name>, BIN the entrypoint,
# run as USER ("" for none).
import_image() {
  local bin=$1 ref=$2 user=$3 ctx
  shift 3
  ctx=$(mktemp -d "$CACHE/ctx.XXXX")
  mkdir -p "$ctx/usr/local/bin" "$ctx/etc" "$ctx/tmp" "$ctx/var/run" "$ctx/home/istio-proxy"
  chmod 1777 "$ctx/tmp"
  cp "$bin" "$@" "$ctx/usr/local/bin/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nistio-proxy:x:1337:1337:istio-proxy:/home/istio-proxy:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$ctx/etc/passwd"
  printf 'root:x:0:\nistio-proxy:x:1337:\nnobody:x:65534:\n' >"$ctx/etc/group"
  if [ "$user" = 1338 ]; then
    mkdir -p "$ctx/home/application"
    echo 'application:x:1338:1338:application:/home/application:/sbin/nologin' >>"$ctx/etc/passwd"
    echo 'application:x:1338:' >>"$ctx/etc/group"
  fi
  [ -d /etc/ssl/certs ] && mkdir -p "$ctx/etc/ssl" && cp -rL /etc/ssl/certs "$ctx/etc/ssl/"
  local changes=(--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin')
  [ -z "$user" ] || changes+=(--change "USER $user")
  tar -C "$ctx" --owner=0 --group=0 -c . | docker import "${changes[@]}" \
    --change "ENTRYPOINT [\"/usr/local/bin/$(basename "$bin")\"]" \
    --change "LABEL io.meshconform.source=istio.io/istio@$PSEUDO io.meshconform.recipe=$RECIPE" - "$ref" >/dev/null
  rm -rf "$ctx"
}

# image BIN REF USER: imports BIN as REF unless the engine has REF of this build (source and
# recipe); an image of another build under this name is replaced.
image() {
  local have t
  have=$(docker image inspect -f '{{index .Config.Labels "io.meshconform.source"}} {{index .Config.Labels "io.meshconform.recipe"}}' "$2" 2>/dev/null || true)
  if [ "$have" != "istio.io/istio@$PSEUDO $RECIPE" ]; then
    t=$(now)
    import_image "$@"
    log "$2: imported in $(took "$t")"
  else
    log "$2: present"
  fi
}

if [ -n "${MESHCONFORM_ISTIOD_BRANCHES:-}" ]; then
  branches=$MESHCONFORM_ISTIOD_BRANCHES
else
  branches=$(cd "$ROOT" && go run ./internal/istiosrc/cmd/branches) || die "cannot list the pinned branches"
fi
t0=$(now)
failed=()
while read -r NAME PSEUDO VERSION; do
  [ -n "$NAME" ] || continue
  [[ "$PSEUDO" =~ ^v0\.0\.0-[0-9]{14}-[0-9a-f]{12}$ ]] || die "$NAME: $PSEUDO is not a pseudo-version"
  # The key names the source, and hashes the hub stamped into the binary (buildHub) with the
  # build module (a changed substitute or go.sum rebuilds), beside the recipe.
  sum=$(cat <(printf %s "$HUB") "$ROOT/internal/istiosrc/build/$NAME".{mod,sum} 2>/dev/null | md5sum | cut -c1-8)
  step pilot "$PSEUDO-$sum-$RECIPE" build_pilot
  pilot=$OUT
  [ -n "$FAILED" ] || step agent "$PSEUDO-$sum-$RECIPE" build_agent
  agent=$OUT
  [ -n "$FAILED" ] || step echo "$PSEUDO-$sum-$RECIPE" build_echo
  if [ -n "$FAILED" ]; then
    failed+=("$NAME ($PSEUDO)")
    continue
  fi
  echo=$OUT
  ref="$HUB/pilot:$VERSION" agent_ref="$HUB/pilot-agent:$VERSION" echo_ref="$HUB/app:$VERSION"
  image "$pilot/pilot-discovery" "$ref" 1337:1337
  image "$agent/pilot-agent" "$agent_ref" ""
  image "$echo/server" "$echo_ref" 1338 "$echo/client" # Dockerfile.app: USER 1338
  echo "$NAME $VERSION $ref $agent_ref $echo_ref"
done <<<"$branches"
log "total $(took "$t0")"
[ ${#failed[@]} -eq 0 ] || die "not built: ${failed[*]}"
