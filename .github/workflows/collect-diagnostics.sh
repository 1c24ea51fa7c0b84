#!/usr/bin/env bash
# Collects the state of a failed run's kind cluster for the diagnostics artifact, beside what
# the suites' own diag package wrote. None of it reads Secret data.
#
# The cluster is reached through the run's kubeconfig: $KUBECONFIG when set, else
# $REPORTS_DIR/run/kubeconfig (reports/run/kubeconfig by default), which make e2e writes for the
# kind cluster it creates; its context is kind-CLUSTER_NAME. Each command may fail (the cluster
# may never have come up); when none of them could read the cluster, the script says so on
# stderr and exits 1, so that an empty diagnostics artifact is never mistaken for a healthy one.
# Usage: collect-diagnostics.sh CLUSTER_NAME OUT_DIR
set -uo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: $0 CLUSTER_NAME OUT_DIR" >&2
  exit 2
fi
cluster=$1
out=$2
export KUBECONFIG="${KUBECONFIG:-${REPORTS_DIR:-reports}/run/kubeconfig}"
ctx="kind-$cluster"
mkdir -p "$out"

{
  echo "# docker ps"; docker ps -a
  echo "# kubeconfig $KUBECONFIG"; kubectl config get-contexts
} >"$out/host.txt" 2>&1

# KUBECONFIG may be a list (a:b); one readable file in it is enough for kubectl.
readable=0
IFS=: read -r -a kubeconfigs <<<"$KUBECONFIG"
for f in "${kubeconfigs[@]}"; do
  [ -r "$f" ] && readable=1
done
if [ "$readable" = 0 ]; then
  echo "::error::collect-diagnostics: no readable kubeconfig at $KUBECONFIG (set KUBECONFIG, or REPORTS_DIR to the run's reports directory): nothing collected from cluster $cluster; host state in $out/host.txt" >&2
  exit 1
fi

collected=0
attempted=0
k() {
  local file=$1
  shift
  attempted=$((attempted + 1))
  if kubectl --context "$ctx" "$@" >"$out/$file" 2>&1; then
    collected=$((collected + 1))
  fi
}
k nodes.txt get nodes -o wide
k pods.txt get pods -A -o wide
k events.txt get events -A --sort-by=.lastTimestamp
k istio-config.yaml get peerauthentications,destinationrules,authorizationpolicies,gateways,virtualservices -A -o yaml
k istiod.log -n istio-system logs -l app=istiod --tail=2000 --all-containers
k istio-system-pods.txt -n istio-system describe pods

if [ "$collected" = 0 ]; then
  echo "::error::collect-diagnostics: every kubectl command failed against context $ctx of $KUBECONFIG: nothing collected from cluster $cluster (their errors are in $out)" >&2
  exit 1
fi
echo "diagnostics in $out: $collected of $attempted kubectl commands succeeded (context $ctx, kubeconfig $KUBECONFIG)"
exit 0
