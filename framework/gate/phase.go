package gate

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"meshconform"
	"meshconform/framework/mesh"
	"meshconform/framework/provision"
	"meshconform/framework/settings"
)

// Environment the driver sets for each run of the upgrade suite (suites/upgrade).
const (
	// SuitePhaseEnv names the phase this run of the upgrade suite checks.
	SuitePhaseEnv = "MESHCONFORM_UPGRADE_PHASE"
	// SuiteFromEnv and SuiteToEnv are the Istio versions upgraded from and to (make
	// e2e-upgrade's FROM and TO): the proxy image tags the phases expect.
	SuiteFromEnv = "MESHCONFORM_UPGRADE_FROM"
	SuiteToEnv   = "MESHCONFORM_UPGRADE_TO"
)

// ReportsSubdir is the directory, inside a phase's reports directory, that holds the upgrade
// suite's reports (Ginkgo's and the conformance report), beside the behaviour suites' own:
// report diff reads the phase directory as one run, so a skew failure is a failed behaviour of
// that phase.
const ReportsSubdir = "upgrade"

// Phase is one run of the upgrade suite between two control-plane changes.
type Phase string

const (
	// Before runs on Istio FROM: it deploys the skew workloads and records their proxies.
	Before Phase = "before"
	// AfterInPlace runs after the in-place upgrade to TO: the old client, not restarted, calls
	// a new server.
	AfterInPlace Phase = "after-inplace"
	// AfterCanary runs after TO was installed as a canary revision: the client is moved to it.
	AfterCanary Phase = "after-canary"
)

// Phases are every phase, in the order the driver runs them.
func Phases() []Phase { return []Phase{Before, AfterInPlace, AfterCanary} }

// ParsePhase checks a phase name.
func ParsePhase(s string) (Phase, error) {
	p := Phase(strings.TrimSpace(s))
	if slices.Contains(Phases(), p) {
		return p, nil
	}
	if p == "" {
		return "", fmt.Errorf("%s is not set: the upgrade suite checks one phase per run; run it through `make e2e-upgrade FROM=… TO=…` (the driver sets it), or set it to one of %s",
			SuitePhaseEnv, PhaseList())
	}
	return "", fmt.Errorf("%s=%q is not a phase: use one of %s", SuitePhaseEnv, s, PhaseList())
}

// PhaseList names every phase, in order, for messages.
func PhaseList() string {
	var names []string
	for _, p := range Phases() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

// PhasesToRegister are the phases whose specs the upgrade suite declares: the one named (a real
// run), or all of them when none is, so that `ginkgo --dry-run` lists the whole plan. A real run
// without a valid phase is stopped before the specs by CheckEnv.
func PhasesToRegister(env string) []Phase {
	if p, err := ParsePhase(env); err == nil {
		return []Phase{p}
	}
	return Phases()
}

// Env is what a run of the upgrade suite is told by the driver.
type Env struct {
	Phase    Phase
	From, To string
}

// CheckEnv reads and checks the upgrade suite's environment (getenv: os.Getenv, or a map in
// tests): the phase, FROM and TO as full versions with FROM older, and the driver's run state,
// without which the suite would bring up a cluster of its own. All problems at once.
func CheckEnv(getenv func(string) string) (Env, error) {
	var errs []error
	p, err := ParsePhase(getenv(SuitePhaseEnv))
	if err != nil {
		errs = append(errs, err)
	}
	e := Env{Phase: p, From: strings.TrimSpace(getenv(SuiteFromEnv)), To: strings.TrimSpace(getenv(SuiteToEnv))}
	if err := CheckVersions(e.From, e.To, SuiteFromEnv, SuiteToEnv); err != nil {
		errs = append(errs, err)
	}
	if getenv(provision.StateEnv) == "" {
		errs = append(errs, fmt.Errorf("%s is not set: the upgrade suite runs against the cluster the e2e driver brought up and upgrades between phases; run `make e2e-upgrade FROM=… TO=…`", provision.StateEnv))
	}
	return e, errors.Join(errs...)
}

// CheckVersions checks an upgrade's two versions: both set, both full releases (1.31.1), FROM
// strictly older than TO. fromName and toName are how the caller's user sets them (FROM and
// TO for make), for the messages. All problems at once.
func CheckVersions(from, to, fromName, toName string) error {
	example := meshconform.SupportedVersions().DefaultIstio()
	var errs []error
	var fv, tv mesh.Version
	okFrom, okTo := false, false
	for _, side := range []struct {
		name, val string
		v         *mesh.Version
		ok        *bool
		role      string
	}{{fromName, from, &fv, &okFrom, "the Istio release to upgrade from"}, {toName, to, &tv, &okTo, "the Istio release to upgrade to"}} {
		switch {
		case side.val == "":
			errs = append(errs, fmt.Errorf("%s is not set: name %s, a full version like %s", side.name, side.role, example))
		case !settings.ValidIstioVersion(side.val):
			errs = append(errs, fmt.Errorf("%s=%q is not a release: use a full version like %s%s", side.name, side.val, example, versionHint(side.val)))
		default:
			v, err := mesh.ParseVersion(side.val)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", side.name, side.val, err))
				continue
			}
			*side.v, *side.ok = v, true
		}
	}
	if okFrom && okTo {
		switch c := fv.Compare(tv); {
		case c == 0:
			errs = append(errs, fmt.Errorf("%s and %s are both %s: nothing to upgrade; set %s to a newer release", fromName, toName, from, toName))
		case c > 0:
			errs = append(errs, fmt.Errorf("%s=%s is newer than %s=%s: the gate upgrades, it does not downgrade; swap them", fromName, from, toName, to))
		}
	}
	return errors.Join(errs...)
}

func versionHint(v string) string {
	switch {
	case strings.HasPrefix(v, "v"):
		return " (drop the leading v)"
	case strings.Count(v, ".") == 1:
		return " (give the patch release too)"
	}
	return ""
}
