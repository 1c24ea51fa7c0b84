// Package identity registers the identity and certificate behaviour specs.
package identity

import (
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Table("identity", cases.Identity())
