package posture

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats of `meshconform posture --output`.
const (
	FormatText  = "text"
	FormatJSON  = "json"
	FormatJUnit = "junit"
)

// Formats lists the accepted --output values.
func Formats() []string { return []string{FormatText, FormatJSON, FormatJUnit} }

// Write renders the report in format (text, json or junit).
func Write(w io.Writer, r Report, format string) error {
	switch format {
	case FormatText:
		return WriteText(w, r)
	case FormatJSON:
		return WriteJSON(w, r)
	case FormatJUnit:
		return WriteJUnit(w, r)
	}
	return fmt.Errorf("unknown output format %q: use one of %s", format, strings.Join(Formats(), ", "))
}

// WriteJSON writes the report as indented JSON (the Report struct's field names).
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // reasons and values are read by people: keep <, >, & as they are
	return enc.Encode(r)
}

// WriteText writes a header, a table with one row per check, then the details of every
// check that has findings, allowed findings, notes or an error, and the verdict.
func WriteText(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "meshconform posture: context %s, server %s\n", orDash(r.Context), orDash(r.Server))
	if r.Error != "" {
		fmt.Fprintf(&b, "\nERROR: %s\n", r.Error)
		for _, p := range r.MissingPermissions {
			fmt.Fprintf(&b, "  missing: %s\n", p)
		}
	}
	if r.RootNamespace != "" || r.RootNamespaceSource != "" {
		fmt.Fprintf(&b, "root namespace:    %s (%s)\n", orDash(r.RootNamespace), r.RootNamespaceSource)
		fmt.Fprintf(&b, "istio namespace:   %s (%s)\n", orDash(r.SystemNamespace), r.SystemNamespaceSource)
		fmt.Fprintf(&b, "meshed namespaces: %d", len(r.MeshedNamespaces))
		switch {
		case len(r.MeshedNamespaces) == 0 && len(r.Checks) > 0:
			fmt.Fprintf(&b, " (%s: nothing is labelled into the mesh, see %s)", noMeshedNamespace, SidecarsEverywhere)
		case len(r.AmbientNamespaces) > 0:
			fmt.Fprintf(&b, " (%s; ambient: %s)", strings.Join(r.MeshedNamespaces, ", "), strings.Join(r.AmbientNamespaces, ", "))
		case len(r.MeshedNamespaces) > 0:
			fmt.Fprintf(&b, " (%s)", strings.Join(r.MeshedNamespaces, ", "))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tFINDINGS\tALLOWED\tTITLE")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", c.ID, strings.ToUpper(string(c.Result)), len(c.Findings), len(c.Allowed), c.Title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Checks {
		if c.Result == Pass && len(c.Allowed) == 0 && len(c.Notes) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s %s: %s", c.ID, c.Title, strings.ToUpper(string(c.Result)))
		if c.Examined != "" {
			fmt.Fprintf(&b, " (examined %s)", c.Examined)
		}
		b.WriteString("\n")
		if c.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", c.Error)
		}
		for _, f := range c.Findings {
			fmt.Fprintf(&b, "  - %s  %s = %s\n      %s\n", f.Object(), f.Field, f.Value, f.Message)
		}
		for _, f := range c.Allowed {
			fmt.Fprintf(&b, "  allowed: %s  %s = %s\n      allow[%d] %s: %s\n", f.Object(), f.Field, f.Value, f.Allowed.Entry, f.Allowed.Rule, f.Allowed.Reason)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if c.Result != Pass {
			fmt.Fprintf(&b, "  remedy: %s\n", c.Remedy)
		}
	}
	pass, fail, errored := r.Counts()
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d errors: exit %d\n", pass, fail, errored, r.ExitCode())
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// JUnit XML, the common subset Jenkins, GitLab and GitHub reporters read: one <testcase> per
// check; a failing check carries <failure> with its findings, an errored one <error>;
// allowed findings go to <system-out> so the exceptions stay visible in CI.
type junitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []junitTestSuite `xml:"testsuite"`
}

type junitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitTestCase `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure"`
	Error     *junitMessage `xml:"error"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitClassname groups the cases in CI views.
const junitClassname = "meshconform.posture"

// WriteJUnit writes the report as JUnit XML.
func WriteJUnit(w io.Writer, r Report) error {
	_, fail, errored := r.Counts()
	suite := junitTestSuite{Name: "meshconform posture", Tests: len(r.Checks), Failures: fail, Errors: errored,
		Properties: []junitProperty{
			{"context", r.Context}, {"server", r.Server},
			{"rootNamespace", r.RootNamespace}, {"rootNamespaceSource", r.RootNamespaceSource},
			{"systemNamespace", r.SystemNamespace}, {"meshedNamespaces", strings.Join(r.MeshedNamespaces, ",")},
			{"ambientNamespaces", strings.Join(r.AmbientNamespaces, ",")},
		}}
	if !r.Started.IsZero() {
		suite.Timestamp = r.Started.UTC().Format(time.RFC3339)
	}
	for _, c := range r.Checks {
		tc := junitTestCase{Name: c.ID + ": " + c.Title, Classname: junitClassname}
		switch c.Result {
		case Fail:
			var text strings.Builder
			for _, f := range c.Findings {
				fmt.Fprintf(&text, "%s  %s = %s  (%s)\n", f.Object(), f.Field, f.Value, f.Message)
			}
			fmt.Fprintf(&text, "remedy: %s\n", c.Remedy)
			tc.Failure = &junitMessage{Type: c.ID, Text: text.String(),
				Message: fmt.Sprintf("%d finding(s); first: %s %s = %s", len(c.Findings), c.Findings[0].Object(), c.Findings[0].Field, c.Findings[0].Value)}
		case Error:
			tc.Error = &junitMessage{Type: c.ID, Message: c.Error, Text: c.Error + "\n"}
		}
		var out strings.Builder
		if c.Examined != "" {
			fmt.Fprintf(&out, "examined %s\n", c.Examined)
		}
		for _, f := range c.Allowed {
			fmt.Fprintf(&out, "allowed: %s  %s = %s  (allow[%d] %s: %s)\n", f.Object(), f.Field, f.Value, f.Allowed.Entry, f.Allowed.Rule, f.Allowed.Reason)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&out, "note: %s\n", n)
		}
		tc.SystemOut = out.String()
		suite.Cases = append(suite.Cases, tc)
	}
	doc := junitTestSuites{Name: "meshconform posture", Tests: suite.Tests, Failures: fail, Errors: errored, Suites: []junitTestSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
