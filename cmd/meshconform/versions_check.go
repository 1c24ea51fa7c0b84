package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"meshconform"
	"meshconform/framework/mesh"
	"meshconform/framework/settings"
)

// The chart-source variables `versions check` reads, as make e2e reads them (framework/settings:
// same parsing, same default). Nothing else of the environment takes part, so a setting the
// check does not use cannot fail it.
var checkVariables = []string{"ISTIO_CHART_REPO", "ISTIO_CHART_DIR"}

// checkOptions are the flags of `versions check`.
type checkOptions struct {
	on      string        // -on: judge end of life on this day (YYYY-MM-DD); "" is today
	timeout time.Duration // -timeout: bound of reading the chart source
}

// releaseCheck is what `versions check` found.
type releaseCheck struct {
	source  string         // the chart source read, as mesh names it
	listed  mesh.Version   // versions.yaml's newest Istio
	held    bool           // whether the source holds listed
	newest  *mesh.Version  // the newest release the source holds
	fresh   []mesh.Version // releases newer than listed, newest first
	pastEOL []string       // listed releases past their minor's end of life
}

// newerReleases picks from available the releases (no pre-release: a beta is not something to
// support) newer than listed, newest first.
func newerReleases(listed mesh.Version, available []mesh.Version) []mesh.Version {
	var out []mesh.Version
	for _, v := range available {
		if v.Stable() && v.Compare(listed) > 0 {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b mesh.Version) int { return b.Compare(a) })
	return slices.Compact(out)
}

// newestPerMinor keeps the newest release of each minor of releases (newest first): versions.yaml
// lists one release per minor.
func newestPerMinor(releases []mesh.Version) []mesh.Version {
	var out []mesh.Version
	seen := map[string]bool{}
	for _, v := range releases {
		if !seen[v.MinorString()] {
			seen[v.MinorString()] = true
			out = append(out, v)
		}
	}
	return out
}

// checkChartSource reads the source settings s name and compares what it holds with v.
func checkChartSource(ctx context.Context, v meshconform.Versions, s settings.Settings, now time.Time) (releaseCheck, error) {
	listed, err := mesh.ParseVersion(v.DefaultIstio())
	if err != nil {
		return releaseCheck{}, fmt.Errorf("versions.yaml's newest Istio: %w", err)
	}
	in, err := mesh.New(mesh.Options{Version: listed.String(), ChartRepo: s.ChartRepo, ChartDir: s.ChartDir})
	if err != nil {
		return releaseCheck{}, err
	}
	rc := releaseCheck{source: in.Source(), listed: listed, pastEOL: v.PastEndOfLife(now)}
	available, err := in.AvailableVersions(ctx)
	if err != nil {
		return rc, fmt.Errorf("reading %s: %w", rc.source, err)
	}
	for _, a := range available {
		if a == listed {
			rc.held = true
		}
		if a.Stable() && (rc.newest == nil || a.Compare(*rc.newest) > 0) {
			n := a
			rc.newest = &n
		}
	}
	if rc.newest == nil {
		return rc, fmt.Errorf("%s holds no Istio release (no version with all of base, istiod and gateway); set %s to %s, %s or a mirror of them (or %s to a directory of Istio's charts)",
			rc.source, mesh.EnvChartRepo, mesh.DefaultChartRepo, mesh.OCIChartRepo, mesh.EnvChartDir)
	}
	rc.fresh = newerReleases(listed, available)
	if !rc.held && len(rc.fresh) == 0 {
		// Nothing newer, and not even what versions.yaml lists: a stale mirror cannot say
		// that nothing is new.
		return rc, fmt.Errorf("%s does not hold Istio %s, versions.yaml's newest (its newest release is %s): a stale mirror, or the retired storage.googleapis.com repository, cannot tell what is new; set %s to %s or %s (or a current mirror)",
			rc.source, listed, rc.newest, mesh.EnvChartRepo, mesh.DefaultChartRepo, mesh.OCIChartRepo)
	}
	return rc, nil
}

// pasteLines are the lines that add the new releases to versions.yaml's istio: list, in its
// format: the newest release of each new minor or patch, newest first.
func pasteLines(fresh []mesh.Version) []string {
	var out []string
	for _, r := range newestPerMinor(fresh) {
		out = append(out, fmt.Sprintf("  - %q", r.String()))
	}
	return out
}

