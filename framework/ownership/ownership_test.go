package ownership

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNewRunID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		id := NewRunID()
		if len(id) != RunIDLength {
			t.Fatalf("NewRunID() = %q: length %d, want %d", id, len(id), RunIDLength)
		}
		if errs := validation.IsDNS1035Label(id); len(errs) > 0 {
			t.Fatalf("NewRunID() = %q is not a DNS-1035 label: %v", id, errs)
		}
		if errs := validation.IsValidLabelValue(id); len(errs) > 0 {
			t.Fatalf("NewRunID() = %q is not a label value: %v", id, errs)
		}
		if err := ValidRunID(id); err != nil {
			t.Fatalf("ValidRunID(NewRunID()=%q) = %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewRunID() repeated %q within %d calls", id, i)
		}
		seen[id] = true
	}
}

func TestValidRunID(t *testing.T) {
	for _, bad := range []string{"", "ABC", "a_b", "-ab", "ab-", strings.Repeat("a", 33), "a.b"} {
		if err := ValidRunID(bad); err == nil {
			t.Errorf("ValidRunID(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"a", "abc123", "a-b", "0ab"} {
		if err := ValidRunID(good); err != nil {
			t.Errorf("ValidRunID(%q) = %v, want nil", good, err)
		}
	}
}

func TestLabelsAndSelector(t *testing.T) {
	id := NewRunID()
	l := Labels(id)
	if len(l) != 2 || l[ManagedByKey] != ManagedByValue || l[RunIDKey] != id {
		t.Fatalf("Labels(%q) = %v", id, l)
	}
	sel, err := labels.Parse(Selector(id))
	if err != nil {
		t.Fatalf("Selector(%q) = %q does not parse: %v", id, Selector(id), err)
	}
	if !sel.Matches(labels.Set(l)) {
		t.Errorf("Selector(%q) = %q does not match Labels = %v", id, Selector(id), l)
	}
	other := Labels("zzzzzzzz")
	if sel.Matches(labels.Set(other)) {
		t.Errorf("Selector(%q) matches another run's labels %v", id, other)
	}
	if sel.Matches(labels.Set{RunIDKey: id}) {
		t.Errorf("Selector(%q) matches an object without %s", id, ManagedByKey)
	}
	all, err := labels.Parse(ManagedSelector())
	if err != nil || !all.Matches(labels.Set(l)) || !all.Matches(labels.Set(other)) {
		t.Errorf("ManagedSelector() = %q (err %v) does not match both runs", ManagedSelector(), err)
	}
	// Labels returns a fresh map each time: callers extend it.
	l["extra"] = "x"
	if _, ok := Labels(id)["extra"]; ok {
		t.Error("Labels shares its map between calls")
	}
}

func TestStampAndOwned(t *testing.T) {
	got := Stamp(nil, "abc")
	if !Owned(got, "abc") || Owned(got, "abd") {
		t.Fatalf("Stamp(nil, abc) = %v; Owned mismatched", got)
	}
	in := map[string]string{"app": "x"}
	out := Stamp(in, "abc")
	if out["app"] != "x" || !Owned(out, "abc") {
		t.Fatalf("Stamp kept %v", out)
	}
	if Owned(map[string]string{RunIDKey: "abc"}, "abc") {
		t.Error("Owned without managed-by label")
	}
}

func TestNamespaceName(t *testing.T) {
	long := strings.Repeat("verylongprefix", 6)
	cases := []struct {
		prefix, id, suffix string
		want               string // "" means only check validity
	}{
		{"mtls", "ab12cd34", "strict", "mtls-ab12cd34-strict"},
		{"MTLS_002", "ab12cd34", "", "mtls-002-ab12cd34"},
		{"", "ab12cd34", "", "ab12cd34"},
		{"", "", "", "ns"},
		{"9lives", "ab12cd34", "x", "ns-9lives-ab12cd34-x"},
		{"--a--", "b", "--c--", "a-b-c"},
		{"Authz Deny.All", "r1", "p/80", "authz-deny-all-r1-p-80"},
		{long, "ab12cd34", "suffix", ""},
		{long, "ab12cd34", long, ""},
		{"a", strings.Repeat("x", 70), "b", ""},
		{"1" + long, "ab12cd34", "", ""},
	}
	for _, c := range cases {
		got := NamespaceName(c.prefix, c.id, c.suffix)
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("NamespaceName(%q, %q, %q) = %q: invalid: %v", c.prefix, c.id, c.suffix, got, errs)
		}
		if got[0] < 'a' || got[0] > 'z' {
			t.Errorf("NamespaceName(%q, %q, %q) = %q does not start with a letter", c.prefix, c.id, c.suffix, got)
		}
		if c.want != "" && got != c.want {
			t.Errorf("NamespaceName(%q, %q, %q) = %q, want %q", c.prefix, c.id, c.suffix, got, c.want)
		}
		if len(c.id) <= 20 && !strings.Contains(got, c.id) {
			t.Errorf("NamespaceName(%q, %q, %q) = %q lost the run id", c.prefix, c.id, c.suffix, got)
		}
	}
}

func TestNamespaceNameUniqueWhenTruncated(t *testing.T) {
	long := strings.Repeat("p", 80)
	a := NamespaceName(long, "ab12cd34", "case-one")
	b := NamespaceName(long, "ab12cd34", "case-two")
	c := NamespaceName(long+"x", "ab12cd34", "case-one")
	if a == b || a == c || b == c {
		t.Errorf("truncated names collide: %q %q %q", a, b, c)
	}
	if NamespaceName(long, "ab12cd34", "case-one") != a {
		t.Error("NamespaceName is not deterministic")
	}
	for _, n := range []string{a, b, c} {
		if len(n) > MaxNameLength {
			t.Errorf("%q is %d characters", n, len(n))
		}
	}
	// Same prefix and suffix, different runs: different names.
	if NamespaceName("x", NewRunID(), "y") == NamespaceName("x", NewRunID(), "y") {
		t.Error("two runs gave the same namespace name")
	}
}

func TestIsDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "a-b": true, "-a": false, "a-": false, "A": false, "": false, strings.Repeat("a", 64): false, strings.Repeat("a", 63): true} {
		if got := IsDNSLabel(s); got != want {
			t.Errorf("IsDNSLabel(%q) = %v, want %v", s, got, want)
		}
	}
}
