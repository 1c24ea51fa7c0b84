package main

// `go run ./scripts/e2e upgrade` (make e2e-upgrade FROM=… TO=…): the upgrade gate. Istio FROM
// on a fresh kind cluster → the suites (base) → upgrade in place to TO → the suites (inplace)
// → TO installed as a canary revision beside it → the suites against the canary (canary) →
// report diff of base against each → down. The decisions (validation, the phases, their
// directories and states, the diffs and the exit code) are framework/gate's, tested at tier 0;
// this file is the flow, which only strings them together.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"meshconform/framework/cluster/preflight"
	"meshconform/framework/gate"
	"meshconform/framework/mesh"
	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
	"meshconform/framework/wait"
)

// upgradeRun is one gate in progress.
type upgradeRun struct {
	plan           gate.UpgradePlan
	s              settings.Settings
	st             provision.State
	extra          []string
	wd             string
	stdout, stderr io.Writer
	// skewCodes are the upgrade suite's exit codes by phase name.
	skewCodes map[string]int
	// installed is what the phases have installed since Up (set when a phase's change
	// starts): on a reused cluster Down uninstalls it.
	installed provision.Installed
}

// runUpgrade is the gate. Exit codes: GateCode's when every phase ran; 1 when a phase could
// not (Up, the upgrade, the canary install); 2 on bad FROM/TO or settings; 130 on interrupt.
func runUpgrade(ctx context.Context, s settings.Settings, extra []string, wd string, stdout, stderr io.Writer) int {
	plan, err := gate.PlanUpgrade(s, os.Getenv(gate.FromEnv), os.Getenv(gate.ToEnv))
	if err == nil {
		plan, err = plan.Only(os.Getenv(gate.PhasesEnv))
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: upgrade:\n%s\n(make e2e-upgrade FROM=<istio> TO=<istio>; see `go run ./scripts/e2e help`)\n", indentLines(err.Error()))
		return 2
	}
	u := &upgradeRun{plan: plan, s: plan.UpgradeSettings(s), extra: extra, wd: wd, stdout: stdout, stderr: stderr}
	start := time.Now()
	var names []string
	for _, ph := range plan.Phases {
		names = append(names, ph.Name)
	}
	fmt.Fprintf(stderr, "meshconform: upgrade gate: Istio %s → %s, phases %s (canary: TO as revision %s); reports in %s\n", plan.From, plan.To, strings.Join(names, ", "), gate.CanaryRevision, plan.Dir)
	if note := gate.ZtunnelNote(s); note != "" {
		fmt.Fprintf(stderr, "meshconform: upgrade gate: %s\n", note)
	}
	// Reports of an earlier gate would stand in for a phase that wrote none.
	if err := os.RemoveAll(plan.Dir); err != nil {
		fmt.Fprintf(stderr, "meshconform: upgrade: clearing %s: %v\n", plan.Dir, err)
		return 1
	}

	toSettings := u.s
	toSettings.IstioVersion = plan.To
	toImages, err := provision.IstioImages(ctx, toSettings)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform: %v\n", err)
		return 1
	}
	if a := gate.AgentImageFor(u.s.AgentImage, plan.From, plan.To); a != "" && a != u.s.AgentImage {
		toImages = append(toImages, a) // TO's pilot-agent, for its grpc-agent pods
	}
	return provision.Session(ctx, u.s, stderr, func(ctx context.Context, st provision.State) int {
		u.st = st
		return u.phasesThenGate(ctx)
	},
		provision.WithPreflight(preflight.Options{Charts: gate.BothVersions(plan.To)}),
		provision.WithImages(toImages...),
		// REUSE_CLUSTER=1: a kept kind cluster without Istio (FROM must be installed, not found),
		// left as found, pass or fail: every revision the gate installed is uninstalled.
		provision.WithNoIstioBefore("the upgrade gate starts from Istio "+plan.From),
		provision.WithUninstallFromReused(func() provision.Installed { return u.installed }),
		provision.AfterDown(func(e provision.Ended) {
			fmt.Fprintf(stderr, "meshconform: upgrade gate %s → %s ended after %s (%s); reports in %s\n",
				plan.From, plan.To, provision.Elapsed(time.Since(start)), e.Outcome, plan.Dir)
		}))
}

// phasesThenGate runs the phases on the run Up brought up and, when every one ran, diffs
// their reports. Its exit code is GateCode's, or the phases' when one could not run or on
// interrupt.
func (u *upgradeRun) phasesThenGate(ctx context.Context) int {
	if code := u.phases(ctx); code != 0 || ctx.Err() != nil {
		return code
	}
	code := 0
	_ = u.step("gate (report diff)", func() error {
		var skewFailed []string
		for _, ph := range u.plan.Phases {
			if u.skewCodes[ph.Name] != 0 {
				skewFailed = append(skewFailed, ph.Name)
			}
		}
		results := gate.RunGate(u.plan.Diffs())
		gate.PrintGate(u.stdout, results, skewFailed)
		code = gate.GateCode(results, skewFailed)
		return exitErr(code)
	})
	return code
}

