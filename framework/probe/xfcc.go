package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// XFCCElement is one element of Envoy's X-Forwarded-Client-Cert header: one hop's view of
// the client certificate (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert).
type XFCCElement struct {
	By      string   // the SAN URI of the proxy that saw the client certificate
	Hash    string   // SHA-256 of the client certificate, hex
	Cert    string   // URL-encoded PEM of the client certificate
	Chain   string   // URL-encoded PEM of the client chain
	Subject string   // the client certificate's subject
	URI     []string // URI SANs of the client certificate
	DNS     []string // DNS SANs of the client certificate
	// Extra holds keys this parser does not know, so that a newer Envoy does not break it.
	Extra map[string][]string
}

// CertPEM decodes Cert (URL-encoded PEM).
func (e XFCCElement) CertPEM() (string, error) { return url.QueryUnescape(e.Cert) }

// XFCCError says where a header value is malformed.
type XFCCError struct {
	Value  string
	Offset int
	Reason string
}

func (e *XFCCError) Error() string {
	return fmt.Sprintf("x-forwarded-client-cert: %s at byte %d of %q", e.Reason, e.Offset, e.Value)
}

// ParseXFCC parses an X-Forwarded-Client-Cert value. Elements are separated by ',', pairs
// by ';', key and value by the first '='; a value may be double-quoted (Subject always is),
// and inside quotes ',', ';' and '=' are literal and \" and \\ are escapes. URI and DNS may
// repeat; By, Hash, Cert, Chain and Subject may not.
func ParseXFCC(v string) ([]XFCCElement, error) {
	if strings.TrimSpace(v) == "" {
		return nil, &XFCCError{Value: v, Reason: "empty value"}
	}
	var (
		out []XFCCElement
		el  XFCCElement
		i   int
	)
	seen := map[string]bool{}
	fail := func(off int, format string, a ...any) ([]XFCCElement, error) {
		return nil, &XFCCError{Value: v, Offset: off, Reason: fmt.Sprintf(format, a...)}
	}
	for {
		// key
		for i < len(v) && v[i] == ' ' {
			i++
		}
		keyStart := i
		for i < len(v) && v[i] != '=' && v[i] != ';' && v[i] != ',' && v[i] != '"' {
			i++
		}
		key := strings.TrimSpace(v[keyStart:i])
		switch {
		case i >= len(v) || v[i] != '=':
			if key == "" {
				return fail(keyStart, "empty pair (stray ',' or ';'?)")
			}
			return fail(i, "key %q has no '=value'", key)
		case key == "":
			return fail(keyStart, "empty key before '='")
		}
		i++ // '='
		// value
		var val string
		if i < len(v) && v[i] == '"' {
			var b strings.Builder
			quoteStart := i
			i++
			closed := false
			for i < len(v) && !closed {
				switch c := v[i]; c {
				case '\\':
					if i+1 >= len(v) {
						return fail(i, "escape at end of value")
					}
					b.WriteByte(v[i+1])
					i += 2
				case '"':
					closed = true
					i++
				default:
					b.WriteByte(c)
					i++
				}
			}
			if !closed {
				return fail(quoteStart, "unterminated quoted value for %q", key)
			}
			for i < len(v) && v[i] == ' ' {
				i++
			}
			if i < len(v) && v[i] != ';' && v[i] != ',' {
				return fail(i, "unexpected %q after quoted value of %q (want ';' or ',')", v[i], key)
			}
			val = b.String()
		} else {
			valStart := i
			for i < len(v) && v[i] != ';' && v[i] != ',' {
				if v[i] == '"' {
					return fail(i, "quote inside unquoted value of %q", key)
				}
				i++
			}
			val = strings.TrimSpace(v[valStart:i])
		}
		canon, single := xfccKey(key)
		if single && seen[canon] {
			return fail(keyStart, "%s repeated in one element", canon)
		}
		seen[canon] = true
		switch canon {
		case "By":
			el.By = val
		case "Hash":
			el.Hash = val
		case "Cert":
			el.Cert = val
		case "Chain":
			el.Chain = val
		case "Subject":
			el.Subject = val
		case "URI":
			el.URI = append(el.URI, val)
		case "DNS":
			el.DNS = append(el.DNS, val)
		default:
			if el.Extra == nil {
				el.Extra = map[string][]string{}
			}
			el.Extra[key] = append(el.Extra[key], val)
		}
		// separator
		if i >= len(v) {
			out = append(out, el)
			return out, nil
		}
		sep := v[i]
		i++
		if sep == ',' {
			out = append(out, el)
			el, seen = XFCCElement{}, map[string]bool{}
		}
		if strings.TrimSpace(v[i:]) == "" {
			return fail(i-1, "trailing %q", sep)
		}
	}
}

// xfccKey returns Envoy's spelling of a known key and whether it may appear once only.
func xfccKey(k string) (string, bool) {
	for _, known := range []string{"By", "Hash", "Cert", "Chain", "Subject"} {
		if strings.EqualFold(k, known) {
			return known, true
		}
	}
	for _, known := range []string{"URI", "DNS"} {
		if strings.EqualFold(k, known) {
			return known, false
		}
	}
	return k, false
}

// ErrNotEchoed is EchoedHeader's error (wrapped) when the reply is an echo without the header:
// what MTLS-013/014 and JWT-001 want, as opposed to a body that is no echo at all.
var ErrNotEchoed = errors.New("header not echoed")

// EchoedHeader finds a request header in an httpbin /headers reply ({"headers": {...}}),
// case-insensitively. Values may be strings (httpbin) or lists (go-httpbin, which Istio's
// samples use); a list is joined with ",". An echo without the header gives an error wrapping
// ErrNotEchoed.
func EchoedHeader(body, name string) (string, error) {
	var reply struct {
		Headers map[string]json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Headers == nil {
		return "", fmt.Errorf("not an httpbin /headers reply (%v): %q", err, clip(body, 200))
	}
	for k, raw := range reply.Headers {
		if !strings.EqualFold(k, name) {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s, nil
		}
		var list []string
		if err := json.Unmarshal(raw, &list); err == nil {
			return strings.Join(list, ","), nil
		}
		return "", fmt.Errorf("header %s: value %s is neither a string nor a list of strings", k, raw)
	}
	names := make([]string, 0, len(reply.Headers))
	for k := range reply.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	return "", fmt.Errorf("%w: header %s not in the reply (headers: %s)", ErrNotEchoed, name, strings.Join(names, ", "))
}
