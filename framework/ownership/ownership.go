// Package ownership labels every object meshconform creates, so that a run can find, and
// clean up, exactly what it made on a cluster it shares with others.
package ownership

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

const (
	// ManagedByKey and ManagedByValue mark an object as made by meshconform.
	ManagedByKey   = "app.kubernetes.io/managed-by"
	ManagedByValue = "meshconform"
	// RunIDKey holds the id of the run that made the object.
	RunIDKey = "meshconform.io/run-id"

	// RunIDLength is the length of ids from NewRunID.
	RunIDLength = 8
	// MaxNameLength is the limit of a DNS label (RFC 1123), which namespace names must be.
	MaxNameLength = 63
)

// runIDAlphabet is lowercase letters and digits: safe in DNS labels and label values.
const runIDAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewRunID returns a random id of RunIDLength characters from [a-z0-9], starting with a
// letter so that it is a valid DNS label on its own. 26*36^7 ≈ 2^41 ids: collisions between
// runs sharing a cluster are not a practical concern.
func NewRunID() string {
	b := make([]byte, RunIDLength)
	// crypto/rand.Read never returns an error (Go ≥1.24 panics instead, irrecoverably).
	_, _ = rand.Read(b)
	// Modulo bias (256 % 36 = 4) makes a few characters slightly likelier; irrelevant for ids.
	out := make([]byte, RunIDLength)
	out[0] = runIDAlphabet[int(b[0])%26]
	for i := 1; i < RunIDLength; i++ {
		out[i] = runIDAlphabet[int(b[i])%len(runIDAlphabet)]
	}
	return string(out)
}

// ValidRunID reports whether id could have come from NewRunID or is otherwise safe both as a
// label value and inside a DNS label.
func ValidRunID(id string) error {
	if id == "" {
		return fmt.Errorf("run id is empty: use ownership.NewRunID()")
	}
	if len(id) > 32 {
		return fmt.Errorf("run id %q is %d characters: keep it ≤32 so namespace names stay readable", id, len(id))
	}
	if !isDNSLabel(id) {
		return fmt.Errorf("run id %q is not lowercase [a-z0-9-] starting and ending with a letter or digit", id)
	}
	return nil
}

// Labels returns the two ownership labels for runID, in a new map the caller may extend.
func Labels(runID string) map[string]string {
	return map[string]string{ManagedByKey: ManagedByValue, RunIDKey: runID}
}

// Selector returns the label selector matching both ownership labels of runID.
func Selector(runID string) string {
	return ManagedByKey + "=" + ManagedByValue + "," + RunIDKey + "=" + runID
}

// ManagedSelector matches everything meshconform made, whatever the run.
func ManagedSelector() string {
	return ManagedByKey + "=" + ManagedByValue
}

// Stamp adds the ownership labels of runID to labels (allocating when nil) and returns it.
func Stamp(labels map[string]string, runID string) map[string]string {
	if labels == nil {
		labels = make(map[string]string, 2)
	}
	for k, v := range Labels(runID) {
		labels[k] = v
	}
	return labels
}

// Owned reports whether labels carry the ownership labels of runID.
func Owned(labels map[string]string, runID string) bool {
	return labels[ManagedByKey] == ManagedByValue && labels[RunIDKey] == runID
}

// NamespaceName joins prefix, runID and suffix with "-" into a valid DNS label (lowercased,
// characters outside [a-z0-9-] replaced by "-", empty parts dropped, "ns-" prepended when it
// would not start with a letter). A name that would exceed 63 characters is shortened and ends
// in a hash of the three inputs, so distinct inputs still give distinct names; the run id is
// kept whole when it is short, so the name still shows which run made it.
func NamespaceName(prefix, runID, suffix string) string {
	p, id, s := sanitize(prefix), sanitize(runID), sanitize(suffix)
	name := withLetter(join(p, id, s))
	if len(name) <= MaxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(prefix + "\x00" + runID + "\x00" + suffix))
	hash := hex.EncodeToString(sum[:])[:hashLength]
	head := MaxNameLength - 1 - hashLength // room before "-<hash>"
	var short string
	if len(id) <= 20 {
		p, s = fit(p, s, head-len(id)-2-len("ns-"))
		short = join(p, id, s)
	} else {
		short = name
	}
	short = withLetter(short)
	if len(short) > head {
		short = trimDashes(short[:head])
	}
	return short + "-" + hash
}

const hashLength = 8

// fit cuts p and s so that len(p)+len(s) ≤ n, taking from the longer one first.
func fit(p, s string, n int) (string, string) {
	n = max(n, 0)
	for len(p)+len(s) > n {
		if len(p) >= len(s) {
			p = p[:len(p)-1]
		} else {
			s = s[:len(s)-1]
		}
	}
	return trimDashes(p), trimDashes(s)
}

func join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "-")
}

// withLetter makes s start with a letter: namespace names may start with a digit, but many
// tools (and DNS-1035 names derived from them) assume a letter.
func withLetter(s string) string {
	switch {
	case s == "":
		return "ns"
	case !startsAlpha(s):
		return "ns-" + s
	}
	return s
}

func startsAlpha(s string) bool { return s != "" && s[0] >= 'a' && s[0] <= 'z' }

// sanitize lowercases s, maps anything outside [a-z0-9] to '-', collapses runs of '-' and
// trims them from both ends.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return trimDashes(b.String())
}

func trimDashes(s string) string { return strings.Trim(s, "-") }

func isDNSLabel(s string) bool {
	if s == "" || len(s) > MaxNameLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// IsDNSLabel reports whether s is a valid RFC 1123 label (a valid namespace name).
func IsDNSLabel(s string) bool { return isDNSLabel(s) }
