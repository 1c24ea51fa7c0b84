// Package posture audits a live cluster against the security best practices of
// ../shared/BEHAVIORS.md (POSTURE-001..007) without changing anything: it only gets and lists,
// with exactly the permissions of manifests/rbac/posture-clusterrole.yaml.
//
// Run reads the cluster once into a snapshot and evaluates every check against it, so a check
// is a pure function of what was read (tier-0 testable) and the reads are few and paged.
// Main is the `meshconform posture` command.
package posture

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"meshconform/framework/catalog"
)

// Result is the outcome of one check.
type Result string

const (
	// Pass: nothing offends the check, or every offender is allow-listed.
	Pass Result = "pass"
	// Fail: at least one finding that no allow-list entry covers.
	Fail Result = "fail"
	// Error: the check could not be evaluated (a read failed, a CRD is missing).
	Error Result = "error"
)

// Check IDs, as in BEHAVIORS.md and framework/catalog.
const (
	MeshWideStrict       = "POSTURE-001"
	NothingWeakensStrict = "POSTURE-002"
	MeshWideDefaultDeny  = "POSTURE-003"
	SidecarsEverywhere   = "POSTURE-004"
	NoCaptureBypass      = "POSTURE-005"
	NoPrivilegedInit     = "POSTURE-006"
	ControlPlaneIsolated = "POSTURE-007"
)

// CheckIDs lists the checks in the order they run and are reported.
func CheckIDs() []string {
	return []string{MeshWideStrict, NothingWeakensStrict, MeshWideDefaultDeny,
		SidecarsEverywhere, NoCaptureBypass, NoPrivilegedInit, ControlPlaneIsolated}
}

// Finding is one object that offends a check, with the field that does and its value.
// For "missing object" checks (001, 003, 007) the object is the namespace it should be in.
type Finding struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Field is the offending field path, kubectl style, e.g.
	// metadata.annotations['traffic.sidecar.istio.io/excludeInboundPorts'].
	Field string `json:"field"`
	// Value is what the field holds (or "(absent)").
	Value string `json:"value"`
	// Message says in words what is wrong.
	Message string `json:"message"`
	// Allowed is set when an allow-list entry covers the finding.
	Allowed *Allowance `json:"allowed,omitempty"`

	subject subject // what allow-list entries are matched against
}

// Object is "Kind namespace/name" (or "Kind name" for cluster-scoped objects).
func (f Finding) Object() string {
	if f.Namespace == "" {
		return f.Kind + " " + f.Name
	}
	return f.Kind + " " + f.Namespace + "/" + f.Name
}

// String is the finding on one line, for terminals and failure messages.
func (f Finding) String() string {
	s := fmt.Sprintf("%s  %s = %s  (%s)", f.Object(), f.Field, f.Value, f.Message)
	if f.Allowed != nil {
		s += fmt.Sprintf("  [allowed by %s: %s]", f.Allowed.Rule, f.Allowed.Reason)
	}
	return s
}

// Allowance records which allow-list entry covered a finding, and why.
type Allowance struct {
	Entry  int    `json:"entry"` // index in the allow list, from 0
	Rule   string `json:"rule"`  // the entry's matchers, e.g. "namespace=legacy"
	Reason string `json:"reason"`
}

// CheckResult is the outcome of one POSTURE check.
type CheckResult struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Result Result `json:"result"`
	// Findings are the offenders no allow-list entry covers; any makes the check fail.
	Findings []Finding `json:"findings"`
	// Allowed are offenders an allow-list entry covers, reported with its reason.
	Allowed []Finding `json:"allowed"`
	// Remedy is one line saying how to make the check pass.
	Remedy string `json:"remedy"`
	// Examined says what the check looked at, e.g. "12 pods in 3 meshed namespaces".
	Examined string `json:"examined,omitempty"`
	// Notes are facts worth knowing that do not change the result.
	Notes []string `json:"notes,omitempty"`
	// Error is why the check could not be evaluated (Result == Error).
	Error string `json:"error,omitempty"`
}

// Report is the outcome of one audit.
type Report struct {
	Context string    `json:"context,omitempty"`
	Server  string    `json:"server,omitempty"`
	Started time.Time `json:"started"`
	// RootNamespace is Istio's root namespace and RootNamespaceSource where it was read
	// (the mesh config) or why a default was assumed.
	RootNamespace       string `json:"rootNamespace"`
	RootNamespaceSource string `json:"rootNamespaceSource"`
	// SystemNamespace is where istiod runs (its mesh config and NetworkPolicy live there).
	SystemNamespace       string `json:"systemNamespace"`
	SystemNamespaceSource string `json:"systemNamespaceSource"`
	// MeshedNamespaces are the namespaces in the mesh by either mode (sidecar injection or
	// ambient enrolment), AmbientNamespaces those of them in ambient mode. None is a finding
	// of POSTURE-004: the audit then had no workload to check.
	MeshedNamespaces  []string      `json:"meshedNamespaces"`
	AmbientNamespaces []string      `json:"ambientNamespaces,omitempty"`
	Checks            []CheckResult `json:"checks"`
	// MissingPermissions and Error are set when the audit could not run at all.
	MissingPermissions []string `json:"missingPermissions,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// Check returns the result of check id (e.g. "POSTURE-001").
func (r Report) Check(id string) (CheckResult, bool) {
	i := slices.IndexFunc(r.Checks, func(c CheckResult) bool { return c.ID == id })
	if i < 0 {
		return CheckResult{}, false
	}
	return r.Checks[i], true
}

// Counts returns how many checks passed, failed and errored.
func (r Report) Counts() (pass, fail, errored int) {
	for _, c := range r.Checks {
		switch c.Result {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			errored++
		}
	}
	return pass, fail, errored
}

// Exit codes of `meshconform posture`.
const (
	ExitPass     = 0 // every check passed
	ExitFindings = 1 // at least one check failed
	ExitError    = 2 // the audit could not run or a check could not be evaluated; bad flags
)

// ExitCode is 2 if the audit or any check errored, else 1 if any check failed, else 0.
// Errors win over findings: a check that could not look cannot vouch for anything.
func (r Report) ExitCode() int {
	if r.Error != "" || len(r.MissingPermissions) > 0 || len(r.Checks) == 0 {
		return ExitError
	}
	_, fail, errored := r.Counts()
	switch {
	case errored > 0:
		return ExitError
	case fail > 0:
		return ExitFindings
	}
	return ExitPass
}

// title is the check's title from the catalog (BEHAVIORS.md), without Markdown backticks.
func title(id string) string {
	b, ok := catalog.Lookup(id)
	if !ok {
		return id
	}
	return strings.ReplaceAll(b.Title, "`", "")
}
