//go:build e2e

// The conformance suite: every behaviour of docs/behaviors.md, as Ginkgo specs labelled with
// its ID and area. One test binary, so the cluster and Istio come up once for all areas; run
// it with `make e2e` (see the README), or `go tool ginkgo --tags e2e ./suites`.
package suites

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"meshconform/framework/report"
	_ "meshconform/suites/behaviors"
	"meshconform/suites/internal/e2e"
)

var (
	_ = e2e.Bootstrap(report.ConformanceSuite) // the driver amends <REPORTS_DIR>/conformance/ after the cleanup
	_ = e2e.Specs()
)

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "meshconform conformance")
}
