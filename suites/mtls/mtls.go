// Package mtls registers the mTLS behaviour specs (PeerAuthentication, DestinationRule).
package mtls

import (
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Table("mtls", cases.MTLS())
