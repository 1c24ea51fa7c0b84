// Package checks holds the logic of the behaviours that are not one curl probe: istiod's
// logs and RBAC (CP-001..003), the served certificate chain and its lifetime (CERT-002,
// CERT-004), the injector's CA bundle (CERT-003), probe rewriting and readiness over a soak
// window (PROBE-001..003), and the MySQL client's outcome (MTLS-012). No Ginkgo: the suites
// call these functions and fail with the error they return, which says what was seen.
//
// Functions that read the cluster take a kubernetes.Interface and a context; functions that
// judge what was read are pure, so they are tested on real-shaped inputs without a cluster.
package checks
