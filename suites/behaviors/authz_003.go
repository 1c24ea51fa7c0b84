package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "AUTHZ-003", Name: "ALLOW by method: the allowed principal is denied POST",
	Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, authzClients...),
	Steps: []cases.Step{{Name: "ALLOW test-service-account GET", Apply: nginxAllowGET, Probes: []cases.Probe{
		{Name: "sa test-service-account POST", From: allowedSA, To: nginx, Method: "POST", Expect: catalog.RBACDenied},
	}}},
})
