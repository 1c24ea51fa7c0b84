//go:build !e2e

package suites

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"meshconform/framework/baseline"
	"meshconform/framework/catalog"
	"meshconform/framework/suitebin"
)

var idLabel = regexp.MustCompile(`^[A-Z]+-[0-9]{3}$`)

// TestEverySpecIsACatalogBehaviour runs the real suite in Ginkgo's dry-run mode (no cluster:
// no node runs) and reads its JSON report: every catalog ID must label at least one spec,
// every ID-shaped label must be in the catalog, and every spec must carry its ID's area.
func TestEverySpecIsACatalogBehaviour(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the e2e suite")
	}
	reports := dryRun(t)
	covered := map[string][]string{}
	var baselineSpecs []string
	filter, err := types.ParseLabelFilter(baseline.Label)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			labels := s.Labels()
			// LABELS=baseline must select the baseline spec and nothing else; it is not a
			// behaviour, so it carries no ID.
			if filter(labels) {
				baselineSpecs = append(baselineSpecs, s.FullText())
				for _, l := range labels {
					if idLabel.MatchString(l) {
						t.Errorf("the baseline spec %q carries the behaviour ID %s: LABELS=%s would run a behaviour", s.FullText(), l, l)
					}
				}
				continue
			}
			var ids []string
			for _, l := range labels {
				if idLabel.MatchString(l) {
					ids = append(ids, l)
				}
			}
			if len(ids) == 0 {
				t.Errorf("spec %q carries no behaviour ID label", s.FullText())
			}
			for _, id := range ids {
				b, ok := catalog.Lookup(id)
				if !ok {
					t.Errorf("spec %q is labelled %s, which BEHAVIORS.md does not define", s.FullText(), id)
					continue
				}
				if !contains(labels, string(b.Area)) {
					t.Errorf("spec %q (%s) lacks its area label %q: %v", s.FullText(), id, b.Area, labels)
				}
				covered[id] = append(covered[id], s.FullText())
			}
		}
	}
	if len(baselineSpecs) != 1 {
		t.Errorf("LABELS=%s selects %d specs, want the baseline spec alone: %q", baseline.Label, len(baselineSpecs), baselineSpecs)
	}
	var missing []string
	for _, id := range catalog.IDs() {
		if len(covered[id]) == 0 {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("behaviours with no spec: %s", strings.Join(missing, " "))
	}
}

var (
	dryRunOnce    sync.Once
	dryRunReports []types.Report
	dryRunErr     error
)

// dryRun compiles the real suite and runs it in Ginkgo's dry-run mode (no cluster: Ginkgo
// walks the spec tree and runs no node), once per test binary, and returns its JSON report.
func dryRun(t *testing.T) []types.Report {
	t.Helper()
	dryRunOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshconform-dryrun-")
		if err != nil {
			dryRunErr = err
			return
		}
		defer os.RemoveAll(dir)
		// The binary make e2e runs, from the same cache: linked here once per source, so the
		// runs after make test (the live tier's) find it.
		b, err := suitebin.Suite{Root: "..", Package: "./suites", Tags: []string{"e2e"}}.Binary(context.Background())
		if err != nil {
			dryRunErr = err
			return
		}
		cmd := exec.Command(b.Path, "-ginkgo.dry-run", "-ginkgo.no-color", "-ginkgo.json-report="+filepath.Join(dir, "dry.json"))
		if out, err := cmd.CombinedOutput(); err != nil {
			dryRunErr = fmt.Errorf("the suite's dry run failed: %v\n%s", err, out)
			return
		}
		data, err := os.ReadFile(filepath.Join(dir, "dry.json"))
		if err != nil {
			dryRunErr = err
			return
		}
		dryRunErr = json.Unmarshal(data, &dryRunReports)
	})
	if dryRunErr != nil {
		t.Fatal(dryRunErr)
	}
	return dryRunReports
}

// specShapes are the dry run's specs as "labels (sorted, comma-separated)", with " serial"
// for a Serial spec, one line per spec, sorted: what LABELS=… selects and how it runs, not the
// spec's text.
func specShapes(reports []types.Report) []string {
	var out []string
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			ls := slices.Clone(s.Labels())
			sort.Strings(ls)
			line := strings.Join(ls, ",")
			if s.IsSerial {
				line += " serial"
			}
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

var update = flag.Bool("update", false, "rewrite testdata/specs.txt from the current suite")

// TestSpecLabelsUnchanged compares the suite's specs (labels, Serial) with
// testdata/specs.txt, written from the suite as it was before behaviours became values in
// their own files (commit 9a18208), so a reshaping of suites/ that loses, adds or relabels a
// spec fails here. A new behaviour adds its lines with -update, in the same commit.
func TestSpecLabelsUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the e2e suite")
	}
	got := specShapes(dryRun(t))
	path := filepath.Join("testdata", "specs.txt")
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if missing, extra := multisetDiff(want, got), multisetDiff(got, want); len(missing)+len(extra) > 0 {
		t.Errorf("the suite's specs differ from %s (%d specs there, %d now):\n  specs gone: %q\n  specs new:  %q\n"+
			"(a new behaviour: go test ./suites -run TestSpecLabelsUnchanged -update)", path, len(want), len(got), missing, extra)
	}
}

// multisetDiff is a minus b, counting repeats.
func multisetDiff(a, b []string) []string {
	n := map[string]int{}
	for _, x := range b {
		n[x]++
	}
	var out []string
	for _, x := range a {
		if n[x] > 0 {
			n[x]--
			continue
		}
		out = append(out, x)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
