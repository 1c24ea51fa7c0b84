package diag

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Placeholders that replace what the redactor removes. None of them contains "PRIVATE KEY",
// so a search of a dump for that string finds only what escaped redaction.
const (
	redactedPEM    = "[redacted: PEM key block]"
	redactedB64PEM = "[redacted: base64 PEM key block]"
	redactedValue  = "[redacted]"
	redactedJWT    = "[redacted: JWT]"
)

var (
	// A whole PEM private key block, whatever its kind (RSA, EC, PKCS#8, ENCRYPTED, OPENSSH),
	// with real newlines or JSON-escaped ones in between. Non-greedy, so two blocks stay two.
	pemBlock = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	// What a bounded tail leaves of a block: a BEGIN whose END was cut off, or an END whose
	// BEGIN was cut off. The base64 lines next to the marker go with it.
	pemOrphanBegin = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?:\r?\n|\\r\\n|\\n)[ \t]*(?:[A-Za-z0-9+/]+={0,2}|Proc-Type:[^\r\n\\]*|DEK-Info:[^\r\n\\]*))*`)
	pemOrphanEnd   = regexp.MustCompile(`(?:[A-Za-z0-9+/]+={0,2}[ \t]*(?:\r?\n|\\r\\n|\\n)[ \t]*)*-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	// base64("-----BEGIN") is "LS0tLS1CRUdJTi"; a run starting there is a base64-encoded PEM
	// document (Secret data, kubeconfig client-key-data, Envoy inline_bytes). It is decoded
	// and dropped only when it holds a private key, so certificate chains stay readable.
	b64PEM = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}(?:(?:\r?\n|\\n)[ \t]*[A-Za-z0-9+/]{4,}={0,2})*`)

	// Envoy DataSource fields (JSON) under a secret-bearing field: snake_case as Envoy's
	// admin API prints them, camelCase as protojson (istioctl) does.
	jsonSecretField = regexp.MustCompile(`"(private_key|privateKey|session_ticket_keys|sessionTicketKeys|generic_secret|genericSecret|hmac_secret|hmacSecret|token_secret|tokenSecret|password)"\s*:\s*`)
	jsonInline      = regexp.MustCompile(`("(?:inline_bytes|inlineBytes|inline_string|inlineString)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	// The same fields in YAML.
	yamlSecretField = regexp.MustCompile(`^(\s*(?:-\s+)?)(private_key|privateKey|session_ticket_keys|sessionTicketKeys|generic_secret|genericSecret|hmac_secret|hmacSecret|token_secret|tokenSecret):(.*)$`)
	yamlInline      = regexp.MustCompile(`((?:inline_bytes|inlineBytes|inline_string|inlineString)\s*:\s*)([^,}\s][^,}]*)`)

	// Credentials in kubeconfigs and the like, as YAML keys and as JSON members.
	yamlCredential = regexp.MustCompile(`(?m)^(\s*(?:-\s+)?(?:token|id-token|refresh-token|access-token|client-key-data|password)\s*:[ \t]*)(\S.*)$`)
	jsonCredential = regexp.MustCompile(`("(?:token|id-token|id_token|access_token|accessToken|refresh_token|refresh-token|client-key-data|password)"\s*:\s*)"(?:[^"\\]|\\.)*"`)
	bearer         = regexp.MustCompile(`(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*`)
	jwt            = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
)

// Redact removes key material and credentials from text that is about to be written as
// evidence: PEM private key blocks (whole, or what a tail left of one), base64-encoded PEM
// documents holding a private key, Envoy private_key (and other secret DataSource)
// inline_bytes/inline_string values in JSON or YAML, kubeconfig tokens and client keys,
// bearer tokens and JWTs. Everything else is kept as it was. It errs towards removing.
func Redact(b []byte) []byte {
	return []byte(RedactString(string(b)))
}

// RedactString is Redact for strings.
func RedactString(s string) string {
	// Cheap exits keep multi-megabyte logs fast: each rule runs only if its anchor occurs.
	if strings.Contains(s, "PRIVATE KEY-----") {
		s = pemBlock.ReplaceAllLiteralString(s, redactedPEM)
		s = pemOrphanBegin.ReplaceAllLiteralString(s, redactedPEM)
		s = pemOrphanEnd.ReplaceAllLiteralString(s, redactedPEM)
	}
	if strings.Contains(s, "LS0tLS1CRUdJTi") {
		s = b64PEM.ReplaceAllStringFunc(s, func(m string) string {
			if b64HoldsPrivateKey(m) {
				return redactedB64PEM
			}
			return m
		})
	}
	s = redactJSONSecretFields(s)
	s = redactYAMLSecretFields(s)
	s = yamlCredential.ReplaceAllString(s, "${1}"+redactedValue)
	s = jsonCredential.ReplaceAllString(s, `${1}"`+redactedValue+`"`)
	if strings.Contains(strings.ToLower(s), "bearer") {
		s = bearer.ReplaceAllString(s, "${1}${2}"+redactedValue)
	}
	if strings.Contains(s, "eyJ") {
		s = jwt.ReplaceAllLiteralString(s, redactedJWT)
	}
	return s
}

