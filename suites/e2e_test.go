//go:build e2e

// The conformance suite: every behaviour of BEHAVIORS.md, as Ginkgo specs labelled with its
// ID and area. One test binary, so the cluster and Istio come up once for all areas; run it
// with `make e2e` (see the README), or `go tool ginkgo --tags e2e ./suites`.
package suites

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "meshconform/suites/authz"
	_ "meshconform/suites/controlplane"
	_ "meshconform/suites/identity"
	_ "meshconform/suites/ingress"
	"meshconform/suites/internal/e2e"
	_ "meshconform/suites/mtls"
	_ "meshconform/suites/posture"
	_ "meshconform/suites/probes"
)

var _ = e2e.Bootstrap("conformance")

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "meshconform conformance")
}
