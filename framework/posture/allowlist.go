package posture

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// AllowEntry exempts matching objects from checks. Every matcher that is set must match;
// at least one of Namespace, Workload, Selector, Annotation must be set, and Reason always.
//
//	allow:
//	  - namespace: legacy-billing
//	    checks: [POSTURE-004]
//	    reason: "batch jobs without sidecars until BILL-142 moves them to ambient"
//	  - workload: monitoring/node-exporter      # namespace/name of the pod or its owner
//	    reason: "scrapes host ports; isolated by NetworkPolicy monitoring/node-exporter"
//	  - selector: "app in (kafka, zookeeper)"   # a label selector on the object
//	    namespace: streaming
//	    checks: [POSTURE-005]
//	    reason: "broker ports bypass the sidecar; TLS is native (SEC-77)"
//	  - annotation: security.example.com/posture-exception   # key, or key=value
//	    reason: "exceptions approved by the security team carry this annotation"
type AllowEntry struct {
	// Namespace matches objects in this namespace (for 001/003/007: the namespace the
	// missing object belongs in).
	Namespace string `json:"namespace,omitempty"`
	// Workload is namespace/name: a pod by its name or its owner's (Deployment, StatefulSet,
	// DaemonSet, Job), or any other object by its name.
	Workload string `json:"workload,omitempty"`
	// Selector is a label selector (kubectl syntax) on the object's labels.
	Selector string `json:"selector,omitempty"`
	// Annotation is "key" (present) or "key=value" (equal) on the object's annotations.
	Annotation string `json:"annotation,omitempty"`
	// Checks limits the entry to these POSTURE IDs; empty means every check.
	Checks []string `json:"checks,omitempty"`
	// Reason is mandatory: why the exception is acceptable, shown next to every finding it
	// covers.
	Reason string `json:"reason"`

	selector labels.Selector
}

// AllowList is the parsed allow-list file.
type AllowList struct {
	Entries []AllowEntry `json:"allow"`
}

// LoadAllowList reads and validates an allow-list file.
func LoadAllowList(path string) (AllowList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return AllowList{}, fmt.Errorf("allow-list: %w", err)
	}
	al, err := ParseAllowList(data)
	if err != nil {
		return AllowList{}, fmt.Errorf("allow-list %s: %w", path, err)
	}
	return al, nil
}

// ParseAllowList parses and validates allow-list YAML. Unknown fields are errors (a typo
// such as "namepsace" would otherwise widen an entry to everything its other matchers match).
func ParseAllowList(data []byte) (AllowList, error) {
	var al AllowList
	if err := yaml.UnmarshalStrict(data, &al); err != nil {
		return AllowList{}, fmt.Errorf("not a valid allow list (top-level key `allow:`, a list of entries): %w", err)
	}
	var errs []error
	for i := range al.Entries {
		if err := al.Entries[i].compile(); err != nil {
			errs = append(errs, fmt.Errorf("allow[%d]: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return AllowList{}, err
	}
	return al, nil
}

// compile validates the entry and parses its selector.
func (e *AllowEntry) compile() error {
	var errs []error
	if strings.TrimSpace(e.Reason) == "" {
		errs = append(errs, errors.New("reason is missing: every exception must say why it is acceptable (reason: \"...\")"))
	}
	if e.Namespace == "" && e.Workload == "" && e.Selector == "" && e.Annotation == "" {
		errs = append(errs, errors.New("matches nothing: set namespace, workload, selector or annotation"))
	}
	if e.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(e.Namespace) {
			errs = append(errs, fmt.Errorf("namespace %q: %s", e.Namespace, msg))
		}
	}
	if e.Workload != "" {
		ns, name, ok := strings.Cut(e.Workload, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("workload %q: write it as namespace/name", e.Workload))
		} else if e.Namespace != "" && e.Namespace != ns {
			errs = append(errs, fmt.Errorf("workload %q is not in namespace %q: the entry could never match", e.Workload, e.Namespace))
		}
	}
	if e.Selector != "" {
		sel, err := labels.Parse(e.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("selector %q: %w", e.Selector, err))
		} else if sel.Empty() {
			errs = append(errs, fmt.Errorf("selector %q selects everything: use namespace, or a narrower selector", e.Selector))
		}
		e.selector = sel
	}
	if e.Annotation != "" {
		key, _, _ := strings.Cut(e.Annotation, "=")
		for _, msg := range validation.IsQualifiedName(key) {
			errs = append(errs, fmt.Errorf("annotation key %q: %s", key, msg))
		}
	}
	for _, id := range e.Checks {
		if !slices.Contains(CheckIDs(), id) {
			errs = append(errs, fmt.Errorf("checks: %q is not one of %s", id, strings.Join(CheckIDs(), ", ")))
		}
	}
	return errors.Join(errs...)
}

// Rule describes the entry's matchers, e.g. "namespace=legacy checks=POSTURE-004".
func (e AllowEntry) Rule() string {
	var parts []string
	if e.Namespace != "" {
		parts = append(parts, "namespace="+e.Namespace)
	}
	if e.Workload != "" {
		parts = append(parts, "workload="+e.Workload)
	}
	if e.Selector != "" {
		parts = append(parts, "selector="+e.Selector)
	}
	if e.Annotation != "" {
		parts = append(parts, "annotation="+e.Annotation)
	}
	if len(e.Checks) > 0 {
		parts = append(parts, "checks="+strings.Join(e.Checks, ","))
	}
	return strings.Join(parts, " ")
}

// subject is what an allow-list entry is matched against.
type subject struct {
	namespace   string
	name        string
	workload    string // the pod's owning workload name, when known
	labels      map[string]string
	annotations map[string]string
	// unlistable: no entry covers the finding (an audit that found nothing to check).
	unlistable bool
}

func (e AllowEntry) matches(check string, s subject) bool {
	if s.unlistable {
		return false
	}
	if len(e.Checks) > 0 && !slices.Contains(e.Checks, check) {
		return false
	}
	if e.Namespace != "" && e.Namespace != s.namespace {
		return false
	}
	if e.Workload != "" {
		ns, name, _ := strings.Cut(e.Workload, "/")
		if ns != s.namespace || (name != s.name && name != s.workload) {
			return false
		}
	}
	if e.Selector != "" {
		sel := e.selector
		if sel == nil { // an entry built in code rather than parsed
			var err error
			if sel, err = labels.Parse(e.Selector); err != nil {
				return false
			}
		}
		if !sel.Matches(labels.Set(s.labels)) {
			return false
		}
	}
	if e.Annotation != "" {
		key, want, hasValue := strings.Cut(e.Annotation, "=")
		got, ok := s.annotations[key]
		if !ok || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// allowance returns the first entry covering the finding, if any.
func (al AllowList) allowance(check string, f Finding) *Allowance {
	for i, e := range al.Entries {
		if e.matches(check, f.subject) {
			return &Allowance{Entry: i, Rule: e.Rule(), Reason: e.Reason}
		}
	}
	return nil
}

// Validate checks entries built in code (ParseAllowList validates what it parses).
func (al *AllowList) Validate() error {
	var errs []error
	for i := range al.Entries {
		if err := al.Entries[i].compile(); err != nil {
			errs = append(errs, fmt.Errorf("allow[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
