# meshconform: `make e2e` runs the conformance suites against a kind cluster (or KUBE_CONTEXT);
# `make test` tests meshconform itself (tier 0: unit + real curl/openssl; tier 1: a real
# kube-apiserver + etcd + kube-controller-manager). See README.md.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
# Every go command the targets run builds path-independent (-trimpath) and without DWARF
# (-ldflags=-w): a clean clone (CI) then finds its compiled packages and linked test binaries in
# the build cache instead of rebuilding every meshconform package, whose cache keys otherwise
# include the checkout's directory; and the ~45 test binaries link about a third faster
# (framework/mesh's: 16.6s → 10.4s wall, measured with `go test -c`).
export GOFLAGS := $(strip $(GOFLAGS) -trimpath -ldflags=-w)
GOTESTFLAGS ?=
REPORTS_DIR ?= reports

.PHONY: help
help:
	@echo "make test        test meshconform itself (tier 0 + tier 1; needs Go, curl, openssl)"
	@echo "make e2e         run the conformance suites (needs Go and Docker, or KUBE_CONTEXT)"
	@echo "make e2e-upgrade FROM=<istio> TO=<istio>   the upgrade gate"
	@echo "make assets      obtain kube-apiserver, etcd, kube-controller-manager for tier 1"
	@echo "make live        the live tier: kind cluster from offline images, suites run for real (root, Debian)"
	@echo "make bench       the live tier's istio run BENCH_RUNS times; min/median/max per phase and spec"
	@echo "See README.md for the variables."

# The run's settings: empty means the driver's default (`go run ./scripts/e2e help` lists them).
E2E_VARS := ISTIO_VERSION ISTIO_REVISION ISTIO_CHART_REPO ISTIO_CHART_DIR ISTIO_HUB ISTIO_INSTALL ISTIO_GATEWAY DATAPLANE DATAPLANE_MODE IMAGE_PULL \
	ISTIO_INSTALL_TIMEOUT K8S_NODE_IMAGE KIND_CONFIG CLUSTER_NAME REUSE_CLUSTER KEEP_CLUSTER \
	KUBE_CONTEXT KUBECONFIG ALLOW_DISRUPTIVE STRICT BASELINE LABELS PROCS REPORTS_DIR \
	MESHCONFORM_TIMEOUT MESHCONFORM_POLL MESHCONFORM_CONSECUTIVE FROM TO PHASES
export $(E2E_VARS)

# make e2e: preflight (seconds; every problem at once), kind cluster, images, Istio, the
# suites (JUnit + JSON + conformance report under $(REPORTS_DIR)), then KEEP_CLUSTER decides.
.PHONY: e2e
e2e:
	$(GO) run ./scripts/e2e run

# make e2e-upgrade FROM=1.30.8 TO=1.31.4: the upgrade gate. Istio FROM on a fresh kind cluster
# and the suites; in-place upgrade to TO and the suites; TO as revision "canary" and the suites;
# then a report diff of base against each (exit 1 on any regression). Reports: $(REPORTS_DIR)/upgrade/.
# PHASES=inplace runs base and the in-place upgrade only (canary needs inplace before it).
.PHONY: e2e-upgrade
e2e-upgrade:
	$(GO) run ./scripts/e2e upgrade

.PHONY: preflight
preflight:
	$(GO) run ./scripts/e2e preflight

.PHONY: e2e-delete
e2e-delete:
	$(GO) run ./scripts/e2e delete

# The live tier: a real kind cluster from images built offline, the suites run through the
# product's own code, reports checked; starts (and stops) a private Docker engine when none
# answers. .ci/run runs it after `make test`. See scripts/live.sh and README.md.
.PHONY: live
live:
	@scripts/live.sh

# The benchmark: the live tier's istio run end to end BENCH_RUNS times (default 3) on fresh
# clusters, then the min/median/max of each phase and spec (meshconform report timings).
.PHONY: bench
bench:
	@LIVE_PHASES=bench scripts/live.sh

.PHONY: vet
vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./suites/...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: assets
assets:
	@scripts/envtest-assets.sh

# Tier 0 and tier 1 in one run: tier-1 tests fail (not skip) here when the assets are missing.
# scripts/gotest is `go test ./...` that keeps the test binaries (outside the tree) and relinks
# only those whose code changed: linking all of them costs ~240 CPU-seconds on every go test run.
# GOTESTFLAGS takes go test's flags (-run, -v, -count=1, -timeout …); TEST_PROCS binaries run at
# a time (default: cores + 1; tier-1 tests wait on their API servers more than they compute).
TEST_PROCS ?=
.PHONY: test
test: vet
	@assets=$$(scripts/envtest-assets.sh) && \
	  echo "tier 1 assets: $$assets" && \
	  KUBEBUILDER_ASSETS="$$assets" MESHCONFORM_TIER1=required \
	  $(GO) run ./scripts/gotest $(if $(TEST_PROCS),-p $(TEST_PROCS)) ./... -- $(GOTESTFLAGS)
