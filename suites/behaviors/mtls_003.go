package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/dataplane"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// The proxy container is the sidecar's: the behaviour exists in that mode only.
var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-003", Name: "the proxy container's own plaintext traffic is rejected under STRICT",
	Requires:   cases.Requires{Mode: dataplane.ModeSidecar},
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.ProductCatalog),
	Steps: []cases.Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []cases.Probe{
		{Name: "istio-proxy container", From: proxySource, To: httpbin, Expect: catalog.PlaintextRejected},
	}}},
})
