package probe

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseXFCC(t *testing.T) {
	// Istio's shape (seed 000/004): By, Hash, empty quoted Subject, URI.
	istio := `By=spiffe://cluster.local/ns/NS/sa/httpbin;Hash=4c4ba20ca9bbb3d4b06c3bd6c8ff8d48bf1a1ca5e7d1d5b5b4b11a8b5ca2a2a1;Subject="";URI=spiffe://cluster.local/ns/NS/sa/sleep`
	els, err := ParseXFCC(istio)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 1 || els[0].By != "spiffe://cluster.local/ns/NS/sa/httpbin" || els[0].Subject != "" ||
		!slices.Equal(els[0].URI, []string{"spiffe://cluster.local/ns/NS/sa/sleep"}) || len(els[0].Hash) != 64 {
		t.Errorf("parsed %+v", els)
	}

	// Envoy's documented examples: quoted subjects holding ',' ';' '=' and escaped quotes,
	// several URI and DNS, two elements (two hops), unknown keys kept.
	multi := `By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com,` +
		` By=http://backend.lyft.com;Hash=9ba61d6425303443;Subject="CN=a \"quoted\", name;x=y\\z";URI=spiffe://a;URI=spiffe://b;DNS=one.example;dns=two.example;Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB";Future=v1`
	els, err = ParseXFCC(multi)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 2 {
		t.Fatalf("%d elements, want 2: %+v", len(els), els)
	}
	if els[0].Subject != "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client" || els[0].By != "http://frontend.lyft.com" {
		t.Errorf("element 0: %+v", els[0])
	}
	e := els[1]
	if e.Subject != `CN=a "quoted", name;x=y\z` {
		t.Errorf("subject %q", e.Subject)
	}
	if !slices.Equal(e.URI, []string{"spiffe://a", "spiffe://b"}) || !slices.Equal(e.DNS, []string{"one.example", "two.example"}) {
		t.Errorf("URI %q DNS %q", e.URI, e.DNS)
	}
	if pem, err := e.CertPEM(); err != nil || pem != "-----BEGIN CERTIFICATE-----\nMIIB" {
		t.Errorf("CertPEM %q, %v", pem, err)
	}
	if !slices.Equal(e.Extra["Future"], []string{"v1"}) {
		t.Errorf("Extra %v, want the unknown key kept", e.Extra)
	}

	for _, c := range []struct{ in, want string }{
		{"", "empty value"},
		{"By", `key "By" has no '=value'`},
		{"By=a;;Hash=b", "empty pair"},
		{"By=a,,By=b", "empty pair"},
		{"=a", "empty key"},
		{`Subject="unterminated`, `unterminated quoted value for "Subject"`},
		{`Subject="a"b`, `unexpected 'b' after quoted value of "Subject"`},
		{`Subject="a\`, "escape at end of value"},
		{`URI=a"b`, `quote inside unquoted value of "URI"`},
		{"By=a;By=b", "By repeated in one element"},
		{"By=a;", `trailing ';'`},
		{"By=a,", `trailing ','`},
	} {
		_, err := ParseXFCC(c.in)
		var xe *XFCCError
		if !errors.As(err, &xe) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseXFCC(%q) = %v, want an XFCCError containing %q", c.in, err, c.want)
		}
	}
	// A repeated By in the next element is fine.
	if els, err := ParseXFCC("By=a,By=b"); err != nil || len(els) != 2 {
		t.Errorf("two elements with By each: %v, %v", els, err)
	}
}

func TestEchoedHeader(t *testing.T) {
	for _, body := range []string{
		`{"headers": {"X-Forwarded-Client-Cert": "By=a;URI=b", "Host": "h"}}`,
		`{"headers": {"X-Forwarded-Client-Cert": ["By=a;URI=b"]}}`,
	} {
		if v, err := EchoedHeader(body, "x-forwarded-client-cert"); err != nil || v != "By=a;URI=b" {
			t.Errorf("EchoedHeader(%s) = %q, %v", body, v, err)
		}
	}
	if _, err := EchoedHeader(`{"headers": {"Host": "h", "Accept": "*/*"}}`, "X-Forwarded-Client-Cert"); !errors.Is(err, ErrNotEchoed) ||
		!strings.Contains(err.Error(), "not in the reply (headers: Accept, Host)") {
		t.Errorf("absent header: %v, want ErrNotEchoed", err)
	}
	// Not an echo at all is not "not echoed": MTLS-013/014 must not pass on an error page.
	for _, body := range []string{`RBAC: access denied`, `{"url": "/get"}`} {
		if _, err := EchoedHeader(body, "X"); err == nil || errors.Is(err, ErrNotEchoed) || !strings.Contains(err.Error(), "not an httpbin /headers reply") {
			t.Errorf("%s: %v", body, err)
		}
	}
}
