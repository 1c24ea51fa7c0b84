#!/usr/bin/env bash
# The live tier (`make live`; .ci/run runs it after `make test`): a real kind cluster and a real
# run of the suites through the product's own code (settings, preflight, cluster, preload,
# workloads, probes over the kubelet's exec, diagnostics, reports), on a machine that may have
# no Docker engine and no registry access. Each phase prints its time; the run's reports are
# checked with `meshconform report check`, so a run that judged nothing cannot pass.
#
#   scripts/live.sh            every phase, then the cluster deleted and the engine stopped
#
# Phases:
#   engine     scripts/local-engine.sh start, only when no engine answers (stopped at the end,
#              by its pid); an engine that answers is used and left alone
#   images     scripts/node-image.sh (kind node image for Kubernetes KUBE_VERSION),
#              scripts/workload-images.sh (curl, go-httpbin, nginx) and scripts/istiod-image.sh
#              (istiod of every pinned branch, release-1.30 and release-1.31), all cached outside
#              the tree; every branch's charts packaged into one chart directory for upgrades
#   run        `go run ./scripts/e2e run` with ISTIO_INSTALL=none on a new kind cluster (kept for
#              the next phase), then `report check`: the baseline passed in real pods, every
#              behaviour left out on purpose, nothing failed
#   reuse      the same cluster again with REUSE_CLUSTER=1 LABELS=baseline: no cluster created,
#              the baseline alone judged; the cluster is left as found
#   broken     the same cluster with CoreDNS scaled to zero: the baseline fails (names do not
#              resolve), the run exits non-zero, the report blames the cluster, the baseline's
#              diagnostics are dumped (a broken cluster is not reported as a broken mesh); CoreDNS
#              is scaled back after
#   existing   the same cluster as an existing one (KUBE_CONTEXT, ISTIO_INSTALL=yes): istiod from
#              source installed, CERT-003 and CP-002 pass, and at the end the run uninstalls it,
#              leaving the cluster's namespaces, CRDs, webhooks and cluster RBAC as they were
#   ambient    istiod from the same source in Istio's ambient profile, with the Gateway API's CRDs
#              (v1.6.0, standard channel), through the product's Helm path (mesh.Install, Ambient
#              and NoNodeAgents: no istio-cni and no ztunnel, whose images cannot be built here) on
#              the run phase's cluster (a new one when run did not keep one); scripts/ambientcp
#              makes a waypoint, a Service bound to it and three AuthorizationPolicies with the
#              product's builders and judges what istiod did: GatewayClasses istio and
#              istio-waypoint, the waypoint's ServiceAccount/Deployment/Service (labels, image),
#              the Gateway's Accepted, the Service's istio.io/WaypointBound, the policies'
#              ZtunnelAccepted and WaypointAccepted; then the same with the Service left unbound:
#              exactly the two waypoint-binding checks must fail; then everything is uninstalled
#              and the cluster's namespaces, CRDs, webhooks and cluster RBAC are as before
#   istio      on the run phase's cluster (REUSE_CLUSTER=1, ALLOW_DISRUPTIVE=1; a new cluster when
#              run did not keep one, e.g. LIVE_PHASES=istio), istiod built from Istio's release-1.31 source (scripts/istiod-image.sh) installed by
#              the product's Helm path from the same module's charts (ISTIO_CHART_DIR, ISTIO_HUB),
#              without gateway and data plane (no proxy image can be built here: ISTIO_GATEWAY=0,
#              DATAPLANE=0): the control-plane, certificate, validation and posture specs and
#              PROBE-001's injected-spec half must pass live, every spec that needs a running
#              proxy must be left out; then the same mesh broken on purpose (istiod's
#              ClusterRoleBindings and validating webhooks deleted, a mesh-wide STRICT policy
#              applied before the posture audit, the injector's probe rewrite turned off): CP-002,
#              VALID-001, POSTURE-001 and PROBE-001's injected spec must fail, each with its
#              evidence; then with istiod stopped and the injector's caBundle blanked, a run must
#              stop before any behaviour, naming the webhooks without a bundle; a cluster of its
#              own is deleted after
#   delete     make e2e-delete: no node container left
#   interrupt  a new run, SIGINT once the cluster is up: the driver deletes what it made
#              (KEEP_CLUSTER=on-failure) and exits non-zero
#   proxyless  DATAPLANE_MODE=proxyless on release-1.31's source build (istiod, pilot-agent and
#              Istio's echo server and client, scripts/istiod-image.sh): the catalog's proxyless
#              analogues pass and its predicted deviations (AUTHZ-001, JWT-002) fail as deviations;
#              then with an ALLOW of everything for echo-server in the root namespace, AUTHZ-002,
#              AUTHZ-004 and AUTHZ-005 fail while MTLS-002 passes; after the gates, on the run
#              phase's cluster (REUSE_CLUSTER=1: its Istio stays for the istio phase, which finds
#              the same source build; a cluster of its own, deleted after, with
#              LIVE_PHASES=proxyless).
#              MESHCONFORM_TIMEOUT=30s (15s broken): an analogue converged in ≤ 4.7s on a quiet
#              machine and ≤ 8.6s with helpers compiling beside it (load 10-13), and a deviation
#              or a broken spec is only concluded at the deadline (60s by default: 456s for the
#              phase, measured)
#   upgrade    the upgrade gate (make e2e-upgrade) from the release-1.30 build to the release-1.31
#              build, both from source, through the product's Helm path: Istio FROM on the run
#              phase's cluster (REUSE_CLUSTER=1; a new one when run did not keep one), the suites,
#              the in-place upgrade, the suites, TO as revision canary, a
#              client namespace moved to it and restarted, the suites against it; every phase must
#              pass the same specs as the istio phase, the upgrade suite's injected specs must show
#              FROM's and TO's proxies where they belong (the moved client injected by the canary),
#              and the gate's diff must exit 0; the gate then uninstalls every revision it
#              installed and the cluster's namespaces, CRDs, webhooks and cluster RBAC must be
#              as before (a cluster of its own, the gate deletes)
#   upgrade-broken  the gate again, in place only (PHASES=inplace), to a TO whose istiod chart
#              turns the injector's probe rewrite off (sidecarInjectorWebhook.rewriteAppHTTPProbe:
#              false, under TO's own version): the gate must exit 1 and name PROBE-001 as the
#              regression; the reused cluster again left as found
#   istio      (runs after the gates, on the same cluster; see above)
#
# Default order: run reuse broken existing ambient upgrade upgrade-broken proxyless istio delete interrupt (every
# phase that needs no cluster of its own on the run phase's: a new cluster and its image loads
# cost ~1 minute here; run and interrupt prove cluster creation, delete its removal).
#
# Environment:
#   LIVE_CLUSTER    kind cluster name (default meshconform-live)
#   LIVE_REPORTS    reports directory (default reports/live)
#   KUBE_VERSION    the node image's Kubernetes (default: scripts/node-image.sh's)
#   LIVE_PHASES     the phases after engine and images to run (default: all, in the order above;
#                   reuse, broken, existing and delete need run before them), e.g. LIVE_PHASES=istio
#   LIVE_ISTIO_BRANCH  the pinned branch the istio and existing phases install (default release-1.31)
#   BENCH_RUNS, BENCH_LABELS  the bench phase (make bench): runs, and their label filter
#   PROXYLESS_REPEAT  the proxyless phase: how many runs on one cluster (default 1)
#   PROXYLESS_TIMEOUT the proxyless runs' MESHCONFORM_TIMEOUT (default 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# As the Makefile builds (make live passes its GOFLAGS down): run directly, the same flags, so
# `go run` finds what make test compiled instead of compiling every dependency again.
export GOFLAGS="${GOFLAGS:--trimpath -ldflags=-w}"
PROG=live
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/live"
# shellcheck source=lib/cached-step.sh
. scripts/lib/cached-step.sh

