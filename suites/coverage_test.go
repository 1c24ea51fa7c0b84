//go:build !e2e

package suites

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"meshconform/framework/baseline"
	"meshconform/framework/catalog"
)

var idLabel = regexp.MustCompile(`^[A-Z]+-[0-9]{3}$`)

// TestEverySpecIsACatalogBehaviour runs the real suite in Ginkgo's dry-run mode (no cluster:
// no node runs) and reads its JSON report: every catalog ID must label at least one spec,
// every ID-shaped label must be in the catalog, and every spec must carry its ID's area.
func TestEverySpecIsACatalogBehaviour(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the e2e suite")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "suites.test")
	if out, err := exec.Command("go", "test", "-c", "-tags", "e2e", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("compiling the e2e suite failed: %v\n%s", err, out)
	}
	// The suite binary in dry-run mode: Ginkgo walks the spec tree and runs no node.
	cmd := exec.Command(bin, "-ginkgo.dry-run", "-ginkgo.no-color", "-ginkgo.json-report="+filepath.Join(dir, "dry.json"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the suite's dry run failed: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		t.Fatal(err)
	}
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

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
