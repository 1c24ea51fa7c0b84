package behaviors

import (
	"meshconform/framework/posture"
)

var _ = registerPosture(Want{ID: "POSTURE-001", Before: posture.Fail, After: posture.Pass, Why: "Istio installs PERMISSIVE; hardening adds a mesh-wide STRICT policy"})
