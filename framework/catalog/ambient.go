package catalog

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// AmbientVerdict says how a behaviour's catalog outcome (the sidecar's, as the seeds wrote it)
// holds in Istio's ambient mode.
type AmbientVerdict string

const (
	// AmbientSame: the expected outcome holds in ambient mode as written.
	AmbientSame AmbientVerdict = "same"
	// AmbientDiffers: Istio gives another outcome in ambient mode; the cell states it.
	AmbientDiffers AmbientVerdict = "differs"
	// AmbientLeftOut: the behaviour has no meaning in ambient mode; the cell says why.
	AmbientLeftOut AmbientVerdict = "left out"
)

// needsWaypoint is the marker after the verdict for outcomes only a waypoint produces.
const needsWaypoint = "needs waypoint"

// sourceMarker starts the citation in an ambient cell.
const sourceMarker = "source:"

// Ambient is a behaviour's ambient column: `same: <outcome> source: <citation>`,
// `differs: <outcome> source: <citation>` (either with `, needs waypoint` after the verdict
// when only a waypoint gives the outcome, i.e. L7), or `left out: <reason>`.
type Ambient struct {
	Verdict AmbientVerdict
	// NeedsWaypoint: the outcome needs a waypoint in the path (HTTP attributes, JWT, XFCC);
	// Expected then says what happens without one.
	NeedsWaypoint bool
	// Expected is the outcome in ambient mode, Markdown as written (same and differs).
	Expected string
	// Source is the citation for Expected: file:line in istio/istio or istio/ztunnel, an
	// Istio test or a recorded doc output.
	Source string
	// Reason is why the behaviour has no ambient meaning (left out).
	Reason string
}

// LeftOut reports whether the behaviour has no meaning in ambient mode (Reason says why).
func (a Ambient) LeftOut() bool { return a.Verdict == AmbientLeftOut }

// Modes says which data-plane modes run the behaviour, as the README's behaviour table shows
// it: every behaviour is the sidecar's; ambient follows, with "(differs)" where its outcome is
// another and "(waypoint)" where only a waypoint gives it; then proxyless where the catalog's
// proxyless table judges it, with "(deviation)" where the source predicts one.
func (b Behavior) Modes() string {
	switch b.Proxyless.Verdict {
	case ProxylessAnalogue:
		return b.sidecarAmbientModes() + ", proxyless"
	case ProxylessDeviation:
		return b.sidecarAmbientModes() + ", proxyless (deviation)"
	}
	return b.sidecarAmbientModes()
}

// sidecarAmbientModes is Modes without the proxyless data plane.
func (b Behavior) sidecarAmbientModes() string {
	a := b.Ambient
	switch {
	case a.Verdict == "":
		return "sidecar"
	case a.LeftOut():
		return "sidecar"
	}
	var notes []string
	if a.Verdict == AmbientDiffers {
		notes = append(notes, "differs")
	}
	if a.NeedsWaypoint {
		notes = append(notes, "waypoint")
	}
	if len(notes) == 0 {
		return "sidecar, ambient"
	}
	return "sidecar, ambient (" + strings.Join(notes, ", ") + ")"
}

