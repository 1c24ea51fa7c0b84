package behaviors

import (
	"meshconform/framework/dataplane"
	"meshconform/framework/posture"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// What it audits (excludeInboundPorts) exists in the sidecar mode only.
var _ = registerPosture(Want{ID: "POSTURE-005", Before: posture.Fail, After: posture.Pass, FindingIn: workload.HttpbinExcluded, Why: "httpbin-excluded bypasses capture; the allow list then excuses it"}, func(b *e2e.Behavior) { b.Requires = cases.Requires{Mode: dataplane.ModeSidecar} })
