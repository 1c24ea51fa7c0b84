package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The JUnit shapes Ginkgo v2 writes (reporters.JUnitTestSuites); the reader also takes a bare
// <testsuite> root, which other JUnit writers produce.
type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperties struct {
	Properties []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

type junitCase struct {
	Name       string           `xml:"name,attr"`
	Status     string           `xml:"status,attr"`
	Time       float64          `xml:"time,attr"`
	Skipped    *junitMessage    `xml:"skipped"`
	Failure    *junitMessage    `xml:"failure"`
	Error      *junitMessage    `xml:"error"`
	Properties *junitProperties `xml:"properties"`
}

// caseName splits Ginkgo's test case name "[It] mtls plain client is rejected [mtls, MTLS-002]"
// into node type, spec text and labels.
var caseName = regexp.MustCompile(`^\[([^\]]+)\]\s*(.*?)(?:\s+\[([^\[\]]*)\])?$`)

// FromJUnit builds the conformance report of one run from Ginkgo's JUnit XML. Behaviour IDs
// come from the labels Ginkgo appends to each test case name; classification, evidence and
// run metadata from the test cases' <properties>, where Ginkgo puts the report entries.
func FromJUnit(data []byte, opts ...Option) (Report, error) {
	var suites []junitSuite
	root, err := rootElement(data)
	if err != nil {
		return Report{}, err
	}
	switch root {
	case "testsuites":
		var s junitSuites
		if err := xml.Unmarshal(data, &s); err != nil {
			return Report{}, err
		}
		suites = s.Suites
	case "testsuite":
		var s junitSuite
		if err := xml.Unmarshal(data, &s); err != nil {
			return Report{}, err
		}
		suites = []junitSuite{s}
	default:
		return Report{}, fmt.Errorf("XML root element is <%s>, not JUnit's <testsuites> or <testsuite>", root)
	}
	b := newBuilder(opts)
	for _, suite := range suites {
		var run Run
		if t, err := time.Parse("2006-01-02T15:04:05", suite.Timestamp); err == nil {
			run.Date = t.UTC()
		}
		for _, p := range suite.Properties.Properties {
			switch {
			case p.Name == "DryRun" && p.Value == "true":
				run.DryRun = true
			case p.Name == "ParallelTotal":
				if n, err := strconv.Atoi(p.Value); err == nil {
					b.processes = max(b.processes, n)
				}
			}
		}
		if err := b.run.mergeRun(run); err != nil {
			return Report{}, err
		}
		for _, c := range suite.Cases {
			s := junitSpec(c, run.DryRun)
			if c.Properties != nil {
				for _, p := range c.Properties.Properties {
					if err := s.entries.add(p.Name, p.Value); err != nil {
						return Report{}, fmt.Errorf("test case %q: %w", c.Name, err)
					}
				}
			}
			if err := b.add(s); err != nil {
				return Report{}, err
			}
		}
	}
	return b.report(), nil
}

func junitSpec(c junitCase, dryRun bool) spec {
	s := spec{name: c.Name, leafType: "It", seconds: c.Time}
	if m := caseName.FindStringSubmatch(c.Name); m != nil {
		s.leafType, s.name = m[1], m[2]
		if m[3] != "" {
			s.labels = strings.Split(m[3], ", ")
		}
	}
	s.suiteLevel = strings.Contains(s.leafType, "Suite")
	switch {
	case c.Failure != nil:
		s.result, s.message = Fail, c.Failure.Message
	case c.Error != nil:
		s.result, s.message = Fail, strings.TrimSpace(c.Error.Message+"\n"+c.Error.Text)
	case c.Skipped != nil:
		s.result, s.message = Skip, trimSkipPrefix(c.Skipped.Message)
	case c.Status == "" || c.Status == "passed":
		s.result = Pass
	default: // pending, or a state this reader does not know: nothing was proven
		s.result = Skip
	}
	if dryRun {
		s.result = Skip
	}
	return s
}

// rootElement is the name of the first element of an XML document.
func rootElement(data []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("not well-formed XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local, nil
		}
	}
}