// printCheck prints what rc found and returns the exit code: 0 when nothing is new and nothing
// listed is past its end of life, exitFinding otherwise.
func printCheck(w io.Writer, v meshconform.Versions, rc releaseCheck) int {
	fmt.Fprintf(w, "read: %s (the releases holding base, istiod and gateway charts, as make e2e installs them)\n", rc.source)
	fmt.Fprintf(w, "versions.yaml's newest Istio: %s; the newest release there: %s\n", rc.listed, rc.newest)
	if !rc.held {
		fmt.Fprintf(w, "note: %s does not hold %s, which versions.yaml lists\n", rc.source, rc.listed)
	}
	if len(rc.fresh) == 0 {
		fmt.Fprintf(w, "new releases: none newer than %s\n", rc.listed)
	} else {
		names := make([]string, len(rc.fresh))
		for i, r := range rc.fresh {
			names[i] = r.String()
		}
		fmt.Fprintf(w, "new releases: %s (newer than %s)\n", strings.Join(names, ", "), rc.listed)
		fmt.Fprintln(w, "paste at the top of versions.yaml's istio: list (newest first, one release per minor):")
		for _, l := range pasteLines(rc.fresh) {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w, "then, in the same change (TestVersionsFile, TestUpgradePairsAreEachMinorToTheNext and TestGoModFollowsVersions check it):")
		listedMinors := map[string]string{}
		for _, i := range v.Istio {
			listedMinors[minorOf(i)] = i
		}
		for _, r := range newestPerMinor(rc.fresh) {
			if old, ok := listedMinors[r.MinorString()]; ok {
				fmt.Fprintf(w, "  - remove %q from istio: (%s replaces it)\n", old, r)
			} else {
				fmt.Fprintf(w, "  - add istioKubernetes %q (and istioEndOfLife %q when the table gives one) from Istio %s's announcement and Istio's support table\n", r.MinorString(), r.MinorString(), r.MinorString())
			}
		}
		fmt.Fprintln(w, "  - set upgrades: to each listed minor to the next")
		fmt.Fprintf(w, "  - set go.mod's istio.io/api and istio.io/client-go to v%s (go get istio.io/api@v%s istio.io/client-go@v%s)\n", rc.fresh[0], rc.fresh[0], rc.fresh[0])
	}
	if len(rc.pastEOL) == 0 {
		fmt.Fprintln(w, "end of life: no listed release is past it")
	}
	for _, i := range rc.pastEOL {
		date, _, _ := v.EndOfLife(i)
		fmt.Fprintf(w, "end of life: Istio %s is past it (istioEndOfLife %q: %q, from Istio's support table): drop %q from istio:, with its istioKubernetes, istioEndOfLife and upgrade pair\n",
			i, minorOf(i), date, i)
	}
	code := exitOK
	if len(rc.fresh) > 0 || len(rc.pastEOL) > 0 {
		code = exitFinding
	}
	fmt.Fprintf(w, "versions check: %d new, %d past end of life: exit %d\n", len(rc.fresh), len(rc.pastEOL), code)
	return code
}

// minorOf is "1.31" of "1.31.4".
func minorOf(release string) string {
	if v, err := mesh.ParseVersion(release); err == nil {
		return v.MinorString()
	}
	return release
}

// versionsCheck is `meshconform versions check`: the chart source settings from the
// environment (or the flags registered under their settings names), compared with v.
func versionsCheck(v meshconform.Versions, fs *flag.FlagSet, o checkOptions, stdout, stderr io.Writer) int {
	now := time.Now()
	if o.on != "" {
		d, err := time.Parse(time.DateOnly, o.on)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform versions check: -on %q is not a day like 2026-12-01\n", o.on)
			return exitUsage
		}
		now = d
	}
	env := func(k string) (string, bool) {
		if slices.Contains(checkVariables, k) {
			return os.LookupEnv(k)
		}
		return "", false
	}
	wd, _ := os.Getwd()
	s, err := settings.Load(env, fs, wd)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform versions check: the chart source settings (as make e2e reads them):\n%v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	rc, err := checkChartSource(ctx, v, s, now)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform versions check: %v\n", err)
		return exitUsage
	}
	return printCheck(stdout, v, rc)
}