// ParseAmbient reads an ambient cell; the error says what is wrong and what a cell looks like.
func ParseAmbient(cell string) (Ambient, error) {
	const want = "write `same: <outcome> source: <citation>`, `differs: <outcome> source: <citation>` " +
		"(with `, needs waypoint` after the verdict where only a waypoint gives the outcome) or `left out: <reason>`"
	cell = strings.TrimSpace(cell)
	if cell == "" || cell == "—" {
		return Ambient{}, errors.New("empty: " + want)
	}
	head, rest, ok := strings.Cut(cell, ":")
	if !ok {
		return Ambient{}, fmt.Errorf("%q has no verdict: %s", abbreviate(cell), want)
	}
	head, rest = strings.TrimSpace(head), strings.TrimSpace(rest)
	verdict, marker, _ := strings.Cut(head, ",")
	a := Ambient{Verdict: AmbientVerdict(strings.TrimSpace(verdict))}
	switch marker = strings.TrimSpace(marker); {
	case marker == needsWaypoint:
		a.NeedsWaypoint = true
	case marker != "":
		return Ambient{}, fmt.Errorf("verdict %q: %q is not %q", head, marker, needsWaypoint)
	}
	switch a.Verdict {
	case AmbientLeftOut:
		if a.NeedsWaypoint {
			return Ambient{}, fmt.Errorf("%q: a behaviour left out needs no waypoint", head)
		}
		if rest == "" {
			return Ambient{}, errors.New("left out without a reason: write `left out: <why ambient has no such behaviour>`")
		}
		a.Reason = rest
		return a, nil
	case AmbientSame, AmbientDiffers:
	default:
		return Ambient{}, fmt.Errorf("verdict %q is none of same, differs, left out: %s", a.Verdict, want)
	}
	i := markerIndex(rest)
	if i < 0 {
		return Ambient{}, fmt.Errorf("%s outcome has no citation: end it with `source: <file:line, Istio test or doc>`", a.Verdict)
	}
	if j := markerIndex(rest[i+len(sourceMarker):]); j >= 0 {
		return Ambient{}, fmt.Errorf("%q appears twice: one citation list per cell", sourceMarker)
	}
	a.Expected = strings.TrimRight(strings.TrimSpace(rest[:i]), ";,")
	a.Source = strings.TrimSpace(rest[i+len(sourceMarker):])
	switch {
	case a.Expected == "":
		return Ambient{}, fmt.Errorf("%s: no outcome before %q", a.Verdict, sourceMarker)
	case a.Source == "":
		return Ambient{}, fmt.Errorf("%s: nothing after %q", a.Verdict, sourceMarker)
	}
	return a, nil
}

// markerIndex finds "source:" as a word of s (at its start, or after a space or ';', so that
// `from.source:` inside code does not count), -1 if absent.
func markerIndex(s string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], sourceMarker)
		if i < 0 {
			return -1
		}
		i += off
		if i == 0 || unicode.IsSpace(rune(s[i-1])) || s[i-1] == ';' {
			return i
		}
		off = i + len(sourceMarker)
	}
}

func abbreviate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// NotJudgedInAmbient says why an ambient run leaves b out, "" when b is judged there as
// written. framework/dataplane has no ambient implementation yet: every spec that drives the
// data plane (labels dataplane and agent) would deploy, label and probe the sidecar way, and a
// result so obtained must not be reported as ambient's. Until it exists an ambient run judges
// only behaviours that need no data plane, no meshed fixtures, and whose ambient cell says the
// outcome is the same: the control plane's.
func (b Behavior) NotJudgedInAmbient() string {
	switch {
	case b.Ambient.LeftOut():
		return "not applicable in ambient mode: " + b.Ambient.Reason
	case b.HasLabel(LabelDataPlane) || b.HasLabel(LabelAgent):
		return "DATAPLANE_MODE=ambient: this behaviour needs the data plane, and the suites drive only the sidecar's so far " +
			"(no ambient implementation in framework/dataplane); judged the sidecar way its result would not be ambient's"
	case b.Area == AreaPosture:
		// The audit itself reads either mode (POSTURE-004/005), but the specs' fixtures are
		// meshed by injection labels: the ambient half of the pass-when is not exercised yet.
		return "DATAPLANE_MODE=ambient: the posture specs mesh their fixtures the sidecar way (injection labels), " +
			"so the ambient half of the behaviour is not exercised yet"
	case b.Ambient.Verdict != AmbientSame:
		return fmt.Sprintf("DATAPLANE_MODE=ambient: its ambient outcome is not the sidecar's (catalog: %s) and the suites do not judge that outcome yet", b.Ambient.Verdict)
	}
	return ""
}
