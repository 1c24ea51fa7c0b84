package behaviors

import (
	"errors"
	"fmt"
	"regexp"

	"meshconform/framework/catalog"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

var _ = e2e.Register(e2e.Behavior{
	ID: "CERT-001", Name: "X-Forwarded-Client-Cert carries the server's and the client's SPIFFE identities",
	Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.Sleep),
	Steps: []cases.Step{{Name: "mesh client GET /headers", Probes: []cases.Probe{{
		Name: "mesh client", From: meshClient, To: cases.Target{Role: cases.Server, Sample: workload.Httpbin, Path: "/headers"},
		Expect: catalog.Allowed,
		Check: func(e cases.Env, o probe.Outcome) error {
			return CheckXFCC(o.Body, e.SPIFFE(cases.Server, "httpbin"), e.SPIFFE(cases.Client, "sleep"))
		},
	}}}},
})

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Seed 000 prints `Subject=""`: the key is there, its value may be empty.
var subjectKey = regexp.MustCompile(`(^|[;,])Subject=`)

// CheckXFCC asserts seed 000/004's X-Forwarded-Client-Cert shape on httpbin's /headers
// echo: By is the server's SPIFFE id, Hash 64 hex digits, a Subject key, URI the client's.
func CheckXFCC(body, wantBy, wantURI string) error {
	raw, err := probe.EchoedHeader(body, "X-Forwarded-Client-Cert")
	if err != nil {
		return fmt.Errorf("no X-Forwarded-Client-Cert in the echoed headers: %w", err)
	}
	els, err := probe.ParseXFCC(raw)
	if err != nil {
		return err
	}
	if len(els) == 0 {
		return fmt.Errorf("X-Forwarded-Client-Cert %q has no element", raw)
	}
	el := els[len(els)-1] // the element the server's own proxy appended
	var problems []string
	if el.By != wantBy {
		problems = append(problems, fmt.Sprintf("By=%q, want %q", el.By, wantBy))
	}
	if !hexHash.MatchString(el.Hash) {
		problems = append(problems, fmt.Sprintf("Hash=%q, want 64 hex digits", el.Hash))
	}
	if !subjectKey.MatchString(raw) {
		problems = append(problems, "no Subject= key")
	}
	found := false
	for _, u := range el.URI {
		found = found || u == wantURI
	}
	if !found {
		problems = append(problems, fmt.Sprintf("URI=%q, want %q", el.URI, wantURI))
	}
	if len(problems) > 0 {
		return fmt.Errorf("X-Forwarded-Client-Cert %q: %v", raw, problems)
	}
	return nil
}

// CheckNoXFCC asserts that httpbin's /headers echo carries no X-Forwarded-Client-Cert: the
// request reached the app without an mTLS identity (MTLS-013, MTLS-014).
func CheckNoXFCC(body string) error {
	return checkNotEchoed(body, "X-Forwarded-Client-Cert", "the request carried an mTLS identity")
}

// checkNotEchoed asserts that httpbin's /headers echo lacks header name; when the app saw it,
// the error says so and why that is wrong.
func checkNotEchoed(body, name, why string) error {
	v, err := probe.EchoedHeader(body, name)
	switch {
	case errors.Is(err, probe.ErrNotEchoed):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("the app saw %s %.80q: %s", name, v, why)
}
