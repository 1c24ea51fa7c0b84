// Package ingress registers the ingress gateway behaviour specs.
package ingress

import (
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Table("ingress", cases.Ingress())
