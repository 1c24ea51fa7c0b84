package behaviors

import (
	"meshconform/framework/catalog"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "MTLS-008", Name: "a DISABLE DestinationRule makes a mesh client send plaintext to a STRICT server: 503 reset",
	Namespaces: serverAndClients([]workload.Sample{workload.Nginx}),
	Steps: []cases.Step{{Name: "nginx STRICT + DISABLE DestinationRule", Apply: func(e cases.Env) []policy.Object {
		return []policy.Object{
			policy.PeerAuthentication(e.NS(cases.Server), "nginx-auth",
				policy.Selector(map[string]string{"run": "my-nginx"}), policy.Mode(policy.MTLSStrict)),
			// In the client's namespace, as in seed 004 (applied where the client ran),
			// so it changes only this behaviour's client.
			policy.DestinationRule(e.NS(cases.Client), "disable-tls", "*."+e.NS(cases.Server)+".svc.cluster.local",
				policy.TLSMode(policy.TLSDisable)),
		}
	}, Probes: []cases.Probe{
		{Name: "mesh client", From: meshClient, To: nginx, Expect: catalog.DisableVsStrict},
	}}},
})
