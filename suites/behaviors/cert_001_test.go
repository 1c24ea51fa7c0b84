package behaviors

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckXFCC(t *testing.T) {
	by := "spiffe://cluster.local/ns/srv/sa/httpbin"
	uri := "spiffe://cluster.local/ns/cli/sa/sleep"
	hash := strings.Repeat("ab", 32)
	body := func(v string) string {
		return fmt.Sprintf(`{"headers":{"Accept":["*/*"],"X-Forwarded-Client-Cert":[%q]}}`, v)
	}
	good := fmt.Sprintf(`By=%s;Hash=%s;Subject="";URI=%s`, by, hash, uri)
	if err := CheckXFCC(body(good), by, uri); err != nil {
		t.Fatalf("documented XFCC rejected: %v", err)
	}
	for name, v := range map[string]string{
		"wrong client":   fmt.Sprintf(`By=%s;Hash=%s;Subject="";URI=spiffe://cluster.local/ns/cli/sa/other`, by, hash),
		"wrong server":   fmt.Sprintf(`By=spiffe://cluster.local/ns/srv/sa/x;Hash=%s;Subject="";URI=%s`, hash, uri),
		"short hash":     fmt.Sprintf(`By=%s;Hash=abc;Subject="";URI=%s`, by, uri),
		"no subject key": fmt.Sprintf(`By=%s;Hash=%s;URI=%s`, by, hash, uri),
	} {
		if err := CheckXFCC(body(v), by, uri); err == nil {
			t.Errorf("%s: CheckXFCC accepted %q", name, v)
		}
	}
	if err := CheckXFCC(`{"headers":{}}`, by, uri); err == nil || !strings.Contains(err.Error(), "X-Forwarded-Client-Cert") {
		t.Errorf("missing header: got %v", err)
	}
}

func TestCheckNoXFCC(t *testing.T) {
	if err := CheckNoXFCC(`{"headers":{"Accept":["*/*"],"Host":["httpbin"]}}`); err != nil {
		t.Errorf("no XFCC: %v", err)
	}
	for name, body := range map[string]string{
		"xfcc":       `{"headers":{"X-Forwarded-Client-Cert":["By=spiffe://cluster.local/ns/a/sa/b;Hash=ab"]}}`,
		"lower case": `{"headers":{"x-forwarded-client-cert":"By=x"}}`,
		"not json":   `upstream connect error`,
		"no headers": `{"url":"/get"}`,
	} {
		if err := CheckNoXFCC(body); err == nil {
			t.Errorf("%s: CheckNoXFCC accepted %q", name, body)
		}
	}
}