// phases runs each phase: its control-plane change, then the upgrade suite and the behaviour
// suites. The code is 1 when a phase could not run, 130 on interrupt.
func (u *upgradeRun) phases(ctx context.Context) int {
	u.skewCodes = map[string]int{}
	for _, ph := range u.plan.Phases {
		if ctx.Err() != nil {
			return provision.ExitInterrupted
		}
		label := fmt.Sprintf("phase %s (Istio %s, revision %s)", ph.Name, ph.Version, gate.RevisionName(ph.Revision))
		var st provision.State
		err := u.step(label+": "+string(ph.Action), func() error {
			var err error
			st, err = u.controlPlane(ctx, ph)
			return err
		})
		if err != nil {
			fmt.Fprintf(u.stderr, "meshconform: %v\n", err)
			return 1
		}
		path := ph.StatePath(u.st.RunDir)
		if err := st.Save(path); err != nil {
			fmt.Fprintf(u.stderr, "meshconform: saving the state of phase %s: %v\n", ph.Name, err)
			return 1
		}
		_ = u.step(label+": upgrade suite", func() error {
			c := ginkgo(ctx, u.wd, ph.SkewArgs(u.extra), ph.SkewEnv(u.plan, path), u.stdout, u.stderr)
			u.skewCodes[ph.Name] = c
			return exitErr(c)
		})
		if ctx.Err() != nil {
			return provision.ExitInterrupted
		}
		// The behaviour suites' failures are the diff's to judge (a behaviour failing on FROM
		// and TO alike is no regression), so their exit code is only reported.
		_ = u.step(label+": behaviour suites", func() error {
			return exitErr(ginkgo(ctx, u.wd, GinkgoArgs(ph.PhaseSettings(u.s), u.extra), ph.BehaviorEnv(path), u.stdout, u.stderr))
		})
	}
	return 0
}

func exitErr(code int) error {
	if code == 0 {
		return nil
	}
	return errors.New("exit " + strconv.Itoa(code))
}

// controlPlane makes the phase's change to the control plane, checks what runs afterwards and
// returns the phase's state.
func (u *upgradeRun) controlPlane(ctx context.Context, ph gate.UpgradePhase) (provision.State, error) {
	log := slog.New(slog.NewTextHandler(prefixWriter{u.stderr, "  "}, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	start := time.Now()
	var waits wait.Sum
	ctx = wait.WithMeter(ctx, &waits)
	switch ph.Action {
	case gate.ActionUpgradeInPlace:
		u.installed.Version = ph.Version
		o := provision.MeshOptions(u.s, u.st) // the releases Up installed, at FROM
		o.Logger = log
		inst, err := mesh.New(o)
		if err != nil {
			return provision.State{}, err
		}
		if err := inst.Upgrade(ctx, ph.Version); err != nil {
			return provision.State{}, err
		}
	case gate.ActionInstallCanary:
		if u.installed.Others == nil {
			u.installed.Others = map[string]string{}
		}
		u.installed.Others[ph.Revision] = ph.Version
		s := u.s
		s.IstioVersion, s.IstioRevision = ph.Version, ph.Revision
		o := provision.MeshOptions(s, u.st)
		o.Logger = log
		inst, err := mesh.New(o)
		if err != nil {
			return provision.State{}, err
		}
		if err := inst.Install(ctx); err != nil {
			return provision.State{}, err
		}
	}
	kube, err := u.st.Kube()
	if err != nil {
		return provision.State{}, err
	}
	found, err := mesh.Detect(ctx, kube)
	if err != nil {
		return provision.State{}, err
	}
	cp, err := gate.ControlPlaneFor(found, ph)
	if err != nil {
		return provision.State{}, err
	}
	fmt.Fprintf(u.stderr, "  %s\n", cp)
	st := ph.PhaseState(u.st)
	st.Istio.Namespace, st.Istio.TrustDomain, st.Istio.RootNamespace = cp.Namespace, cp.TrustDomain, cp.RootNamespace
	if ph.Action != gate.ActionInstall {
		// The phase's istio phase is its own change of the control plane (Up's are base's).
		st.Phases = append(st.Phases, report.Measured(report.PhaseIstio, time.Since(start), waits.Summed().Wall))
	}
	return st, nil
}

// step runs fn between a start line and an end line with the elapsed time.
func (u *upgradeRun) step(name string, fn func() error) error {
	fmt.Fprintf(u.stderr, "meshconform: upgrade: %s ...\n", name)
	start := time.Now()
	err := fn()
	took := provision.Elapsed(time.Since(start))
	if err != nil {
		fmt.Fprintf(u.stderr, "meshconform: upgrade: %s failed after %s: %v\n", name, took, err)
		return err
	}
	fmt.Fprintf(u.stderr, "meshconform: upgrade: %s done in %s\n", name, took)
	return nil
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
