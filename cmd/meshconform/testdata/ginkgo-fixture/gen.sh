#!/usr/bin/env bash
# Regenerates the Ginkgo JSON and JUnit fixtures of cmd/meshconform's tests by running a real
# Ginkgo suite (suite_test.go.txt) in a temporary module outside the repository, so that the
# fixtures are exactly what the pinned Ginkgo writes and `ginkgo -r` never finds the suite.
# The conformance.json/.yaml fixtures are then built from them with `meshconform report build`.
# Usage: cmd/meshconform/testdata/ginkgo-fixture/gen.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
data="$here/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/fixture"
cp "$here/suite_test.go.txt" "$tmp/fixture/suite_test.go"
sed -e 's/^module meshconform$/module fixture/' "$repo/go.mod" > "$tmp/go.mod"
printf '\nrequire meshconform v0.0.0\n\nreplace meshconform => %s\n' "$repo" >> "$tmp/go.mod"
cp "$repo/go.sum" "$tmp/go.sum"

# run NAME SCENARIO ISTIO K8S: one fixture run into $tmp/out/NAME.
run() {
  local name=$1 scenario=$2 istio=$3 k8s=$4
  mkdir -p "$tmp/out/$name"
  (cd "$tmp" && FIXTURE_SCENARIO=$scenario FIXTURE_ISTIO=$istio FIXTURE_K8S=$k8s \
    FIXTURE_RUN_ID="fx-$name" FIXTURE_NODE_IMAGE="kindest/node:v$k8s" \
    go tool ginkgo --no-color --json-report="$tmp/out/$name/ginkgo.json" --junit-report="$tmp/out/$name/junit.xml" ./fixture \
    >"$tmp/out/$name/console.txt" 2>&1) || true # the fixtures fail on purpose
  grep -q "Ran " "$tmp/out/$name/console.txt" || { cat "$tmp/out/$name/console.txt"; exit 1; }
}
run base base 1.30.5 1.37.0
run candidate candidate 1.31.1 1.37.0
run base-old-k8s base 1.30.5 1.35.8
run candidate-old-k8s candidate 1.31.1 1.35.8

# The temp paths Ginkgo records would make every regeneration differ; name them for what they are.
for f in "$tmp"/out/*/ginkgo.json "$tmp"/out/*/junit.xml; do
  sed -i -e "s#$tmp#/tmp/ginkgo-fixture#g" "$f"
done

mc() { (cd "$repo" && go run ./cmd/meshconform "$@"); }
mkdir -p "$data/ginkgo" "$data/runs"
for n in base candidate; do
  cp "$tmp/out/$n/ginkgo.json" "$data/ginkgo/$n.json"
  cp "$tmp/out/$n/junit.xml" "$data/ginkgo/$n.junit.xml"
  mc report build -o "$tmp/built/$n" "$data/ginkgo/$n.json" >/dev/null
  cp "$tmp/built/$n/conformance.json" "$data/$n.json"
  cp "$tmp/built/$n/conformance.yaml" "$data/$n.yaml"
done
# The merge fixtures: four matrix cells as CI downloads them, in every format.
rm -rf "$data/runs"
mkdir -p "$data/runs/reports-istio-1.30.5-k8s-1.37.0" "$data/runs/reports-istio-1.30.5-k8s-1.35.8" \
  "$data/runs/reports-istio-1.31.1-k8s-1.37.0" "$data/runs/reports-istio-1.31.1-k8s-1.35.8"
cp "$data/base.json" "$data/runs/reports-istio-1.30.5-k8s-1.37.0/conformance.json"
mc report build -o "$tmp/built/bo" "$tmp/out/base-old-k8s/ginkgo.json" >/dev/null
cp "$tmp/built/bo/conformance.yaml" "$data/runs/reports-istio-1.30.5-k8s-1.35.8/conformance.yaml"
cp "$tmp/out/candidate/junit.xml" "$data/runs/reports-istio-1.31.1-k8s-1.37.0/junit.xml"
mc report build -o "$tmp/built/co" "$tmp/out/candidate-old-k8s/ginkgo.json" >/dev/null
cp "$tmp/built/co/conformance.json" "$data/runs/reports-istio-1.31.1-k8s-1.35.8/conformance.json"
echo "fixtures written under $data"
