package behaviors

import (
	"meshconform/framework/posture"
	"meshconform/framework/workload"
)

var _ = registerPosture(Want{ID: "POSTURE-004", Before: posture.Fail, After: posture.Pass, FindingIn: workload.PlainClient, Why: "plain-client opts out of injection; the allow list then excuses it with a reason"})
