package e2e

import (
	"testing"

	"meshconform/framework/dataplane"
	"meshconform/framework/provision"
	"meshconform/framework/settings"
)

// The run's data plane follows the mode the state records; ambient and sidecar stop at
// admission without a data plane (DATAPLANE=0).
func TestDataPlaneOf(t *testing.T) {
	for _, tc := range []struct {
		mode        string
		noDataPlane bool
		want        dataplane.DataPlane
	}{
		{"", false, dataplane.Sidecar{Running: true}},
		{settings.ModeSidecar, true, dataplane.Sidecar{}},
		{settings.ModeProxyless, false, dataplane.Proxyless{}},
		{settings.ModeAmbient, false, dataplane.Ambient{Running: true}},
		{settings.ModeAmbient, true, dataplane.Ambient{}},
	} {
		st := provision.State{}
		st.Istio.DataplaneMode = tc.mode
		st.Settings.NoDataPlane = tc.noDataPlane
		if got := dataPlaneOf(st); got != tc.want {
			t.Errorf("mode %q, DATAPLANE=0 %t: %#v, want %#v", tc.mode, tc.noDataPlane, got, tc.want)
		}
	}
}
