// Package authz registers the AuthorizationPolicy behaviour specs.
package authz

import (
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Table("authz", cases.Authz())
