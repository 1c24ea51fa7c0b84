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

// NotJudgedInAmbient says why an ambient run leaves b out, "" when the suites judge it there.
// The ambient data plane (framework/dataplane Ambient) enrols namespaces, waits for ztunnel's
// redirection and maps each probe's expectation to its ambient shape (AmbientExpectation); it
// judges the behaviours whose ambient cell is `same`, and the few `differs` whose outcome
// AmbientExpectation states (ambientMapped). A `same, needs waypoint` behaviour is not refused
// here: its spec requires a waypoint (cases.Requires.Waypoint, from the catalog's marker), which
// an ambient run puts in its path (suites/internal/e2e Scenario.PutWaypoint); its shapes are then
// the sidecar's, an Envoy's.
func (b Behavior) NotJudgedInAmbient() string {
	a := b.Ambient
	switch {
	case a.LeftOut():
		return "not applicable in ambient mode: " + a.Reason
	case b.Area == AreaPosture:
		// The audit itself reads either mode (POSTURE-004/005), but the specs' fixtures are
		// meshed by injection labels: the ambient half of the pass-when is not exercised yet.
		return "DATAPLANE_MODE=ambient: the posture specs mesh their fixtures the sidecar way (injection labels), " +
			"so the ambient half of the behaviour is not exercised yet"
	case b.HasLabel(LabelAgent):
		return "DATAPLANE_MODE=ambient: this behaviour needs a pilot-agent in the pod (Istio's grpc-agent template), which an ambient pod does not have"
	case a.Verdict == AmbientDiffers && !ambientMapped[b.ID]:
		return fmt.Sprintf("DATAPLANE_MODE=ambient: its ambient outcome is another (catalog: %s), which the suites do not judge yet: "+
			"framework/catalog AmbientExpectation maps the shapes that hold whatever the path, and this outcome depends on the behaviour "+
			"(a ztunnel reset where the sidecar answers 403, a request that succeeds, a proxy the pod does not have)", abbreviateCell(a.Expected))
	case a.Verdict != AmbientSame && a.Verdict != AmbientDiffers:
		return fmt.Sprintf("DATAPLANE_MODE=ambient: the catalog's ambient cell is %q, neither same nor differs", a.Verdict)
	}
	return ""
}

// ambientMapped are the `differs` behaviours judged in ambient mode: every expectation of theirs
// has its ambient shape in AmbientExpectation, as their ambient cell states it.
var ambientMapped = map[string]bool{
	// TCPForbidden becomes ztunnel's reset (exit 56), 52 in a race: the cell's outcome.
	"AUTHZ-009": true,
	// DisableVsStrict becomes 200: a DestinationRule cannot make an ambient client send
	// plaintext (the cell cites pilot/pkg/serviceregistry/ambient, which reads none, and
	// cluster_waypoint.go:295-297).
	"MTLS-008": true,
}

// The ambient shapes of the catalog's expectations, without a waypoint in the path. Istio's
// ambient tests judge every denial with CheckDeny (tests/integration/ambient/baseline_test.go
// 1.31:3008-3014), whose ztunnel arm is check.ConnectionResetByPeer() ("read: connection reset by
// peer", pkg/test/framework/components/echo/check/checkers.go:119-121) beside its "EOF" arm: curl's
// exit 56 `Recv failure: Connection reset by peer`, and its empty reply (52) when the close wins
// the race against the request.
var (
	// AmbientPlaintextRejected: plaintext to a STRICT ambient workload goes to ztunnel, whose
	// strict policy refuses a connection without a principal (baseline_test.go 1.31:865, CheckDeny
	// for a client without proxy capabilities). The sidecar's TLS and HTTP/2 shapes (35, 16) and a
	// refused connection (7) are not ztunnel's: no TLS is spoken to a plaintext client.
	AmbientPlaintextRejected = Expectation{
		Name:       PlaintextRejected.Name,
		Documented: Shape{Name: "ztunnel reset", HTTPCode: 0, CurlExit: 56, ErrorContains: TextConnectionReset},
		Equivalents: []Shape{
			{Name: "receive error", HTTPCode: 0, CurlExit: 56},
			{Name: "empty reply", HTTPCode: 0, CurlExit: 52},
		},
	}
	// AmbientTCPForbidden: ztunnel denies a TCP connection by resetting it (AUTHZ-009's cell;
	// TestAuthorizationL4 "not allow", baseline_test.go 1.31:1032, expects CheckDeny), the reset
	// documented and the empty reply its equivalent: the sidecar's shapes the other way round.
	AmbientTCPForbidden = Expectation{
		Name:        TCPForbidden.Name,
		Documented:  Shape{Name: "ztunnel reset", HTTPCode: 0, CurlExit: 56, ErrorContains: TextConnectionReset},
		Equivalents: []Shape{{Name: "receive error", HTTPCode: 0, CurlExit: 56}, {Name: "empty reply", HTTPCode: 0, CurlExit: 52}},
	}
	// AmbientDisableVsStrict: MTLS-008's cell: the ambient client gets 200, since ztunnel's
	// configuration reads no DestinationRule and tunnels by the destination's enrolment.
	AmbientDisableVsStrict = Expectation{
		Name:       DisableVsStrict.Name,
		Documented: Shape{Name: "200 (ambient: the DestinationRule cannot make the client send plaintext)", HTTPCode: 200, CurlExit: 0},
	}
)

// AmbientExpectation is the shape e takes in ambient mode, keeping its name. Allowed, the
// ingress gateway's own shapes (UntrustedCertificate, HTTPSRedirect: its Envoy, whatever the
// backend's mode) hold as written; the denials are ztunnel's; the rest (RBACDenied, Denied403,
// JWTRejected, UpstreamConnectError, BlackHole) are returned as written: they hold only through a
// waypoint or have no ambient counterpart, and NotJudgedInAmbient leaves out the behaviours whose
// ambient outcome differs from them.
func AmbientExpectation(e Expectation) Expectation {
	switch e.Name {
	case PlaintextRejected.Name:
		return AmbientPlaintextRejected
	case TCPForbidden.Name:
		return AmbientTCPForbidden
	case DisableVsStrict.Name:
		return AmbientDisableVsStrict
	}
	return e
}

// AmbientWithoutWaypoint reports whether AmbientExpectation(e) is what ambient mode gives
// without a waypoint in the path, whatever the behaviour: false for the shapes only an L7 proxy
// writes (RBACDenied's and Denied403's 403, JWTRejected's 401: ztunnel resets instead, or has no
// L7 rule to apply), for UpstreamConnectError (the port exclusion it needs is inert in ambient:
// MTLS-010's cell) and for BlackHole (EGRESS-001 is left out). A spec that expects one of them
// is not judged in ambient until a waypoint is in its path.
func AmbientWithoutWaypoint(e Expectation) bool {
	switch e.Name {
	case Allowed.Name, PlaintextRejected.Name, TCPForbidden.Name, DisableVsStrict.Name,
		UntrustedCertificate.Name, HTTPSRedirect.Name:
		return true
	}
	return false
}

// abbreviateCell shortens an ambient outcome for a left-out reason.
func abbreviateCell(s string) string {
	if r := []rune(s); len(r) > 160 {
		return string(r[:160]) + "…"
	}
	return s
}
