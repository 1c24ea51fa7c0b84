package behaviors

import (
	"context"
	"fmt"

	"meshconform/suites/internal/e2e"
)

// CP-003 scans istiod's logs for a rejected CSR in what istiod 1.30 and 1.31 print
// (PatternCAAuthFailed) and in seed 000's older wording; the evidence says which matched.
var _ = e2e.Register(e2e.Behavior{
	ID: "CP-003", Name: "no CA authentication failures",
	Serial: true,
	Run: func(ctx context.Context, t *e2e.T) {
		f, err := scanRun(ctx, t)
		if err != nil {
			t.Unjudged(fmt.Errorf("reading istiod's logs: %w", err), nil)
		}
		t.Check(f.CAAuthFailed.Absent(), "no CA authentication failures, in today's wording or the seed's", findingFields(f.CAAuthFailed, f.Lines))
	},
})
