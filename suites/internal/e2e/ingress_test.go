package e2e

import (
	"testing"

	"meshconform/framework/provision"
	"meshconform/framework/report"
	"meshconform/framework/settings"
)

// TestRunEntryRecordsIngressAPI: the report's run says which ingress API INGRESS-001/002 used;
// the default (the gateway chart) is left out, so such reports read as before.
func TestRunEntryRecordsIngressAPI(t *testing.T) {
	for api, want := range map[string]string{"": "", settings.IngressIstio: "", settings.IngressGatewayAPI: report.IngressGatewayAPI} {
		got := runEntry(provision.State{Settings: settings.Settings{IngressAPI: api}}).IngressAPI
		if got != want {
			t.Errorf("INGRESS_API=%q: the report's ingressAPI %q, want %q", api, got, want)
		}
	}
}
