package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/onsi/ginkgo/v2/types"
	"sigs.k8s.io/yaml"
)

// InputError is a file that cannot be read as a run: it names the file and what is wrong.
type InputError struct {
	Path    string
	Problem string
	Err     error
}

func (e *InputError) Error() string {
	s := e.Path + ": " + e.Problem
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *InputError) Unwrap() error { return e.Err }

// What Read accepts, for messages.
const accepted = "a conformance report (JSON or YAML), a Ginkgo JSON report or Ginkgo JUnit XML"

// Read reads one run from a file in any format this package knows: a conformance report
// (JSON or YAML), Ginkgo's JSON report or Ginkgo's JUnit XML, told apart by content. A
// directory is searched for one run (see Find). Every error is an *InputError.
func Read(path string, opts ...Option) (Report, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		files, err := Find(path)
		if err != nil {
			return Report{}, err
		}
		if len(files) > 1 {
			// Several suites of one run, each with its report: one run again.
			rs, err := ReadAll(files, opts...)
			if err != nil {
				return Report{}, err
			}
			r, err := Combine(rs...)
			if err != nil {
				return Report{}, &InputError{Path: path, Problem: fmt.Sprintf("holds %d reports that are not one run; name one file", len(files)), Err: err}
			}
			r.Run.Source = path
			return r, nil
		}
		path = files[0]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Report{}, &InputError{Path: path, Problem: "not found"}
		}
		return Report{}, &InputError{Path: path, Problem: "cannot be read", Err: err}
	}
	r, err := Parse(data, opts...)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			ie.Path = path
			return Report{}, ie
		}
		return Report{}, &InputError{Path: path, Problem: "unreadable", Err: err}
	}
	r.Run.Source = path
	return r, nil
}

// Parse reads one run from bytes; see Read. Errors are *InputError without a path.
func Parse(data []byte, opts ...Option) (Report, error) {
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(trimmed) == 0 {
		return Report{}, &InputError{Problem: "empty file; expected " + accepted}
	}
	var (
		r   Report
		err error
	)
	switch trimmed[0] {
	case '<':
		r, err = FromJUnit(trimmed, opts...)
		if err != nil {
			return Report{}, &InputError{Problem: "not Ginkgo JUnit XML that makes a conformance report", Err: err}
		}
	case '[':
		var suites []types.Report
		if err := json.Unmarshal(trimmed, &suites); err != nil {
			return Report{}, &InputError{Problem: "JSON, but not a Ginkgo JSON report", Err: err}
		}
		if r, err = FromGinkgo(suites, opts...); err != nil {
			return Report{}, &InputError{Problem: "Ginkgo JSON report that makes no conformance report", Err: err}
		}
	default:
		if r, err = parseConformance(trimmed); err != nil {
			return Report{}, err
		}
	}
	if len(r.Behaviors) == 0 {
		return Report{}, &InputError{Problem: "no behaviour IDs: no spec carries a label like MTLS-002"}
	}
	return r, nil
}

// parseConformance reads a conformance report as JSON or YAML (YAML being a superset).
func parseConformance(data []byte) (Report, error) {
	var head struct {
		Kind string `json:"kind"`
	}
	jsonData := data
	if data[0] != '{' {
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return Report{}, &InputError{Problem: "not " + accepted, Err: err}
		}
		jsonData = j
		if len(bytes.TrimSpace(j)) == 0 || j[0] != '{' {
			return Report{}, &InputError{Problem: "not " + accepted + " (it reads as plain text or a YAML list)"}
		}
	}
	if err := json.Unmarshal(jsonData, &head); err != nil {
		return Report{}, &InputError{Problem: "not " + accepted, Err: err}
	}
	if head.Kind != Kind {
		return Report{}, &InputError{Problem: fmt.Sprintf("not %s (kind is %q, want %q)", accepted, head.Kind, Kind)}
	}
	var r Report
	d := json.NewDecoder(bytes.NewReader(jsonData))
	d.DisallowUnknownFields() // a misspelt field would silently drop evidence
	if err := d.Decode(&r); err != nil {
		return Report{}, &InputError{Problem: "malformed conformance report", Err: err}
	}
	for _, b := range r.Behaviors {
		if !IsBehaviorID(b.ID) {
			return Report{}, &InputError{Problem: fmt.Sprintf("malformed conformance report: %q is not a behaviour ID", b.ID)}
		}
		if b.Result != Pass && b.Result != Fail && b.Result != Skip && b.Result != NotJudged && b.Result != LeftOut {
			return Report{}, &InputError{Problem: fmt.Sprintf("malformed conformance report: %s has result %q, want pass, fail, skip, not-judged or left-out", b.ID, b.Result)}
		}
		if !b.Classification.Valid() {
			return Report{}, &InputError{Problem: fmt.Sprintf("malformed conformance report: %s has classification %q", b.ID, b.Classification)}
		}
	}
	r.finish()
	return r, nil
}

// Find lists the runs under a directory (downloaded CI artifacts, a reports/ directory): every
// conformance.json; where a directory has none, its conformance.yaml; where it has neither,
// its junit*.xml. Sorted by path.
func Find(dir string) ([]string, error) {
	byDir := map[string][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &InputError{Path: dir, Problem: "not found"}
		}
		return nil, &InputError{Path: dir, Problem: "cannot be read", Err: err}
	}
	var out []string
	for d, names := range byDir {
		switch {
		case slices.Contains(names, FileJSON):
			out = append(out, filepath.Join(d, FileJSON))
		case slices.Contains(names, FileYAML):
			out = append(out, filepath.Join(d, FileYAML))
		default:
			for _, n := range names {
				if m, _ := filepath.Match("junit*.xml", n); m {
					out = append(out, filepath.Join(d, n))
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, &InputError{Path: dir, Problem: fmt.Sprintf("directory holds no %s, %s or junit*.xml", FileJSON, FileYAML)}
	}
	slices.Sort(out)
	return out, nil
}

// Combine makes one run of reports from the same run (e.g. one per suite): their versions
// must agree; a behaviour in several fails if it fails in any, with the worst classification.
func Combine(reports ...Report) (Report, error) {
	var out Report
	for i, r := range reports {
		if err := out.Run.mergeRun(r.Run); err != nil {
			return Report{}, err
		}
		if i > 0 && r.Run.Strict != reports[0].Run.Strict {
			return Report{}, fmt.Errorf("strict and default runs cannot be combined")
		}
		if r.Timings != nil {
			// The suites of one run share the driver's phases; the first report's stand.
			if out.Timings == nil {
				out.Timings = &Timings{}
			}
			out.Timings.merge(*r.Timings)
		}
		for _, b := range r.Behaviors {
			j := slices.IndexFunc(out.Behaviors, func(x Behavior) bool { return x.ID == b.ID })
			if j < 0 {
				out.Behaviors = append(out.Behaviors, b)
				continue
			}
			out.Behaviors[j] = mergeBehaviors(out.Behaviors[j], b)
		}
	}
	out.finish()
	return out, nil
}

// ReadAll reads every run named: files, or directories searched with Find.
func ReadAll(paths []string, opts ...Option) ([]Report, error) {
	var out []Report
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			if files, err = Find(p); err != nil {
				return nil, err
			}
		}
		for _, f := range files {
			r, err := Read(f, opts...)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}
