package behaviors

import (
	"context"
	"fmt"

	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "CP-003", Name: "no CA authentication failures",
	Serial: true,
	Run: func(ctx context.Context, t *e2e.T) {
		f, err := scanRun(ctx, t)
		if err != nil {
			t.Unjudged(fmt.Errorf("reading istiod's logs: %w", err), nil)
		}
		t.Check(f.CAAuthFailed.Absent(), "no serverca JWT authentication failures", findingFields(f.CAAuthFailed, f.Lines))
	},
})
