package istionames_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"istio.io/api/annotation"
	"istio.io/api/label"

	"meshconform/framework/istionames"
	"meshconform/internal/istiosrc"
)

// TestIstioAPI: the annotations and labels Istio declares in istio.io/api (the version this
// module builds with) are spelt as Istio spells them.
func TestIstioAPI(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"RevisionLabel", istionames.RevisionLabel, label.IoIstioRev.Name},
		{"RevisionAnnotation", istionames.RevisionAnnotation, annotation.IoIstioRev.Name},
		{"InjectLabel", istionames.InjectLabel, label.SidecarInject.Name},
		{"InjectLabel (annotation)", istionames.InjectLabel, annotation.SidecarInject.Name},
		{"StatusAnnotation", istionames.StatusAnnotation, annotation.SidecarStatus.Name},
		{"CanonicalNameLabel", istionames.CanonicalNameLabel, label.ServiceCanonicalName.Name},
		{"OperatorVersionLabel", istionames.OperatorVersionLabel, label.OperatorVersion.Name},
		{"ProxyConfigAnnotation", istionames.ProxyConfigAnnotation, annotation.ProxyConfig.Name},
		{"RewriteAppHTTPProbersAnnotation", istionames.RewriteAppHTTPProbersAnnotation, annotation.SidecarRewriteAppHTTPProbers.Name},
		{"StatusPortAnnotation", istionames.StatusPortAnnotation, annotation.SidecarStatusPort.Name},
		{"ExcludeInboundPortsAnnotation", istionames.ExcludeInboundPortsAnnotation, annotation.SidecarTrafficExcludeInboundPorts.Name},
		{"ExcludeOutboundPortsAnnotation", istionames.ExcludeOutboundPortsAnnotation, annotation.SidecarTrafficExcludeOutboundPorts.Name},
		{"ExcludeOutboundIPRangesAnnotation", istionames.ExcludeOutboundIPRangesAnnotation, annotation.SidecarTrafficExcludeOutboundIPRanges.Name},
		{"DataplaneModeLabel", istionames.DataplaneModeLabel, label.IoIstioDataplaneMode.Name},
		{"AmbientRedirectionAnnotation", istionames.AmbientRedirectionAnnotation, annotation.AmbientRedirection.Name},
		{"AmbientBypassInboundCaptureAnnotation", istionames.AmbientBypassInboundCaptureAnnotation, annotation.AmbientBypassInboundCapture.Name},
		{"InjectTemplatesAnnotation", istionames.InjectTemplatesAnnotation, annotation.InjectTemplates.Name},
		{"ProxyImageAnnotation", istionames.ProxyImageAnnotation, annotation.SidecarProxyImage.Name},
		{"UseWaypointLabel", istionames.UseWaypointLabel, label.IoIstioUseWaypoint.Name},
		{"WaypointForLabel", istionames.WaypointForLabel, label.IoIstioWaypointFor.Name},
	} {
		if c.got != c.want {
			t.Errorf("istionames.%s = %q, istio.io/api has %q", c.name, c.got, c.want)
		}
	}
}

