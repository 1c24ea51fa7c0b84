package mesh

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Version is an Istio release: MAJOR.MINOR.PATCH with an optional pre-release
// (1.31.1, 1.32.0-beta.0, 1.32.0-rc.1), exactly as Istio names its charts.
type Version struct {
	Major, Minor, Patch int
	Pre                 string // "" for a release
}

var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?$`)

// ParseVersion accepts what Istio's chart repository uses. It is checked before any network
// access, so a typo fails in microseconds with the form to write.
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		hint := ""
		switch {
		case strings.HasPrefix(s, "v") || strings.HasPrefix(s, "V"):
			hint = fmt.Sprintf(" (drop the leading v: %q)", s[1:])
		case strings.Count(s, ".") == 1:
			hint = " (give the patch release too, e.g. 1.31.1)"
		case strings.TrimSpace(s) != s:
			hint = " (it has surrounding spaces)"
		}
		return Version{}, fmt.Errorf("istio version %q is not MAJOR.MINOR.PATCH like 1.31.1%s: set ISTIO_VERSION to a released Istio version", s, hint)
	}
	v := Version{Pre: m[4]}
	// The pattern admits only digits without leading zeros; Atoi fails only on overflow.
	var err error
	for i, p := range []*int{&v.Major, &v.Minor, &v.Patch} {
		if *p, err = strconv.Atoi(m[i+1]); err != nil {
			return Version{}, fmt.Errorf("istio version %q: %v", s, err)
		}
	}
	return v, nil
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// Stable reports whether v is a release rather than an alpha, beta or rc.
func (v Version) Stable() bool { return v.Pre == "" }

// MinorString is "1.31" for 1.31.1.
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Compare orders versions as semver does: -1, 0 or +1. Pre-releases sort before their release;
// pre-release identifiers compare numerically when both are numbers, else as strings.
func (v Version) Compare(o Version) int {
	for _, d := range []int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d != 0 {
			return sign(d)
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(o.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		x, errx := strconv.Atoi(a[i])
		y, erry := strconv.Atoi(b[i])
		if errx == nil && erry == nil {
			return sign(x - y)
		}
		return sign(strings.Compare(a[i], b[i]))
	}
	return sign(len(a) - len(b))
}

func sign(d int) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

// Nearest picks from have the versions to suggest instead of want, best first: releases of the
// same minor (closest patch first, newer before older on a tie), then the newest release of each
// neighbouring minor (closest minor first, newer before older on a tie). Pre-releases are
// suggested only when want is one. At most limit versions are returned (limit ≤ 0: no limit).
func Nearest(want Version, have []Version, limit int) []Version {
	seen := map[Version]bool{}
	var same []Version
	newestOfMinor := map[[2]int]Version{}
	for _, h := range have {
		if seen[h] || h == want || (!h.Stable() && want.Stable()) {
			continue
		}
		seen[h] = true
		if h.Major == want.Major && h.Minor == want.Minor {
			same = append(same, h)
			continue
		}
		k := [2]int{h.Major, h.Minor}
		if cur, ok := newestOfMinor[k]; !ok || h.Compare(cur) > 0 {
			newestOfMinor[k] = h
		}
	}
	sort.Slice(same, func(i, j int) bool {
		di, dj := abs(same[i].Patch-want.Patch), abs(same[j].Patch-want.Patch)
		if di != dj {
			return di < dj
		}
		return same[i].Compare(same[j]) > 0
	})
	others := make([]Version, 0, len(newestOfMinor))
	for _, v := range newestOfMinor {
		others = append(others, v)
	}
	dist := func(v Version) int {
		if v.Major != want.Major {
			return 1000*abs(v.Major-want.Major) + abs(v.Minor-want.Minor)
		}
		return abs(v.Minor - want.Minor)
	}
	sort.Slice(others, func(i, j int) bool {
		di, dj := dist(others[i]), dist(others[j])
		if di != dj {
			return di < dj
		}
		return others[i].Compare(others[j]) > 0
	})
	out := append(same, others...)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

func abs(d int) int {
	if d < 0 {
		return -d
	}
	return d
}
