package gate

import (
	"slices"
	"strings"
	"testing"

	"meshconform/framework/provision"
)

func TestParsePhase(t *testing.T) {
	for _, p := range Phases() {
		if got, err := ParsePhase(" " + string(p) + " "); err != nil || got != p {
			t.Errorf("%s: %v %v", p, got, err)
		}
	}
	if _, err := ParsePhase(""); err == nil || !strings.Contains(err.Error(), "MESHCONFORM_UPGRADE_PHASE is not set: the upgrade suite checks one phase per run; run it through `make e2e-upgrade FROM=… TO=…`") ||
		!strings.Contains(err.Error(), "before, after-inplace, after-canary") {
		t.Errorf("unset: %v", err)
	}
	if _, err := ParsePhase("after"); err == nil || !strings.Contains(err.Error(), `MESHCONFORM_UPGRADE_PHASE="after" is not a phase: use one of before, after-inplace, after-canary`) {
		t.Errorf("bad: %v", err)
	}
	if got := PhasesToRegister("after-canary"); !slices.Equal(got, []Phase{AfterCanary}) {
		t.Errorf("one phase: %v", got)
	}
	for _, env := range []string{"", "nonsense"} {
		if got := PhasesToRegister(env); !slices.Equal(got, Phases()) {
			t.Errorf("%q: %v", env, got)
		}
	}
}

func TestCheckEnv(t *testing.T) {
	env := map[string]string{SuitePhaseEnv: "after-inplace", SuiteFromEnv: "1.30.5", SuiteToEnv: "1.31.1", provision.StateEnv: "/r/run/state-inplace.json"}
	got, err := CheckEnv(func(k string) string { return env[k] })
	if err != nil || got != (Env{Phase: AfterInPlace, From: "1.30.5", To: "1.31.1"}) {
		t.Fatalf("%+v %v", got, err)
	}
	_, err = CheckEnv(func(string) string { return "" })
	for _, want := range []string{
		"MESHCONFORM_UPGRADE_PHASE is not set",
		"MESHCONFORM_UPGRADE_FROM is not set: name the Istio release to upgrade from",
		"MESHCONFORM_UPGRADE_TO is not set",
		"MESHCONFORM_STATE is not set: the upgrade suite runs against the cluster the e2e driver brought up",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("nothing set: lacks %q: %v", want, err)
		}
	}
	env[SuiteFromEnv], env[SuiteToEnv] = "1.31.1", "1.31.0"
	_, err = CheckEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "MESHCONFORM_UPGRADE_FROM=1.31.1 is newer than MESHCONFORM_UPGRADE_TO=1.31.0") {
		t.Errorf("downgrade: %v", err)
	}
}
