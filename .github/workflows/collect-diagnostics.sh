#!/usr/bin/env bash
# Collects the state of a failed run's kind cluster for the diagnostics artifact, beside what
# the suites' own diag package wrote. Best effort: every command may fail (the cluster may
# never have come up), and none of it reads Secret data.
# Usage: collect-diagnostics.sh CLUSTER_NAME OUT_DIR
set -uo pipefail
cluster=$1
out=$2
mkdir -p "$out"
ctx="kind-$cluster"
k() { kubectl --context "$ctx" "$@"; }
{
  echo "# docker ps"; docker ps -a
  echo "# contexts"; kubectl config get-contexts
} >"$out/host.txt" 2>&1
k get nodes -o wide >"$out/nodes.txt" 2>&1
k get pods -A -o wide >"$out/pods.txt" 2>&1
k get events -A --sort-by=.lastTimestamp >"$out/events.txt" 2>&1
k get peerauthentications,destinationrules,authorizationpolicies,gateways,virtualservices -A -o yaml >"$out/istio-config.yaml" 2>&1
k -n istio-system logs -l app=istiod --tail=2000 --all-containers >"$out/istiod.log" 2>&1
k -n istio-system describe pods >"$out/istio-system-pods.txt" 2>&1
echo "diagnostics in $out"
exit 0
