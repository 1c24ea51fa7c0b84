package behaviors

import (
	"meshconform/framework/posture"
)

var _ = registerPosture(Want{ID: "POSTURE-002", Before: posture.Pass, After: posture.Pass, Why: "no PeerAuthentication weakens STRICT in the audited namespace"})