// b64HoldsPrivateKey decodes a base64 run (possibly wrapped, possibly cut short) and says
// whether it holds a PEM private key marker.
func b64HoldsPrivateKey(run string) bool {
	clean := strings.NewReplacer("\\n", "", "\\r", "", "\n", "", "\r", "", " ", "", "\t", "").Replace(run)
	clean = strings.TrimRight(clean, "=")
	clean = clean[:len(clean)/4*4]
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, _ := base64.StdEncoding.Decode(dec, []byte(clean)) // what decoded before any error counts
	return bytes.Contains(dec[:n], []byte("PRIVATE KEY"))
}

// redactJSONSecretFields blanks every inline value under a secret-bearing member: the member
// itself when it is a string, or the inline_bytes/inline_string members of the object or
// array it holds. Other members (filename, sds_config) stay, they say where the key lives.
func redactJSONSecretFields(s string) string {
	locs := jsonSecretField.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var out strings.Builder
	last := 0
	for _, loc := range locs {
		start := loc[1]
		if start < last || start >= len(s) {
			continue // inside a span already handled
		}
		end := jsonValueEnd(s, start)
		if end < 0 {
			// Cut off before the value closed: drop the rest of the text, it may be key material.
			out.WriteString(s[last:start])
			out.WriteString(`"` + redactedValue + `"`)
			last = len(s)
			break
		}
		out.WriteString(s[last:start])
		switch s[start] {
		case '"':
			out.WriteString(`"` + redactedValue + `"`)
		case '{', '[':
			out.WriteString(jsonInline.ReplaceAllString(s[start:end], `${1}"`+redactedValue+`"`))
		default:
			out.WriteString(s[start:end])
		}
		last = end
	}
	out.WriteString(s[last:])
	return out.String()
}

// jsonValueEnd returns the index just past the JSON value starting at s[i] (a string, an
// object or an array, with nesting and escapes honoured), i+1 for a scalar's first byte
// (scalars are left alone), or -1 when the text ends before the value closes.
func jsonValueEnd(s string, i int) int {
	switch s[i] {
	case '"':
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return -1
	case '{', '[':
		depth, inString := 0, false
		for j := i; j < len(s); j++ {
			c := s[j]
			if inString {
				switch c {
				case '\\':
					j++
				case '"':
					inString = false
				}
				continue
			}
			switch c {
			case '"':
				inString = true
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		return i + 1
	}
}

// redactYAMLSecretFields does for YAML what redactJSONSecretFields does for JSON: a scalar
// on the secret-bearing key is blanked, a flow map has its inline values blanked, and in a
// block map the inline values of the lines indented under the key are blanked (block
// scalars under them entirely).
func redactYAMLSecretFields(s string) string {
	if !strings.Contains(s, "_key:") && !strings.Contains(s, "Key:") && !strings.Contains(s, "ecret:") &&
		!strings.Contains(s, "_keys:") && !strings.Contains(s, "Keys:") {
		return s
	}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		m := yamlSecretField.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent := indentOf(lines[i])
		rest := strings.TrimSpace(m[3])
		switch {
		case rest == "":
			// Block map: walk the lines indented deeper than the key.
			for j := i + 1; j < len(lines); j++ {
				if strings.TrimSpace(lines[j]) == "" {
					continue
				}
				if indentOf(lines[j]) <= indent {
					break
				}
				if loc := yamlInline.FindStringSubmatchIndex(lines[j]); loc != nil {
					value := strings.TrimSpace(lines[j][loc[4]:loc[5]])
					lines[j] = lines[j][:loc[4]] + redactedValue
					if strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">") {
						inner := indentOf(lines[j])
						for k := j + 1; k < len(lines) && (strings.TrimSpace(lines[k]) == "" || indentOf(lines[k]) > inner); k++ {
							lines[k] = ""
						}
					}
				}
			}
		case strings.HasPrefix(rest, "{"):
			lines[i] = yamlInline.ReplaceAllString(lines[i], "${1}"+redactedValue)
		default:
			lines[i] = m[1] + m[2] + ": " + redactedValue
		}
	}
	return strings.Join(lines, "\n")
}

func indentOf(line string) int {
	return len(line) - len(strings.TrimLeft(line, " \t"))
}

// sensitiveEnvName says whether an environment variable's name suggests its literal value is
// a credential.
func sensitiveEnvName(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"PASSWORD", "PASSWD", "TOKEN", "SECRET", "PRIVATE_KEY", "API_KEY", "APIKEY", "CREDENTIAL"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// maskPodEnv masks literal env values whose names look like credentials, in every kind of
// container. References (secretKeyRef, configMapKeyRef) carry no value and stay.
func maskPodEnv(pod *corev1.Pod) {
	mask := func(env []corev1.EnvVar) {
		for i := range env {
			if env[i].Value != "" && sensitiveEnvName(env[i].Name) {
				env[i].Value = redactedValue
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		mask(pod.Spec.InitContainers[i].Env)
	}
	for i := range pod.Spec.Containers {
		mask(pod.Spec.Containers[i].Env)
	}
	for i := range pod.Spec.EphemeralContainers {
		mask(pod.Spec.EphemeralContainers[i].Env)
	}
}