// TestIstioSource: each name appears in Istio's release-1.31 source (istio.io/istio at the
// pinned commit, read from the module cache through internal/istiosrc) where the constant's
// comment says, written as Istio writes it. The expected text is built from the constants, so
// a constant that drifts from Istio fails here.
func TestIstioSource(t *testing.T) {
	dir, err := istiosrc.ModuleDir(context.Background(), istiosrc.Release131)
	if err != nil {
		t.Fatal(err)
	}
	const (
		discovery   = "manifests/charts/istio-control/istio-discovery/"
		template    = discovery + "files/injection-template.yaml"
		deployment  = discovery + "templates/deployment.yaml"
		configmap   = discovery + "templates/configmap.yaml"
		webhook     = discovery + "templates/mutatingwebhook.yaml"
		revSuffix   = `{{- if not (eq .Values.revision "") }}-{{ .Values.revision }}{{- end }}`
		annotated   = "annotation .ObjectMeta `%s`"
		goldenHello = "pkg/kube/inject/testdata/inject/hello.yaml.injected"
		grpcAgent   = discovery + "files/grpc-agent.yaml"
	)
	defaultRev := strconv.Quote(istionames.DefaultRevision)
	checks := []struct {
		file, want string
		regexp     bool
	}{
		// The injector's template, and what it made of a plain pod (Istio's golden file).
		{file: template, want: "- name: " + istionames.ProxyContainerName + "\n"},
		{file: template, want: "- name: " + istionames.InitContainerName + "\n"},
		{file: template, want: istionames.RevisionAnnotation + ": {{ .Revision | default " + defaultRev + " | quote }}"},
		{file: template, want: istionames.CanonicalNameLabel + ": {{ index .ObjectMeta.Labels `" + istionames.CanonicalNameLabel + "`"},
		{file: template, want: fmt.Sprintf(annotated, istionames.StatusPortAnnotation)},
		{file: template, want: fmt.Sprintf(annotated, istionames.ExcludeInboundPortsAnnotation)},
		{file: template, want: fmt.Sprintf(annotated, istionames.ExcludeOutboundPortsAnnotation)},
		{file: template, want: fmt.Sprintf(annotated, istionames.ExcludeOutboundIPRangesAnnotation)},
		{file: goldenHello, want: istionames.RevisionAnnotation + ": " + istionames.DefaultRevision + "\n"},
		{file: goldenHello, want: fmt.Sprintf(`%s: '{"initContainers":[%q,%q]`, istionames.StatusAnnotation, istionames.InitContainerName, istionames.ProxyContainerName)},
		{file: "pkg/kube/inject/inject.go", want: fmt.Sprintf("ProxyContainerName = %q", istionames.ProxyContainerName)},
		{file: "pkg/kube/inject/inject.go", want: fmt.Sprintf("InitContainerName = %q", istionames.InitContainerName)},

		// istiod's chart.
		{file: discovery + "Chart.yaml", want: "\nname: " + istionames.Istiod + "\n"},
		{file: deployment, want: "  name: " + istionames.Istiod + revSuffix + "\n"},
		{file: deployment, want: "serviceAccountName: " + istionames.Istiod + revSuffix + "\n"},
		{file: deployment, want: "\n    " + istionames.AppLabel + ": " + istionames.IstiodApp + "\n"},
		{file: deployment, want: "\n    " + istionames.IstioLabel + ": " + istionames.IstioPilot + "\n"},
		{file: deployment, want: istionames.RevisionLabel + ": {{ .Values.revision | default " + defaultRev + " | quote }}"},
		{file: deployment, want: "- name: " + istionames.DiscoveryContainerName + "\n"},
		{file: configmap, want: "  name: " + istionames.MeshConfigMap + revSuffix + "\n"},
		{file: configmap, want: "\n  " + istionames.MeshConfigKey + ": |-\n"},
		{file: webhook, want: "  name: " + istionames.SidecarInjectorWebhook + revSuffix + "\n"},
		{file: webhook, want: "\n    " + istionames.AppLabel + ": " + istionames.InjectorApp + "\n"},
		{file: webhook, want: "- key: " + istionames.InjectionLabel + "\n      operator: In\n      values:\n      - " + istionames.InjectionEnabled + "\n"},
		{file: webhook, want: "- key: " + istionames.InjectLabel + "\n"},
		{file: webhook, want: "- key: " + istionames.RevisionLabel + "\n"},
		{file: discovery + "values.yaml", want: "\n      statusPort: " + strconv.Itoa(istionames.StatusPort) + "\n"},
		{file: "manifests/charts/gateways/istio-ingress/values.yaml", want: "\n        " + istionames.IstioLabel + ": " + istionames.IstioIngressGateway + "\n"},

		// Go source.
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`IstioSystemNamespace\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.IstioSystemNamespace))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`DefaultClusterLocalDomain\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.DefaultTrustDomain))), regexp: true},
		{file: "pkg/config/mesh/mesh.go", want: `\n\s*TrustDomain:\s*constants\.DefaultClusterLocalDomain,`, regexp: true},
		{file: "pkg/config/mesh/mesh.go", want: `\n\s*RootNamespace:\s*constants\.IstioSystemNamespace,`, regexp: true},
		{file: "pkg/config/analysis/analyzers/webhook/webhook.go", want: fmt.Sprintf("{%q: %q}", istionames.InjectionLabel, istionames.InjectionDisabled)},
		{file: "pilot/pkg/features/experimental.go", want: fmt.Sprintf(`env.Register("PILOT_CA_CERT_CONFIGMAP", %q,`, istionames.RootCertConfigMap)},
		{file: "pilot/cmd/pilot-agent/status/server.go", want: fmt.Sprintf(`fmt.Sprintf("%s%%v/readyz", container)`, istionames.AppHealthPathPrefix)},
		{file: "operator/pkg/manifest/name.go", want: fmt.Sprintf("OperatorVersionLabel = %q", istionames.OperatorVersionLabel)},

		// Ambient: the values, the CNI's enablement selectors that read the label, the annotation
		// the node agent writes on an enrolled pod and the one it reads to leave inbound uncaptured.
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`DataplaneModeAmbient\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.DataplaneModeAmbient))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`DataplaneModeNone\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.DataplaneModeNone))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`AmbientRedirectionEnabled\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.AmbientRedirectionEnabled))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`AmbientRedirectionPending\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.AmbientRedirectionPending))), regexp: true},
		{file: "manifests/charts/istio-cni/values.yaml", want: fmt.Sprintf("namespaceSelector:\n        matchLabels: {%s: %s}", istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient)},
		{file: "manifests/charts/istio-cni/values.yaml", want: fmt.Sprintf("{ key: %s, operator: NotIn, values: [%s] }", istionames.DataplaneModeLabel, istionames.DataplaneModeNone)},
		{file: "cni/pkg/util/podutil.go", want: "return pod.GetAnnotations()[annotation.AmbientRedirection.Name] == constants.AmbientRedirectionEnabled"},
		{file: "cni/pkg/nodeagent/net.go", want: "util.CheckBooleanAnnotation(pod, annotation.AmbientBypassInboundCapture.Name)"},

		// Waypoints and the Gateway API classes.
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`DefaultNamespaceWaypoint\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.DefaultWaypointName))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`WaypointGatewayClassName\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.WaypointGatewayClass))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`ManagedGatewayMeshController\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.MeshController))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`ManagedGatewayMeshControllerLabel\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.MeshControllerLabel))), regexp: true},
		{file: "pkg/config/constants/constants.go", want: fmt.Sprintf(`ServiceTraffic\s*=\s*%s\n`, regexp.QuoteMeta(strconv.Quote(istionames.WaypointForService))), regexp: true},
		{file: "pilot/pkg/features/pilot.go", want: fmt.Sprintf(`env.Register("PILOT_GATEWAY_API_CONTROLLER_NAME", %q,`, istionames.GatewayController)},
		{file: "pilot/pkg/features/pilot.go", want: fmt.Sprintf(`env.Register("PILOT_GATEWAY_API_DEFAULT_GATEWAYCLASS_NAME", %q,`, istionames.DefaultGatewayClass)},
		{file: "pilot/pkg/model/service.go", want: fmt.Sprintf(`WaypointBound    ConditionType = %q`, istionames.WaypointBoundCondition)},
		{file: "pilot/pkg/model/service.go", want: fmt.Sprintf(`ZtunnelAccepted  ConditionType = %q`, istionames.ZtunnelAcceptedCondition)},
		{file: "pilot/pkg/model/service.go", want: fmt.Sprintf(`WaypointAccepted ConditionType = %q`, istionames.WaypointAcceptedCondition)},
		{file: "istioctl/pkg/waypoint/waypoint.go", want: fmt.Sprintf("Name:     %q,\n\t\t\t\t\tPort:     %d,\n\t\t\t\t\tProtocol: gateway.ProtocolType(protocol.%s),", istionames.WaypointListener, istionames.HBONEPort, istionames.HBONEProtocol)},
		{file: "manifests/charts/istio-control/istio-discovery/files/waypoint.yaml", want: fmt.Sprintf("%q .ControllerLabel", istionames.ManagedGatewayLabel)},
		{file: "manifests/charts/istio-control/istio-discovery/files/waypoint.yaml", want: fmt.Sprintf("%q .Name", istionames.GatewayNameLabel)},

		// The grpc-agent template: its name, the image annotation it reads, where it writes certificates.
		{file: discovery + "templates/istiod-injector-configmap.yaml", want: "      " + istionames.GRPCAgentTemplate + ": |\n{{ .Files.Get \"files/" + istionames.GRPCAgentTemplate + ".yaml\" | trim | indent 8 }}"},
		{file: grpcAgent, want: "{{- if contains \"/\" (annotation .ObjectMeta `" + istionames.ProxyImageAnnotation + "` .Values.global.proxy.image) }}"},
		{file: grpcAgent, want: "- name: OUTPUT_CERTS\n      value: " + istionames.AgentCertsDir + "\n"},
		{file: grpcAgent, want: "- mountPath: " + istionames.AgentCertsDir + "\n        name: istio-data\n"},
	}
	files := map[string]string{}
	for _, c := range checks {
		text, ok := files[c.file]
		if !ok {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(c.file)))
			if err != nil {
				t.Fatal(err)
			}
			text = string(data)
			files[c.file] = text
		}
		found := strings.Contains(text, c.want)
		if c.regexp {
			found = regexp.MustCompile(c.want).MatchString(text)
		}
		if !found {
			t.Errorf("%s (istio.io/istio %s) has no %q", c.file, istiosrc.Release131.Name, c.want)
		}
	}
}

// TestSelectors: the selectors built from the labels read as Istio's charts label.
func TestSelectors(t *testing.T) {
	if istionames.IstiodSelector != "app=istiod" {
		t.Errorf("IstiodSelector = %q", istionames.IstiodSelector)
	}
}
