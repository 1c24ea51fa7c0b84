package provision

import (
	"context"
	"fmt"
	"io"
	"os"

	"meshconform/framework/cluster"
	"meshconform/framework/settings"
)

// Acquire gives a suite its run: the state the e2e driver left in MESHCONFORM_STATE (checked
// reachable; the driver owns it and ends it), or else a fresh Up, which the caller owns and
// must end with End, as a driver's Session does. Call it once, in Ginkgo's first process
// (SynchronizedBeforeSuite), and pass State.Marshal() to the others.
func Acquire(ctx context.Context, s settings.Settings, log io.Writer, opts ...Option) (st State, owned bool, err error) {
	if path := os.Getenv(StateEnv); path != "" {
		st, err := LoadState(path)
		if err != nil {
			return st, false, err
		}
		rc, err := st.RESTConfig()
		if err != nil {
			return st, false, err
		}
		if _, err := cluster.ServerVersion(ctx, rc, 0); err != nil {
			return st, false, fmt.Errorf("the run's cluster (%s, context %s from %s=%s) is not reachable: %w", st.Server, st.Context, StateEnv, path, err)
		}
		if log != nil {
			fmt.Fprintf(log, "meshconform: using the run brought up by the driver: %s\n", st.Summary())
		}
		return st, false, nil
	}
	st, err = Up(ctx, s, log, opts...)
	return st, err == nil, err
}
