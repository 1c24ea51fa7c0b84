package meshconform

import (
	_ "embed"
	"slices"
)

//go:embed docs/behaviors.md
var behaviorsFile []byte

// BehaviorsFile is docs/behaviors.md, the catalog of every behaviour the suites assert, as the
// binaries embed it; framework/catalog parses it.
func BehaviorsFile() []byte { return slices.Clone(behaviorsFile) }