CLUSTER="${LIVE_CLUSTER:-meshconform-live}"
REPORTS="${LIVE_REPORTS:-reports/live}"
case "$REPORTS" in /*) ;; *) REPORTS="$ROOT/$REPORTS" ;; esac

T0=$(now)
TIMES=()
PHASE= PHASE_T=
# phase NAME CMD...: runs CMD and records its time. CMD runs unchecked (no `||`), so that set -e
# holds inside it: its first failing command stops the script, and the EXIT trap records the
# phase as failed and cleans up.
phase() {
  PHASE=$1 PHASE_T=$(now)
  shift
  log "== $PHASE"
  "$@"
  TIMES+=("$(printf '%-10s %8s  ok' "$PHASE" "$(took "$PHASE_T")")")
  log "== $PHASE: $(took "$PHASE_T")"
  PHASE=
}

STARTED_ENGINE=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$PHASE" ]; then
    TIMES+=("$(printf '%-10s %8s  FAILED (exit %s)' "$PHASE" "$(took "$PHASE_T")" "$rc")")
  fi
  if [ -n "${DOCKER_HOST:-}" ] || docker version >/dev/null 2>&1; then
    if docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.Names}}' 2>/dev/null | grep -q .; then
      if [ "$rc" = 0 ]; then
        log "cleanup: deleting kind cluster $CLUSTER, kept for phases after the ones run (LIVE_PHASES=${phase_list:-})"
      else
        log "cleanup: deleting kind cluster $CLUSTER left by a failed phase"
      fi
      CLUSTER_NAME=$CLUSTER go run ./scripts/e2e delete >&2
    fi
  fi
  if [ -n "$STARTED_ENGINE" ]; then
    local t
    t=$(now)
    scripts/local-engine.sh stop >&2 || rc=1
    TIMES+=("$(printf '%-10s %8s' "engine-stop" "$(took "$t")")")
  fi
  log "phases:"
  printf '  %s\n' "${TIMES[@]}" >&2
  log "total $(took "$T0") (exit $rc)"
  exit $rc
}
trap cleanup EXIT

start_engine() {
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    log "an engine answers (${DOCKER_HOST:-the default socket}): using it, leaving it as found"
    return
  fi
  local line
  line=$(scripts/local-engine.sh start)
  [ -n "$line" ] || die "local-engine.sh start printed no DOCKER_HOST"
  export "${line?}"
  STARTED_ENGINE=1
}

ISTIO_BRANCH="${LIVE_ISTIO_BRANCH:-release-1.31}"
# Set by the run phase: the cluster it kept is this invocation's, for the phases after it
# (reuse, broken, existing, istio) until the delete phase removes it.
RUN_CLUSTER=
ISTIO_HUB_LOCAL=meshconform.local/istio

build_images() {
  NODE_IMAGE=$(scripts/node-image.sh)
  scripts/workload-images.sh >/dev/null
  local line
  local branches
  branches=$(go run ./internal/istiosrc/cmd/branches)
  ISTIO_HUB=$ISTIO_HUB_LOCAL scripts/istiod-image.sh >/dev/null
  ISTIO_SRC_VERSION=$(awk -v b="$ISTIO_BRANCH" '$1 == b {print $3}' <<<"$branches")
  [ -n "$ISTIO_SRC_VERSION" ] || die "no pinned branch $ISTIO_BRANCH (go run ./internal/istiosrc/cmd/branches lists them)"
  ISTIO_CHARTS=$(go run ./internal/istiosrc/cmd/branches -charts "$ISTIO_BRANCH")
  # pilot-agent of the same branch, under its own name (not proxyv2): the grpc-agent pods' image.
  ISTIO_AGENT_IMAGE_LOCAL="$ISTIO_HUB_LOCAL/pilot-agent:$ISTIO_SRC_VERSION"
  # Istio's echo server and client of the same branch: the proxyless phase's samples.
  ISTIO_ECHO_IMAGE_LOCAL="$ISTIO_HUB_LOCAL/app:$ISTIO_SRC_VERSION"
  # The gate goes from the oldest pinned branch to the newest.
  UPGRADE_FROM=$(head -1 <<<"$branches" | awk '{print $3}')
  UPGRADE_TO=$(tail -1 <<<"$branches" | awk '{print $3}')
  rm -rf "$CACHE/charts"
  UPGRADE_CHARTS=$(go run ./internal/istiosrc/cmd/branches -archives "$CACHE/charts")
  log "node image $NODE_IMAGE; istiod $ISTIO_HUB_LOCAL/pilot:{$UPGRADE_FROM,$UPGRADE_TO}; pilot-agent $ISTIO_HUB_LOCAL/pilot-agent:{$UPGRADE_FROM,$UPGRADE_TO}; charts $ISTIO_CHARTS, for upgrades $UPGRADE_CHARTS"
}

# e2e ENV...: one `make e2e` run of the driver with the offline cluster's settings; its output
# is kept to prove that nothing was pulled.
e2e() {
  local out rc=0
  out=$(mktemp "$CACHE/e2e.XXXX.log")
  env KIND_CONFIG=offline K8S_NODE_IMAGE="$NODE_IMAGE" CLUSTER_NAME="$CLUSTER" IMAGE_PULL=0 "$@" go run ./scripts/e2e run 2>&1 |
    tee "$out" || rc=$?
  no_pull "$out"
  return $rc
}

# no_pull LOG: the run asked no registry for anything (IMAGE_PULL=0; the tier sends nothing off
# the machine).
no_pull() {
  if grep -q "docker pull" "$1"; then
    die "the run tried to pull an image despite IMAGE_PULL=0: $(grep -m1 "docker pull" "$1")"
  fi
}

# check DIR WANT...: the conformance report under DIR holds exactly these states.
check() {
  local dir=$1
  shift
  go run ./cmd/meshconform report check "$dir/conformance/conformance.json" "$@"
}

cluster_nodes() { docker ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.Names}}'; }

# no_cluster: a phase that creates the cluster starts without one; a cluster of this name left
# by an interrupted earlier run (the engine's state outlives it) is this tier's own: deleted.
no_cluster() {
  [ -n "$(cluster_nodes)" ] || return 0
  log "kind cluster $CLUSTER is left from an earlier run: deleting it"
  CLUSTER_NAME=$CLUSTER go run ./scripts/e2e delete
  [ -z "$(cluster_nodes)" ] || die "kind cluster $CLUSTER could not be deleted"
}

run_fresh() {
  no_cluster
  rm -rf "$REPORTS/run"
  e2e ISTIO_INSTALL=none KEEP_CLUSTER=always REPORTS_DIR="$REPORTS/run"
  check "$REPORTS/run" baseline=passed '*=left-out'
  [ -n "$(cluster_nodes)" ] || die "KEEP_CLUSTER=always: the cluster is gone after the run"
  RUN_CLUSTER=1
  ls "$REPORTS/run/junit.xml" "$REPORTS/run/report.json" >/dev/null
}

run_reuse() {
  local before
  before=$(docker inspect -f '{{.Id}}' "$(cluster_nodes)")
  rm -rf "$REPORTS/reuse"
  e2e ISTIO_INSTALL=none REUSE_CLUSTER=1 LABELS=baseline REPORTS_DIR="$REPORTS/reuse" | tee "$CACHE/reuse.log"
  check "$REPORTS/reuse" baseline=passed '*=skip'
  [ "$(docker inspect -f '{{.Id}}' "$(cluster_nodes)")" = "$before" ] || die "REUSE_CLUSTER=1 replaced the node container"
  grep -q "was reused and is left as found" "$CACHE/reuse.log" || die "the reuse run did not say it left the cluster as found"
}

run_broken() {
  local node rc=0
  node=$(cluster_nodes)
  docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system scale deployment coredns --replicas=0
  rm -rf "$REPORTS/broken"
  e2e ISTIO_INSTALL=none REUSE_CLUSTER=1 LABELS=baseline MESHCONFORM_TIMEOUT=15s REPORTS_DIR="$REPORTS/broken" || rc=$?
  [ $rc != 0 ] || die "a run whose baseline failed exited 0"
  check "$REPORTS/broken" baseline=failed '*=skip'
  # Without CoreDNS the Service name does not resolve: curl exit 6, or 28 when the query to the
  # kube-dns Service (no endpoints) times out first.
  grep -Eq "Could not resolve host|Resolving timed out" "$REPORTS/broken/conformance/conformance.json" ||
    die "the failed baseline's evidence shows no failed name resolution"
  grep -q '"diagnostics": "diagnostics in diag/baseline' "$REPORTS/broken/conformance/conformance.json" ||
    die "the failed baseline names no diagnostics dump"
  [ -n "$(ls -A "$REPORTS/broken/diag/baseline")" ] || die "the baseline's diagnostics directory is empty"
  log "broken cluster: exit $rc, baseline failed on name resolution, diagnostics in $REPORTS/broken/diag/baseline"
  docker exec "$node" sh -c 'k="kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system"
    $k scale deployment coredns --replicas=1 && $k rollout status deployment coredns --timeout=180s'
}

# node_kubectl ARGS...: kubectl as the cluster's admin, inside the node.
node_kubectl() { docker exec -i "$(cluster_nodes)" kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }

# What an install could leave behind at cluster level, for before/after comparison.
cluster_objects() {
  node_kubectl get namespaces,customresourcedefinitions,mutatingwebhookconfigurations,validatingwebhookconfigurations,validatingadmissionpolicies,validatingadmissionpolicybindings,clusterroles,clusterrolebindings -o name | sort
}

# The same cluster as an existing one (KUBE_CONTEXT), the way a platform team runs the suite:
# ISTIO_INSTALL=yes installs the source-built istiod where there is none, the control-plane
# specs run, and Down uninstalls it: the cluster's namespaces, CRDs, webhooks and cluster RBAC
# are then exactly what they were before the run.
run_existing() {
  local before after
  # An existing cluster pulls from its registry; here istiod's image is put into the node's
  # containerd, as a registry would serve it (nothing is pulled: IMAGE_PULL=0 sets Never).
  docker save "$ISTIO_HUB_LOCAL/pilot:$ISTIO_SRC_VERSION" |
    docker exec -i "$(cluster_nodes)" ctr --namespace=k8s.io images import -
  before=$(cluster_objects)
  rm -rf "$REPORTS/existing"
  env KUBE_CONTEXT="kind-$CLUSTER" KUBECONFIG="$REPORTS/run/run/kubeconfig" ISTIO_INSTALL=yes \
    ISTIO_VERSION="$ISTIO_SRC_VERSION" ISTIO_CHART_DIR="$ISTIO_CHARTS" ISTIO_HUB=$ISTIO_HUB_LOCAL ISTIO_GATEWAY=0 \
    DATAPLANE=0 IMAGE_PULL=0 LABELS='CERT-003 || CP-002 || POSTURE-001' REPORTS_DIR="$REPORTS/existing" \
    go run ./scripts/e2e run 2>&1 | tee "$CACHE/existing.log"
  no_pull "$CACHE/existing.log"
  # POSTURE-001 hardens the whole mesh (disruptive): on a cluster the suite did not create it is
  # not applicable, and the report says so (left out, with the reason), before anything runs.
  check "$REPORTS/existing" baseline=passed CERT-003=pass CP-002=pass POSTURE-001=left-out '*=skip'
  grep -q 'changes the whole mesh: it runs only on a cluster the suite created, or with ALLOW_DISRUPTIVE=1' "$REPORTS/existing/conformance/conformance.json" ||
    die "POSTURE-001 on an existing cluster is not left out with the disruptive requirement's reason"
  grep -q "meshconform: uninstalled Istio $ISTIO_SRC_VERSION from context kind-$CLUSTER" "$CACHE/existing.log" ||
    die "the run on an existing cluster did not say it uninstalled the Istio it installed"
  after=$(cluster_objects)
  if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    die "the run on an existing cluster left it changed (above: < before, > after)"
  fi
  log "existing cluster: Istio installed, CERT-003 and CP-002 passed, POSTURE-001 left out (disruptive), uninstalled; $(echo "$after" | wc -l) cluster objects as before"
}

delete_cluster() {
  make --no-print-directory e2e-delete CLUSTER_NAME="$CLUSTER"
  [ -z "$(cluster_nodes)" ] || die "make e2e-delete left $(cluster_nodes)"
  RUN_CLUSTER=
}

# An interrupt once the cluster exists: the driver must delete it (on-failure keeps a cluster
# only after a failure, not after Ctrl-C) and exit non-zero. The driver is built first, so the
# signal reaches it and not `go run`.
run_interrupt() {
  local bin="$CACHE/e2e-driver" out="$CACHE/interrupt.log" pid rc=0
  no_cluster
  go build -o "$bin" ./scripts/e2e
  rm -rf "$REPORTS/interrupt"
  # Emptied here, before the driver starts: the redirection below truncates it only once the
  # forked child runs, and a previous run's "cluster done" line read before that sent SIGINT to a
  # child that, being an asynchronous command, ignores it (CI's stop 25: the run went on, exit 0).
  : >"$out"
  env KIND_CONFIG=offline K8S_NODE_IMAGE="$NODE_IMAGE" CLUSTER_NAME="$CLUSTER" ISTIO_INSTALL=none IMAGE_PULL=0 \
    REPORTS_DIR="$REPORTS/interrupt" "$bin" run >"$out" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 300))
  until grep -q "meshconform: cluster done in" "$out"; do
    kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "the driver ended before the cluster was up"; }
    [ $SECONDS -lt $deadline ] || { kill "$pid"; die "no cluster after 300s"; }
    sleep 0.5 # polling a log file for a line, not waiting on the cluster
  done
  kill -INT "$pid"
  wait "$pid" || rc=$?
  cat "$out" >&2
  no_pull "$out"
  [ $rc != 0 ] || die "the interrupted run exited 0"
  [ -z "$(cluster_nodes)" ] || die "the interrupted run left $(cluster_nodes)"
  grep -q "deleted kind cluster $CLUSTER" "$out" || die "the interrupted run did not say it deleted the cluster"
  log "interrupted run: exit $rc, cluster deleted"
}

# What passes live against istiod from source, with no data plane: every other spec is left out.
# (MTLS-012 is slow: the upgrade gate runs !slow, so there it is skipped.)
CONTROL_PLANE_PASSES=(CERT-003=pass CERT-005=pass/documented CP-001=pass CP-002=pass CP-003=pass VALID-001=pass
  POSTURE-001=pass/documented POSTURE-002=pass/documented POSTURE-003=pass/documented
  POSTURE-004=pass/documented POSTURE-005=pass/documented POSTURE-006=pass/documented
  POSTURE-007=pass/documented 'PROBE-001[injected spec]=pass' 'PROBE-004[injected spec]=pass')
# What passes where pilot-agent runs without Envoy (ISTIO_AGENT_IMAGE): istiod's CA issuing over CSR.
AGENT_PASSES=(CERT-006=pass/documented CERT-007=pass/documented)

# The control plane from source, the real charts, the specs that need no proxy. Posture runs:
# the cluster is the run's own, so its disruptive hardening is allowed.
run_istio() {
  rm -rf "$REPORTS/istio"
  # ISTIO_AGENT_IMAGE: the grpc-agent pods run pilot-agent built from the same branch, so CERT-006
  # and CERT-007 see istiod's CA issue real certificates although no Envoy runs.
  local istio=(ISTIO_VERSION="$ISTIO_SRC_VERSION" ISTIO_CHART_DIR="$ISTIO_CHARTS" ISTIO_HUB=$ISTIO_HUB_LOCAL ISTIO_GATEWAY=0 DATAPLANE=0
    ISTIO_AGENT_IMAGE="$ISTIO_AGENT_IMAGE_LOCAL")
  if [ -n "$RUN_CLUSTER" ] && [ -n "$(cluster_nodes)" ]; then
    # The run phase's cluster, left as found by the existing phase: reused (a new cluster and
    # its image loads cost ~50s here; run and interrupt prove cluster creation). Reused, it is
    # not the run's own, so the posture specs' mesh-wide hardening must be allowed.
    log "istio: on the run phase's cluster (REUSE_CLUSTER=1)"
    e2e "${istio[@]}" REUSE_CLUSTER=1 ALLOW_DISRUPTIVE=1 REPORTS_DIR="$REPORTS/istio"
  else
    no_cluster
    e2e "${istio[@]}" KEEP_CLUSTER=always REPORTS_DIR="$REPORTS/istio"
  fi
  check "$REPORTS/istio" baseline=passed "${CONTROL_PLANE_PASSES[@]}" "${AGENT_PASSES[@]}" '*=left-out'
  grep -q "source build of $ISTIO_BRANCH" "$REPORTS/istio/conformance/conformance.json" ||
    die "the report does not say the Istio tested is a source build"

  # Broken on purpose: the same checks must now fail, with what they saw.
  local node rc=0
  node=$(cluster_nodes)
  printf '%s\n' 'apiVersion: security.istio.io/v1' 'kind: PeerAuthentication' \
    'metadata: {name: live-broken-mesh-wide-strict, namespace: istio-system}' 'spec: {mtls: {mode: STRICT}}' |
    docker exec -i "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -
  # The injector told not to rewrite probes (sidecarInjectorWebhook.rewriteAppHTTPProbe in the
  # values istiod reads from its mounted ConfigMap), istiod restarted to read it at once.
  docker exec "$node" sh -c 'k="kubectl --kubeconfig /etc/kubernetes/admin.conf -n istio-system"
    $k get configmap istio-sidecar-injector -o json |
      sed "s/\\\\\"rewriteAppHTTPProbe\\\\\": true/\\\\\"rewriteAppHTTPProbe\\\\\": false/" | $k apply -f -
    $k get configmap istio-sidecar-injector -o jsonpath="{.data.values}" | grep -q "\"rewriteAppHTTPProbe\": false"
    $k rollout restart deployment istiod && $k rollout status deployment istiod --timeout=180s'
  # CP-003's negative control (scripts/cp003control): a pod of the grpc-agent template's
  # containers, environment and volumes whose projected token has an audience istiod refuses. Its
  # first CSRs, while istiod still has its RBAC, must be logged as refused for that audience (the
  # line CP-003's golden test holds); it is started again just before the broken run, so that
  # its retried CSRs (a backoff from 0.5s) fall inside that run's log window.
  local kc="$REPORTS/istio/run/kubeconfig" line control="$CACHE/cp003control"
  go build -o "$control" ./scripts/cp003control
  line=$("$control" -kubeconfig "$kc" -name bad-token-1 -image "$ISTIO_AGENT_IMAGE_LOCAL" -await 2m)
  grep -q 'token audiences \["meshconform-not-istio-ca"\] is invalid for the target audiences \["istio-ca"\]' <<<"$line" ||
    die "istiod refused CP-003's control for another reason than its token's audience: $line"
  printf '%s\n' "$line" >"$CACHE/cp003-control.line"
  log "CP-003's control refused by istiod: $line"
  # Last, once the restarted istiod has synced: its RBAC removed under it, and its validating
  # webhooks (the revision's, and the base chart's default validator, which selects every object).
  docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf delete clusterrolebinding -l app=istiod
  docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf delete validatingwebhookconfiguration \
    istio-validator-istio-system istiod-default-validator
  node_kubectl -n meshconform-cp003-control delete pod bad-token-1 --wait=false
  "$control" -kubeconfig "$kc" -name bad-token-2 -image "$ISTIO_AGENT_IMAGE_LOCAL"
  rm -rf "$REPORTS/istio-broken"
  e2e "${istio[@]}" REUSE_CLUSTER=1 ALLOW_DISRUPTIVE=1 LABELS='CP-002 || VALID-001 || POSTURE-001 || PROBE-001 || CERT-005 || CP-003' REPORTS_DIR="$REPORTS/istio-broken" MESHCONFORM_TIMEOUT=20s || rc=$?
  [ $rc != 0 ] || die "a run with istiod's RBAC and validating webhooks removed, STRICT applied beforehand, the probe rewrite off and a pod with a refused token exited 0"
  check "$REPORTS/istio-broken" baseline=passed CP-002=fail/deviation VALID-001=fail/deviation POSTURE-001=fail/deviation PROBE-001=fail \
    'PROBE-001[injected spec]=fail' CERT-005=fail/deviation CP-003=fail/deviation '*=skip'
  # CP-003 names the refused CSR (istiod without its RBAC cannot even ask for a TokenReview now).
  grep -q 'Failed to authenticate client from .*KubeJWTAuthenticator: failed to validate the JWT' "$REPORTS/istio-broken/conformance/conformance.json" ||
    die "CP-003's failure does not show istiod's refused CSR"
  # istiod without its RBAC cannot patch the bundle back: CERT-005 fails, and its cleanup put the
  # bundle back, so the cluster is not left without one.
  node_kubectl get mutatingwebhookconfiguration istio-sidecar-injector \
    -o jsonpath='{range .webhooks[*]}{.name}={.clientConfig.caBundle}{"\n"}{end}' | awk -F= 'NF < 2 || $2 == "" {e = 1} END {exit e}' ||
    die "CERT-005 left a webhook of the injector without a caBundle"
  grep -q "ClusterRoleBinding" "$REPORTS/istio-broken/conformance/conformance.json" ||
    die "CP-002's failure does not name the missing ClusterRoleBinding"
  grep -q "default install: POSTURE-001 is pass, want fail" "$REPORTS/istio-broken/conformance/conformance.json" ||
    die "POSTURE-001's failure does not say what the audit saw"
  grep -q "app-health" "$REPORTS/istio-broken/conformance/conformance.json" ||
    die "PROBE-001's failure does not say which rewrite it missed"
  grep -q "accepted: the dry run of an AuthorizationPolicy with action DENY and no rules succeeded" "$REPORTS/istio-broken/conformance/conformance.json" ||
    die "VALID-001's failure does not say the policy was accepted"
  log "broken control plane: exit $rc, CP-002, VALID-001, POSTURE-001, CERT-005, CP-003 and PROBE-001's injected spec failed with their evidence"

  # The injector's caBundle blanked with istiod stopped (a running istiod writes it back within
  # seconds): the run must stop before any behaviour, naming the missing bundle. CERT-003 checks
  # the same condition, but a run never gets that far without a bundle: the readiness wait on
  # istiod (mesh.WebhookHasCABundle) refuses first.
  rc=0
  node_kubectl -n istio-system scale deployment istiod --replicas=0
  node_kubectl -n istio-system wait --for=delete pod -l app=istiod --timeout=120s
  local n i
  n=$(node_kubectl get mutatingwebhookconfiguration istio-sidecar-injector -o jsonpath='{range .webhooks[*]}x{end}')
  for ((i = 0; i < ${#n}; i++)); do
    node_kubectl patch mutatingwebhookconfiguration istio-sidecar-injector --type=json \
      -p "[{\"op\": \"replace\", \"path\": \"/webhooks/$i/clientConfig/caBundle\", \"value\": \"\"}]"
  done
  rm -rf "$REPORTS/istio-nobundle"
  e2e "${istio[@]}" REUSE_CLUSTER=1 LABELS='CERT-003' ISTIO_INSTALL_TIMEOUT=20s REPORTS_DIR="$REPORTS/istio-nobundle" >"$CACHE/nobundle.log" || rc=$?
  [ $rc != 0 ] || die "a run with the injector's caBundle blanked exited 0"
  grep -q "MutatingWebhookConfiguration istio-sidecar-injector: no caBundle yet on ${#n}/${#n} webhooks" "$CACHE/nobundle.log" ||
    die "the run with the caBundle blanked does not say so (log $CACHE/nobundle.log)"
  [ ! -e "$REPORTS/istio-nobundle/conformance/conformance.json" ] || die "the run with the caBundle blanked judged behaviours"
  log "no caBundle: exit $rc before any behaviour, naming the ${#n} webhooks without a bundle"
  if [ -z "$RUN_CLUSTER" ]; then
    CLUSTER_NAME=$CLUSTER go run ./scripts/e2e delete
    [ -z "$(cluster_nodes)" ] || die "make e2e-delete left $(cluster_nodes)"
  fi
}

# The ambient control plane from source, with no data plane: what istiod does alone
# (scripts/ambientcp, framework/ambientcp's checks), then the same with the waypoint binding
# missing (two checks must fail, the rest pass), then uninstalled, the cluster as before.
run_ambient() {
  local kc own= before after rc=0 d="$REPORTS/ambient" bin="$CACHE/ambientcp"
  if [ -n "$RUN_CLUSTER" ] && [ -n "$(cluster_nodes)" ]; then
    kc="$REPORTS/run/run/kubeconfig"
  else
    no_cluster
    rm -rf "$REPORTS/ambient-cluster"
    e2e ISTIO_INSTALL=none KEEP_CLUSTER=always LABELS=baseline REPORTS_DIR="$REPORTS/ambient-cluster"
    kc="$REPORTS/ambient-cluster/run/kubeconfig" own=1
  fi
  rm -rf "$d" && mkdir -p "$d"
  # istiod's image into the node's containerd, as the existing phase does (IMAGE_PULL=0's
  # Never): the chart's ambient image would be pilot:<v>-distroless, so it is given verbatim.
  docker save "$ISTIO_HUB_LOCAL/pilot:$ISTIO_SRC_VERSION" |
    docker exec -i "$(cluster_nodes)" ctr --namespace=k8s.io images import - >/dev/null
  before=$(cluster_objects)
  go build -o "$bin" ./scripts/ambientcp
  local t
  t=$(now)
  local args=(-kubeconfig "$kc" -version "$ISTIO_SRC_VERSION" -charts "$ISTIO_CHARTS" -hub "$ISTIO_HUB_LOCAL"
    -pilot-image "$ISTIO_HUB_LOCAL/pilot:$ISTIO_SRC_VERSION")
  "$bin" "${args[@]}" -install -namespace meshconform-ambientcp -out "$d/ambientcp.json" 2>"$d/ambientcp.log" ||
    { cat "$d/ambientcp.log" >&2; die "the ambient control plane's checks failed (above; $d/ambientcp.json)"; }
  [ "$(jq -r '[.checks[] | select(.passed)] | length' "$d/ambientcp.json")" = 10 ] || die "not 10 checks passed in $d/ambientcp.json"
  log "ambient: installed and judged in $(took "$t")"
  t=$(now)
  # Broken: the Service not bound to the waypoint. Exactly the binding checks fail; the run
  # uninstalls everything after judging.
  # Other nodePorts: the first run's namespace may still be going, and nodePorts are cluster-wide.
  "$bin" "${args[@]}" -unbound -uninstall -timeout 15s -http-node-port 30081 -https-node-port 30444 -namespace meshconform-ambientcp-unbound -out "$d/ambientcp-unbound.json" 2>"$d/ambientcp-unbound.log" || rc=$?
  [ $rc = 1 ] || { cat "$d/ambientcp-unbound.log" >&2; die "the run with the Service unbound exited $rc, want 1"; }
  local failed
  failed=$(jq -r '[.checks[] | select(.passed | not) | .check] | sort | join(" ")' "$d/ambientcp-unbound.json")
  [ "$failed" = "policy-waypoint service-waypoint-bound" ] || die "with the Service unbound, failed: '$failed'; want policy-waypoint service-waypoint-bound"
  grep -q 'AncestorNotBound' "$d/ambientcp-unbound.json" || die "the unbound policy's status does not say AncestorNotBound"
  node_kubectl wait --for=delete namespace meshconform-ambientcp meshconform-ambientcp-unbound --timeout=120s >/dev/null 2>&1 || true
  log "ambient: unbound case judged, everything uninstalled in $(took "$t")"
  after=$(cluster_objects)
  if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    die "the ambient phase left the cluster changed (above: < before, > after)"
  fi
  log "ambient control plane: 10 checks passed (install $(jq -r '.installSeconds|floor' "$d/ambientcp.json")s, judged in $(jq -r '.judgeSeconds|floor' "$d/ambientcp.json")s); unbound: $failed failed; uninstalled, cluster as before"
  if [ -n "$own" ]; then
    CLUSTER_NAME=$CLUSTER go run ./scripts/e2e delete
  fi
}

# gate DIR CHARTS ENV...: make e2e-upgrade from UPGRADE_FROM to UPGRADE_TO, without gateway and
# data plane, with FROM's pilot-agent image (each phase gets its own version's:
# gate.AgentImageFor); its exit code is returned, its output kept in DIR.log. On the run phase's
# cluster when it is there (REUSE_CLUSTER=1: no cluster made, no image loaded again, ~1 minute
# saved per gate here), which the gate must leave as it found it, pass or fail: its namespaces,
# CRDs, webhooks and cluster RBAC as before. Otherwise on a new kind cluster, which a passing gate
# deletes (a failed one keeps it for inspection unless KEEP_CLUSTER=never).
gate() {
  local dir=$1 charts=$2 rc=0 before='' where=()
  shift 2
  rm -rf "$dir"
  if [ -n "$RUN_CLUSTER" ] && [ -n "$(cluster_nodes)" ]; then
    # Reused, the cluster is not the gate's own: its phases' mesh-wide specs (posture, CERT-005)
    # must be allowed, as in the istio phase.
    where=(REUSE_CLUSTER=1 ALLOW_DISRUPTIVE=1)
    before=$(cluster_objects)
  else
    no_cluster
  fi
  env KIND_CONFIG=offline K8S_NODE_IMAGE="$NODE_IMAGE" CLUSTER_NAME="$CLUSTER" IMAGE_PULL=0 "${where[@]}" \
    ISTIO_CHART_DIR="$charts" ISTIO_HUB=$ISTIO_HUB_LOCAL ISTIO_GATEWAY=0 DATAPLANE=0 \
    ISTIO_AGENT_IMAGE="$ISTIO_HUB_LOCAL/pilot-agent:$UPGRADE_FROM" \
    FROM="$UPGRADE_FROM" TO="$UPGRADE_TO" REPORTS_DIR="$dir" "$@" go run ./scripts/e2e upgrade 2>&1 | tee "$dir.log" || rc=$?
  no_pull "$dir.log"
  if [ -n "$before" ]; then
    grep -q "meshconform: uninstalled Istio $UPGRADE_TO from context kind-$CLUSTER" "$dir.log" ||
      die "the gate on the reused cluster did not say it uninstalled its Istio (now at $UPGRADE_TO)"
    local after
    after=$(cluster_objects)
    if [ "$before" != "$after" ]; then
      diff <(echo "$before") <(echo "$after") >&2 || true
      die "the gate left the reused cluster changed (above: < before, > after)"
    fi
    log "gate on the reused cluster $CLUSTER: left as found ($(echo "$after" | wc -l) cluster objects as before)"
  else
    [ $rc != 0 ] || [ -z "$(cluster_nodes)" ] || die "the upgrade gate passed but left $(cluster_nodes)"
  fi
  return $rc
}

# The gate from the release-1.30 build to the release-1.31 build: each phase passes what the
# istio phase passes, on the version and revision it should, and the diff finds no regression.
run_upgrade() {
  local rc=0 d="$REPORTS/upgrade"
  gate "$d" "$UPGRADE_CHARTS" || rc=$?
  [ $rc = 0 ] || die "the upgrade gate $UPGRADE_FROM → $UPGRADE_TO exited $rc (log $d.log)"
  for ph in base inplace canary; do
    check "$d/upgrade/$ph" baseline=passed "${CONTROL_PLANE_PASSES[@]}" "${AGENT_PASSES[@]}" MTLS-012=skip '*=left-out'
    # The upgrade suite: the skew workloads' injected specs (FROM's proxy before; after the
    # in-place upgrade, TO's for a new pod and FROM's still for the old one; after the move to
    # the canary, TO's from the canary); its traffic specs need a data plane.
    go run ./cmd/meshconform report check "$d/upgrade/$ph/upgrade/conformance.json" \
      baseline=passed 'MTLS-004[injected spec]=pass' MTLS-004=left-out MTLS-002=left-out
  done
  grep -q '"moved client injected by": "canary (annotation istio.io/rev)"' "$d/upgrade/canary/upgrade/conformance.json" ||
    die "phase canary's report does not show the moved client injected by the canary"
  grep -q "\"istioVersion\": \"$UPGRADE_FROM\"" "$d/upgrade/base/conformance/conformance.json" || die "phase base did not test $UPGRADE_FROM"
  for ph in inplace canary; do
    grep -q "\"istioVersion\": \"$UPGRADE_TO\"" "$d/upgrade/$ph/conformance/conformance.json" || die "phase $ph did not test $UPGRADE_TO"
  done
  grep -q '"istioRevision": "canary"' "$d/upgrade/canary/conformance/conformance.json" || die "phase canary did not test revision canary"
  grep -q "in place of its pins" "$d/upgrade/base/conformance/conformance.json" ||
    die "the report of the release-1.30 build does not say which dependencies were substituted"
  grep -q "base → inplace  PASS" "$d.log" && grep -q "base → canary   PASS" "$d.log" || die "the gate did not pass both diffs"
  log "upgrade gate $UPGRADE_FROM → $UPGRADE_TO: exit 0, in place and by canary"
}

# The gate against a broken TO: TO's istiod chart, same version, with the injector's probe
# rewrite off (the chart value sidecarInjectorWebhook.rewriteAppHTTPProbe, istio-discovery
# values.yaml). PROBE-001 passes on FROM and fails after the upgrade: a regression, exit 1.
run_upgrade_broken() {
  local rc=0 d="$REPORTS/upgrade-broken" charts="$CACHE/charts-broken" tmp
  rm -rf "$charts" && cp -r "$UPGRADE_CHARTS" "$charts"
  tmp=$(mktemp -d "$CACHE/unpack.XXXX")
  tar -C "$tmp" -xzf "$charts/istiod-$UPGRADE_TO.tgz"
  grep -q '^    rewriteAppHTTPProbe: true$' "$tmp/istiod/values.yaml" || die "TO's istiod chart has no 'rewriteAppHTTPProbe: true' to turn off"
  sed -i 's/^    rewriteAppHTTPProbe: true$/    rewriteAppHTTPProbe: false/' "$tmp/istiod/values.yaml"
  tar -C "$tmp" -czf "$charts/istiod-$UPGRADE_TO.tgz" istiod
  rm -rf "$tmp"
  # A failed gate keeps its cluster for inspection (KEEP_CLUSTER=on-failure); this failure is
  # the expected one.
  # One flow (PHASES=inplace, the gate's phase filter): the upgrade phase above proves the
  # canary flow end to end and its diff; here the point is that a regression fails the gate and
  # is named, which the in-place flow shows alone (the canary flow cost another ~80s).
  gate "$d" "$charts" LABELS='PROBE-001' KEEP_CLUSTER=never PHASES=inplace || rc=$?
  [ $rc = 1 ] || die "the gate to a TO without the probe rewrite exited $rc, want 1 (log $d.log)"
  [ -n "$RUN_CLUSTER" ] || [ -z "$(cluster_nodes)" ] || die "KEEP_CLUSTER=never: the failed gate left $(cluster_nodes)"
  check "$d/upgrade/base" baseline=passed 'PROBE-001[injected spec]=pass' PROBE-001=left-out '*=skip'
  check "$d/upgrade/inplace" baseline=passed 'PROBE-001[injected spec]=fail' PROBE-001=fail '*=skip'
  [ ! -e "$d/upgrade/canary" ] || die "PHASES=inplace: the gate ran the canary phase"
  grep -q "base → inplace  FAIL" "$d.log" || die "the gate did not fail the in-place diff"
  ! grep -q "base → canary" "$d.log" || die "PHASES=inplace: the gate diffed a canary phase"
  grep -q "PROBE-001" <(sed -n '/=== report diff/,$p' "$d.log") || die "the gate's diff does not name PROBE-001"
  log "broken upgrade: exit 1, PROBE-001 regressed in place (PHASES=inplace)"
}

# The benchmark (make bench; not among the default phases): the istio phase's run, end to end
# on a fresh cluster each time, BENCH_RUNS times (default 3), then the min, median and max of
# each phase of the run (preflight, cluster, images, istio, compile, baseline, specs, cleanup),
# its total and each spec's parts, read from the runs' own reports (meshconform report
# timings). BENCH_LABELS narrows the specs (default: all, as the istio phase; here that is the
# control-plane specs and the baseline, a real probe table from a plain client to httpbin;
# BENCH_LABELS=MTLS-002 times one probe-table behaviour where a data plane runs).
run_bench() {
  local n="${BENCH_RUNS:-3}" i reports=()
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$n is not a positive count"
  rm -rf "$REPORTS/bench"
  for ((i = 1; i <= n; i++)); do
    no_cluster
    log "bench run $i/$n"
    e2e ISTIO_VERSION="$ISTIO_SRC_VERSION" ISTIO_CHART_DIR="$ISTIO_CHARTS" ISTIO_HUB=$ISTIO_HUB_LOCAL ISTIO_GATEWAY=0 DATAPLANE=0 \
      KEEP_CLUSTER=never LABELS="${BENCH_LABELS:-}" REPORTS_DIR="$REPORTS/bench/$i" >"$CACHE/bench-$i.log"
    reports+=("$REPORTS/bench/$i/conformance/conformance.json")
  done
  go run ./cmd/meshconform report timings "${reports[@]}" | tee "$REPORTS/bench/timings.txt"
}

# The proxyless phase's behaviours: the catalog's proxyless analogues and deviations.
PROXYLESS_IDS=(MTLS-001 MTLS-002 MTLS-005 MTLS-011 AUTHZ-001 AUTHZ-002 AUTHZ-004 AUTHZ-005 AUTHZ-006 JWT-002)
# The deviations the source predicts (docs/behaviors.md, Proxyless data plane).
PROXYLESS_DEVIATIONS=(AUTHZ-001 JWT-002)

# run_proxyless: DATAPLANE_MODE=proxyless on the branch's source build: istiod, pilot-agent (the
# grpc-agent pods) and Istio's echo server and clients, all from the pinned commit, through the
# product's path (make e2e). The analogues must pass; AUTHZ-001 and JWT-002 are the deviations
# the source predicts (grpcgen enforces nothing for a rule-less ALLOW; grpc-go v1.82 matches
# every call against a requestPrincipals ALLOW): each must fail as a deviation whose evidence is
# the call that went through, so the run exits non-zero. PROXYLESS_REPEAT=N runs it N times on
# the same cluster (convergence stability; each run's report under proxyless/N). Then the mesh broken on
# purpose, an ALLOW widened (a root-namespace ALLOW of everything for echo-server, which joins
# every spec's ALLOW policies): the principal and plaintext denials (AUTHZ-002, AUTHZ-004,
# AUTHZ-005) must fail with the calls that went through, while the mTLS ones still pass.
run_proxyless() {
  local px=(ISTIO_VERSION="$ISTIO_SRC_VERSION" ISTIO_CHART_DIR="$ISTIO_CHARTS" ISTIO_HUB=$ISTIO_HUB_LOCAL ISTIO_GATEWAY=0
    DATAPLANE_MODE=proxyless ISTIO_AGENT_IMAGE="$ISTIO_AGENT_IMAGE_LOCAL" ISTIO_ECHO_IMAGE="$ISTIO_ECHO_IMAGE_LOCAL")
  local labels wants=() id rc=0 i n="${PROXYLESS_REPEAT:-1}" dir own=
  # The convergence deadline: an analogue converged in ≤ 4.7s quiet and ≤ 8.6s at load 10-13,
  # and the predicted deviations are concluded only when it passes (60s each by default).
  px+=(MESHCONFORM_TIMEOUT="${PROXYLESS_TIMEOUT:-30s}")
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "PROXYLESS_REPEAT=$n is not a positive count"
  labels=$(printf ' || %s' "${PROXYLESS_IDS[@]}")
  labels=${labels# || }
  for id in "${PROXYLESS_IDS[@]}"; do
    if [[ " ${PROXYLESS_DEVIATIONS[*]} " == *" $id "* ]]; then
      wants+=("$id=fail/deviation")
    else
      wants+=("$id=pass")
    fi
  done
  rm -rf "$REPORTS/proxyless" "$REPORTS/proxyless-broken"
  for ((i = 1; i <= n; i++)); do
    dir="$REPORTS/proxyless"
    [ "$n" = 1 ] || dir="$REPORTS/proxyless/$i"
    rc=0
    if [ -n "$(cluster_nodes)" ] && { [ -n "$RUN_CLUSTER" ] || [ "$i" -gt 1 ]; }; then
      e2e "${px[@]}" REUSE_CLUSTER=1 LABELS="$labels" REPORTS_DIR="$dir" || rc=$?
    else
      no_cluster
      own=1
      e2e "${px[@]}" KEEP_CLUSTER=always LABELS="$labels" REPORTS_DIR="$dir" || rc=$?
    fi
    [ $rc != 0 ] || die "the proxyless run exited 0: the predicted deviations were not reported"
    check "$dir" baseline=passed "${wants[@]}" '*=skip'
    grep -q '"mode": "proxyless"' "$dir/conformance/conformance.json" || die "the report does not name the proxyless mode"
    grep -q 'grpc code=OK' "$dir/conformance/conformance.json" || die "the deviations do not show the calls that went through"
  done

  local node
  node=$(cluster_nodes)
  printf '%s\n' 'apiVersion: security.istio.io/v1' 'kind: AuthorizationPolicy' \
    'metadata: {name: live-broken-allow-echo, namespace: istio-system}' \
    'spec: {selector: {matchLabels: {app: echo-server}}, action: ALLOW, rules: [{}]}' |
    docker exec -i "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -
  rc=0
  # 15s: the broken specs fail only at the deadline; MTLS-002, which must still pass, converges
  # in ≤ 1.6s here.
  e2e "${px[@]}" MESHCONFORM_TIMEOUT=15s REUSE_CLUSTER=1 LABELS='MTLS-002 || AUTHZ-002 || AUTHZ-004 || AUTHZ-005' REPORTS_DIR="$REPORTS/proxyless-broken" || rc=$?
  docker exec "$node" kubectl --kubeconfig /etc/kubernetes/admin.conf -n istio-system delete authorizationpolicy live-broken-allow-echo
  [ $rc != 0 ] || die "a proxyless run with an ALLOW of everything for echo-server exited 0"
  check "$REPORTS/proxyless-broken" baseline=passed MTLS-002=pass AUTHZ-002=fail/deviation AUTHZ-004=fail/deviation AUTHZ-005=fail/deviation '*=skip'
  if [ -n "$own" ]; then
    make --no-print-directory e2e-delete CLUSTER_NAME="$CLUSTER"
    [ -z "$(cluster_nodes)" ] || die "make e2e-delete left $(cluster_nodes)"
  fi
}

mkdir -p "$CACHE"
phase engine start_engine
phase images build_images
# Not PHASES: make exports that one (the gate's phase filter, empty) and children would inherit it.
phase_list="${LIVE_PHASES:-run reuse broken existing ambient upgrade upgrade-broken proxyless istio delete interrupt}"
for p in $phase_list; do
  case "$p" in
    run) phase run run_fresh ;;
    reuse) phase reuse run_reuse ;;
    broken) phase broken run_broken ;;
    existing) phase existing run_existing ;;
    delete) phase delete delete_cluster ;;
    interrupt) phase interrupt run_interrupt ;;
    ambient) phase ambient run_ambient ;;
    istio) phase istio run_istio ;;
    upgrade) phase upgrade run_upgrade ;;
    upgrade-broken) phase upgrade-broken run_upgrade_broken ;;
    bench) phase bench run_bench ;;
    proxyless) phase proxyless run_proxyless ;;
    *) die "LIVE_PHASES: unknown phase $p (run, reuse, broken, existing, ambient, delete, interrupt, istio, proxyless, upgrade, upgrade-broken, bench)" ;;
  esac
done
