package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// JSON encodes the report, indented, as it is written to conformance.json.
func (r Report) JSON() ([]byte, error) {
	r.finish()
	return marshalJSON(r)
}

// YAML encodes the report as it is written to conformance.yaml (same fields as the JSON).
func (r Report) YAML() ([]byte, error) {
	j, err := r.JSON()
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

// WriteFiles writes conformance.json and conformance.yaml into dir, creating it.
func (r Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports directory: %w", err)
	}
	j, err := r.JSON()
	if err != nil {
		return err
	}
	y, err := r.YAML()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FileJSON), j, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileYAML), y, 0o644)
}

// marshalJSON indents and keeps <, > and & readable: evidence quotes HTML bodies.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeAll writes b to w, for the renderers.
func writeAll(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}
