package behaviors

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"meshconform/framework/dataplane"
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "PROBE-003", Name: "a probe port outside STRICT keeps the pod Ready",
	Requires: cases.Requires{Mode: dataplane.ModeSidecar}, Timeout: 15 * time.Minute,
	Namespaces: strictServerNamespace,
	Objects: func(e cases.Env) []policy.Object {
		return append(namespaceStrict(e), ProbePortPermissive(e.NS(cases.Server)))
	},
	Run: func(ctx context.Context, t *e2e.T) {
		t.Apply(ctx, namespaceStrict(t.Env))
		By("portLevelMtls PERMISSIVE on the probe port 8081")
		t.Apply(ctx, []policy.Object{ProbePortPermissive(t.Env.NS(cases.Server))})
		t.Deploy(ctx, cases.Server, workload.ProbePort)
		By("excludeInboundPorts on the probe port 8081")
		t.Deploy(ctx, cases.Server, workload.ProbePortExcluded)
		t.Check(nil, "Ready with the probe port PERMISSIVE (portLevelMtls) and with it excluded from capture", nil)
	},
})

// ProbePortPermissive keeps probe-port STRICT except its probe port 8081. The port is the
// container port: portLevelMtls is keyed by the target port, not the Service's.
func ProbePortPermissive(ns string) policy.Object {
	return policy.PeerAuthentication(ns, "probe-port",
		policy.Selector(map[string]string{"app": "probe-port"}), policy.Mode(policy.MTLSStrict),
		policy.PortMTLS(8081, policy.MTLSPermissive))
}
