package behaviors

import (
	"meshconform/framework/posture"
)

var _ = registerPosture(Want{ID: "POSTURE-007", Before: posture.Fail, After: posture.Pass, Why: "no NetworkPolicy selects istiod until hardening adds one"})
