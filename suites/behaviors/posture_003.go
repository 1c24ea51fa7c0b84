package behaviors

import (
	"meshconform/framework/posture"
)

var _ = registerPosture(Want{ID: "POSTURE-003", Before: posture.Fail, After: posture.Pass, Why: "no default deny until hardening adds one"})
