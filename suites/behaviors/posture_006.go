package behaviors

import (
	"meshconform/framework/dataplane"
	"meshconform/framework/posture"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// What it audits (istio-init) exists in the sidecar mode only.
var _ = registerPosture(Want{ID: "POSTURE-006", Before: posture.Fail, After: posture.Fail, FindingIn: workload.Sleep, Why: "without Istio CNI, istio-init needs NET_ADMIN/NET_RAW; hardening does not install CNI"}, func(b *e2e.Behavior) { b.Requires = cases.Requires{Mode: dataplane.ModeSidecar} })
