package cluster

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultName is the kind cluster name used when none is given.
const DefaultName = "meshconform"

// MaxNameLength is the longest cluster name kind handles everywhere: node containers are
// named "<name>-control-plane" and that must fit a 64-character hostname (kind only warns).
const MaxNameLength = 50

// kind's own rule (sigs.k8s.io/kind/pkg/internal/apis/config.validNameRE), plus a leading
// letter or digit, which docker requires of the container names kind derives from it.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// ValidateName checks a kind cluster name. The message says what was given and what to use.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("cluster name is empty: use a name like %s", DefaultName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("cluster name %q is %d characters: kind names node containers %q, which must fit a hostname; use at most %d characters, like %s",
			name, len(name), name+"-control-plane", MaxNameLength, DefaultName)
	case !nameRE.MatchString(name):
		return fmt.Errorf("cluster name %q is not a kind cluster name: use lowercase letters, digits, '.' and '-', starting with a letter or digit, like %s",
			name, DefaultName)
	}
	return nil
}

// KubeContext is the kubeconfig context kind writes for a cluster.
func KubeContext(name string) string { return "kind-" + name }

// ImageRef is a container image reference split into its parts.
type ImageRef struct {
	// Name is the repository as written, e.g. "kindest/node" or "registry.example.com/istio/pilot".
	Name string
	// Tag and Digest are empty when absent; Digest includes the algorithm ("sha256:…").
	Tag, Digest string
}

var (
	hostRE   = regexp.MustCompile(`^(localhost|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9-]+:[0-9]+|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+:[0-9]+|\[[0-9a-fA-F:]+\](:[0-9]+)?)$`)
	pathRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// ParseImageRef parses name[:tag][@digest] the way docker does (without resolving defaults).
func ParseImageRef(s string) (ImageRef, error) {
	var r ImageRef
	if s == "" {
		return r, fmt.Errorf("image reference is empty")
	}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return r, fmt.Errorf("image %q: digest %q is not sha256:<64 hex digits>", s, r.Digest)
		}
	}
	// A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return r, fmt.Errorf("image %q: tag %q is not a valid tag", s, r.Tag)
		}
	}
	r.Name = rest
	parts := strings.Split(rest, "/")
	first := 0
	if len(parts) > 1 && looksLikeHost(parts[0]) {
		if !hostRE.MatchString(parts[0]) {
			return r, fmt.Errorf("image %q: registry %q is not a host[:port]", s, parts[0])
		}
		first = 1
	}
	for _, p := range parts[first:] {
		if !pathRE.MatchString(p) {
			return r, fmt.Errorf("image %q: path component %q must be lowercase letters and digits separated by '.', '_' or '-'", s, p)
		}
	}
	return r, nil
}

// looksLikeHost is docker's rule: the first component is a registry when it has a '.' or a
// ':' or is "localhost" (so "kindest/node" is Docker Hub, "gcr.io/x" is not).
func looksLikeHost(c string) bool {
	return strings.ContainsAny(c, ".:[") || c == "localhost" || strings.ToLower(c) != c
}

// String writes the reference back as given.
func (r ImageRef) String() string {
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned reports whether the reference names a tag or a digest (not an implicit "latest").
func (r ImageRef) Pinned() bool { return r.Tag != "" || r.Digest != "" }

// FullName is the repository with docker's defaults applied ("nginx" → "docker.io/library/nginx"),
// the form containerd (and so crictl on a kind node) reports.
func (r ImageRef) FullName() string {
	parts := strings.Split(r.Name, "/")
	switch {
	case len(parts) > 1 && looksLikeHost(parts[0]):
		if parts[0] == "index.docker.io" {
			return "docker.io/" + strings.Join(parts[1:], "/")
		}
		return r.Name
	case len(parts) == 1:
		return "docker.io/library/" + r.Name
	default:
		return "docker.io/" + r.Name
	}
}

// Canonical is the fully qualified reference: FullName with the tag ("latest" when neither tag
// nor digest is given) and the digest.
func (r ImageRef) Canonical() string {
	s := r.FullName()
	switch {
	case r.Tag != "":
		s += ":" + r.Tag
	case r.Digest == "":
		s += ":latest"
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}
