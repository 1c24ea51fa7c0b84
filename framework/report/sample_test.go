package report

import (
	"fmt"
	"time"

	"meshconform"
	"meshconform/framework/catalog"
)

// sampleRuns are made-up runs over the supported versions (versions.yaml: every Istio
// release on the two newest node images) with every non-posture behaviour of the catalog,
// shaped like real ones: most pass with the documented outcome, and a few of each other kind.
// The browser test checks the page against them and the README's screenshot shows them.
func sampleRuns() []Report {
	v := meshconform.SupportedVersions()
	images := v.Kubernetes[:min(2, len(v.Kubernetes))]
	date := time.Date(2026, 11, 20, 3, 17, 0, 0, time.UTC)
	var out []Report
	for ii, istio := range v.Istio {
		for ki, img := range images {
			r := Report{Run: Run{
				ID: "nightly-" + istio + "-" + img.Version, IstioVersion: istio, KubernetesVersion: img.Version,
				NodeImage: img.Image, Mode: ModeSidecar, Cluster: ClusterCreated, Date: date,
				Source: "cells/reports-istio-" + istio + "-k8s-" + img.Version + "/conformance.json",
			}, Timings: &Timings{TotalSeconds: new(float64(1290 + 73*ii + 41*ki))}}
			for _, b := range catalog.All() {
				if b.Area == catalog.AreaPosture {
					continue
				}
				if bh, ok := sampleBehavior(b, ii, ki); ok {
					r.Behaviors = append(r.Behaviors, bh)
				}
			}
			r.finish()
			out = append(out, r)
		}
	}
	return out
}

// sampleBehavior is behaviour b on the ii-th Istio and ki-th node image; false: not run.
func sampleBehavior(b catalog.Behavior, ii, ki int) (Behavior, bool) {
	spec := string(b.Area) + " " + b.Title
	pass := func(c Classification, e Evidence) Behavior {
		return Behavior{ID: b.ID, Result: Pass, Classification: c, Reason: "saw " + e.Summary(), Evidence: []Evidence{withSpec(e, spec)},
			Specs: []SpecResult{{Name: spec, Result: Pass, DurationSeconds: 4.2}}, DurationSeconds: 4.2}
	}
	fail := func(c Classification, e Evidence, msg string) Behavior {
		return Behavior{ID: b.ID, Result: Fail, Classification: c, Reason: "saw " + e.Summary(), Evidence: []Evidence{withSpec(e, spec)},
			Specs: []SpecResult{{Name: spec, Result: Fail, Message: msg, DurationSeconds: 61.5}}, DurationSeconds: 61.5}
	}
	skip := func(msg string) Behavior {
		return Behavior{ID: b.ID, Result: Skip, Specs: []SpecResult{{Name: spec, Result: Skip, Message: msg}}}
	}
	older := ii > 0
	switch {
	case b.ID == "MTLS-012":
		return skip("label slow not selected (LABELS=slow runs it)"), true
	case b.ID == "MTLS-002" && older && ki == 1:
		return fail(Deviation, plainAccepted, "expected PlaintextRejected 3 times in a row within 60s, saw HTTP 200, curl exit 0"), true
	case b.ID == "MTLS-008" && !older:
		return pass(Equivalent, sampleEvidence(0, 56, "curl: (56) Recv failure: Connection reset by peer", "", "mesh-client")), true
	case b.ID == "MTLS-003" && older:
		return pass(Equivalent, sampleEvidence(0, 52, "curl: (52) Empty reply from server", "", "mesh-client container istio-proxy")), true
	case b.ID == "PROBE-002" && !older && ki == 1:
		return fail("", Evidence{Text: "pod probe-norewrite became Ready: readiness probe passed without the rewrite"},
			"expected the pod never to become Ready, it was Ready after 12s"), true
	case b.ID == "CERT-004" && older:
		return Behavior{}, false // the older run predates the spec
	case b.ID == "MTLS-007" && ki == 1:
		return skip("disruptive: off outside a cluster the suite created"), true
	}
	var e Evidence
	switch {
	case len(b.Expectations) == 0:
		e = Evidence{Text: b.Expected, Fields: map[string]string{"checked": "yes"}}
	default:
		switch b.Expectations[0].Name {
		case "PlaintextRejected":
			e = sampleEvidence(0, 56, "curl: (56) Recv failure: Connection reset by peer", "", "plain-client")
		case "RBACDenied":
			e = sampleEvidence(403, 0, "", "RBAC: access denied", "mesh-client")
		case "DisableVsStrict", "UpstreamConnectError":
			e = sampleEvidence(503, 0, "", "upstream connect error or disconnect/reset before headers. reset reason: connection termination", "mesh-client")
		default:
			e = sampleEvidence(200, 0, "", `{"headers":{"Host":"httpbin:8000"}}`, "mesh-client")
		}
	}
	c := Documented
	if len(b.Expectations) == 0 {
		c = ""
	}
	return pass(c, e), true
}

var plainAccepted = sampleEvidence(200, 0, "", "<!DOCTYPE html><title>Welcome to nginx!</title>", "plain-client")

func sampleEvidence(code, exit int, errLine, body, client string) Evidence {
	where := "pod mc-sample/" + client
	text := fmt.Sprintf("curl -sS http://server.mc-sample:8080/ from %s\nHTTP %03d, curl exit %d", where, code, exit)
	if errLine != "" {
		text += "\n" + errLine
	}
	if body != "" {
		text += "\nbody: " + body
	}
	return Evidence{Text: text, HTTPCode: new(code), CurlExit: new(exit), ErrorLine: errLine, Body: body, Where: where, Attempts: 3}
}

func withSpec(e Evidence, spec string) Evidence { e.Spec = spec; return e }
