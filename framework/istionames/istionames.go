// Package istionames holds the names Istio defines that this product uses: labels,
// annotations, selectors, object and container names, and the defaults Istio falls back on.
// Each is written here once, with where Istio defines it: a file of the istio.io/istio module
// (release-1.31), or of istio.io/api for the annotations and labels Istio declares there.
// Nothing else in this module should spell these names; istionames_test.go checks them
// against Istio's source.
//
// It imports nothing, so every package of the module can use it.
package istionames

// Namespaces and mesh-config defaults.
const (
	// IstioSystemNamespace is Istio's default namespace and the mesh config's default rootNamespace: pkg/config/constants/constants.go, pkg/config/mesh/mesh.go.
	IstioSystemNamespace = "istio-system"
	// DefaultTrustDomain is the mesh config's default trustDomain: pkg/config/mesh/mesh.go, constants.DefaultClusterLocalDomain.
	DefaultTrustDomain = "cluster.local"
	// DefaultRevision is what Istio calls the unrevisioned control plane (`.Revision | default "default"`): istio-discovery/files/injection-template.yaml.
	DefaultRevision = "default"
)

// The control plane's objects, in manifests/charts/istio-control/istio-discovery (istiod's
// chart, "istio-discovery/" below).
const (
	// Istiod names istiod's chart (Chart.yaml), Deployment and ServiceAccount, suffixed -<revision>: istio-discovery/templates/deployment.yaml.
	Istiod = "istiod"
	// DiscoveryContainerName is istiod's container: istio-discovery/templates/deployment.yaml.
	DiscoveryContainerName = "discovery"
	// MeshConfigMap is the mesh config's ConfigMap, suffixed -<revision>: istio-discovery/templates/configmap.yaml.
	MeshConfigMap = "istio"
	// MeshConfigKey is the key of MeshConfigMap holding the mesh config: istio-discovery/templates/configmap.yaml.
	MeshConfigKey = "mesh"
	// RootCertConfigMap is the ConfigMap istiod writes the root certificate into in every namespace: pilot/pkg/features/experimental.go PILOT_CA_CERT_CONFIGMAP.
	RootCertConfigMap = "istio-ca-root-cert"
	// SidecarInjectorWebhook is the injector's MutatingWebhookConfiguration, suffixed -<revision> (and -<namespace> outside istio-system): istio-discovery/templates/mutatingwebhook.yaml.
	SidecarInjectorWebhook = "istio-sidecar-injector"
)

// Labels of Istio's components, and selectors built from them.
const (
	// AppLabel is the label Istio's charts name a component by (app: istiod, app: sidecar-injector): istio-discovery/templates/deployment.yaml.
	AppLabel = "app"
	// IstiodApp is istiod's AppLabel value, on its Deployment and pods: istio-discovery/templates/deployment.yaml.
	IstiodApp = "istiod"
	// InjectorApp is the injector webhook configuration's AppLabel value: istio-discovery/templates/mutatingwebhook.yaml.
	InjectorApp = "sidecar-injector"
	// IstioLabel is the label Istio's charts give a component's role (IstioPilot, IstioIngressGateway): istio-discovery/templates/deployment.yaml.
	IstioLabel = "istio"
	// IstioPilot is istiod's IstioLabel value (on its Deployment; on its pods for the default revision only): istio-discovery/templates/deployment.yaml.
	IstioPilot = "pilot"
	// IstioIngressGateway is the ingress gateway's IstioLabel value in istioctl's gateways chart: manifests/charts/gateways/istio-ingress/values.yaml.
	IstioIngressGateway = "ingressgateway"
	// IstiodSelector selects istiod's Deployments and pods of every revision.
	IstiodSelector = AppLabel + "=" + IstiodApp
	// OperatorVersionLabel is the Istio version `istioctl install` labels its objects with: operator/pkg/manifest/name.go OperatorVersionLabel.
	OperatorVersionLabel = "operator.istio.io/version"
)

// Sidecar injection: the switches, and what the injector writes on a pod.
const (
	// InjectionLabel is the namespace label that turns injection by the default revision on or off: istio-discovery/templates/mutatingwebhook.yaml.
	InjectionLabel = "istio-injection"
	// InjectionEnabled is InjectionLabel's "on" value: istio-discovery/templates/mutatingwebhook.yaml.
	InjectionEnabled = "enabled"
	// InjectionDisabled is InjectionLabel's explicit "off" value: pkg/config/analysis/analyzers/webhook/webhook.go.
	InjectionDisabled = "disabled"
	// RevisionLabel names a control-plane revision (or tag): on a namespace or pod it selects the injector, on istiod's objects it is their revision: istio-discovery/templates/mutatingwebhook.yaml.
	RevisionLabel = "istio.io/rev"
	// RevisionAnnotation is the injecting revision, written on every injected pod (never as a label: pkg/kube/inject/webhook.go): istio-discovery/files/injection-template.yaml.
	RevisionAnnotation = RevisionLabel
	// InjectLabel is the per-pod injection switch, "true" or "false", as label (and, deprecated, annotation): istio-discovery/templates/mutatingwebhook.yaml.
	InjectLabel = "sidecar.istio.io/inject"
	// StatusAnnotation is the injector's record of what it added, with the revision: istio.io/api annotation/annotations.yaml, written by pkg/kube/inject/webhook.go.
	StatusAnnotation = "sidecar.istio.io/status"
	// ProxyContainerName is the sidecar's container: pkg/kube/inject/inject.go ProxyContainerName.
	ProxyContainerName = "istio-proxy"
	// InitContainerName is the iptables init container injected without Istio CNI: pkg/kube/inject/inject.go InitContainerName.
	InitContainerName = "istio-init"
	// CanonicalNameLabel is written on every injected pod: istio-discovery/files/injection-template.yaml.
	CanonicalNameLabel = "service.istio.io/canonical-name"
)

// Ambient mode: how a namespace or pod is enrolled, what Istio's CNI node agent writes on a
// pod it has enrolled, and the pod annotation that takes inbound traffic out of capture.
const (
	// DataplaneModeLabel enrols a namespace or pod in ambient mode ("ambient") or keeps a pod out ("none"): istio.io/api label/labels.yaml, the istio-cni chart's ambient.enablementSelectors (manifests/charts/istio-cni/values.yaml).
	DataplaneModeLabel = "istio.io/dataplane-mode"
	// DataplaneModeAmbient is DataplaneModeLabel's value that enrols: pkg/config/constants/constants.go DataplaneModeAmbient.
	DataplaneModeAmbient = "ambient"
	// DataplaneModeNone is DataplaneModeLabel's value that keeps a pod of an enrolled namespace out: pkg/config/constants/constants.go DataplaneModeNone.
	DataplaneModeNone = "none"
	// AmbientRedirectionAnnotation is written by the CNI node agent on a pod whose traffic it redirected to ztunnel: istio.io/api annotation/annotations.yaml, written by cni/pkg/util/podutil.go.
	AmbientRedirectionAnnotation = "ambient.istio.io/redirection"
	// AmbientRedirectionEnabled is the annotation's value once ztunnel took the pod (fully enrolled): pkg/config/constants/constants.go AmbientRedirectionEnabled, read by cni/pkg/util/podutil.go PodFullyEnrolled.
	AmbientRedirectionEnabled = "enabled"
	// AmbientRedirectionPending is its value while the pod's rules are set but no ztunnel took it (its traffic is blocked): pkg/config/constants/constants.go AmbientRedirectionPending.
	AmbientRedirectionPending = "pending"
	// AmbientBypassInboundCaptureAnnotation, "true" on a pod, leaves its inbound traffic uncaptured (ztunnel, STRICT and AuthorizationPolicy bypassed): istio.io/api annotation/annotations.yaml, read by cni/pkg/nodeagent/net.go.
	AmbientBypassInboundCaptureAnnotation = "ambient.istio.io/bypass-inbound-capture"
)

// Per-pod annotations that tune injection.
const (
	// ProxyConfigAnnotation overrides the mesh's ProxyConfig for the pod: istio.io/api annotation/annotations.yaml, read by pkg/kube/inject/webhook.go.
	ProxyConfigAnnotation = "proxy.istio.io/config"
	// RewriteAppHTTPProbersAnnotation turns the probe rewrite off ("false"): istio.io/api annotation/annotations.yaml, read by pkg/kube/inject/app_probe.go.
	RewriteAppHTTPProbersAnnotation = "sidecar.istio.io/rewriteAppHTTPProbers"
	// StatusPortAnnotation moves the proxy's status port: istio-discovery/files/injection-template.yaml.
	StatusPortAnnotation = "status.sidecar.istio.io/port"
	// ExcludeInboundPortsAnnotation lists inbound ports not captured: istio-discovery/files/injection-template.yaml.
	ExcludeInboundPortsAnnotation = "traffic.sidecar.istio.io/excludeInboundPorts"
	// ExcludeOutboundPortsAnnotation lists outbound ports not captured: istio-discovery/files/injection-template.yaml.
	ExcludeOutboundPortsAnnotation = "traffic.sidecar.istio.io/excludeOutboundPorts"
	// ExcludeOutboundIPRangesAnnotation lists outbound CIDRs not captured: istio-discovery/files/injection-template.yaml.
	ExcludeOutboundIPRangesAnnotation = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	// InjectTemplatesAnnotation names the injection templates a pod gets instead of the default (sidecar): istio.io/api annotation/annotations.yaml, read by pkg/kube/inject/inject.go selectTemplates.
	InjectTemplatesAnnotation = "inject.istio.io/templates"
	// ProxyImageAnnotation is the image of the injected istio-proxy container (taken only when it holds a "/"): istio.io/api annotation/annotations.yaml, read by istio-discovery/files/grpc-agent.yaml.
	ProxyImageAnnotation = "sidecar.istio.io/proxyImage"
)

// Istio's injection template that runs pilot-agent without Envoy, for proxyless gRPC.
const (
	// GRPCAgentTemplate is its name in the injector's templates: istio-discovery/templates/istiod-injector-configmap.yaml.
	GRPCAgentTemplate = "grpc-agent"
	// AgentCertsDir is where its pilot-agent writes the workload's key.pem, cert-chain.pem and root-cert.pem (OUTPUT_CERTS), mounted into the app containers too: istio-discovery/files/grpc-agent.yaml.
	AgentCertsDir = "/var/lib/istio/data"
)

// The proxy's status server, where rewritten probes point.
const (
	// StatusPort is the proxy's default status port (global.proxy.statusPort): istio-discovery/values.yaml.
	StatusPort = 15020
	// AppHealthPathPrefix starts the paths a container's rewritten probes get (/app-health/<container>/readyz): pilot/cmd/pilot-agent/status/server.go FormatProberURL.
	AppHealthPathPrefix = "/app-health/"
)

// Waypoints (ambient's L7 proxies) and the Gateway API classes istiod serves, at release-1.31.
const (
	// UseWaypointLabel on a namespace, Service or pod sends its traffic through the named waypoint: istio.io/api label/labels.yaml (io.istio.use-waypoint).
	UseWaypointLabel = "istio.io/use-waypoint"
	// WaypointForLabel on a waypoint Gateway says which traffic it takes (service, workload, all, none): istio.io/api label/labels.yaml; istioctl/pkg/waypoint/waypoint.go sets it.
	WaypointForLabel = "istio.io/waypoint-for"
	// WaypointForService is WaypointForLabel's default value (traffic addressed to Services): pkg/config/constants/constants.go ServiceTraffic.
	WaypointForService = "service"
	// DefaultWaypointName is the name istioctl gives a namespace's waypoint: pkg/config/constants/constants.go DefaultNamespaceWaypoint.
	DefaultWaypointName = "waypoint"
	// WaypointGatewayClass is the GatewayClass of waypoints, created by istiod in ambient mode: pkg/config/constants/constants.go WaypointGatewayClassName; pilot/pkg/config/kube/gatewaycommon/classinfo.go GetBuiltinGatewayClasses (only with PILOT_ENABLE_AMBIENT_WAYPOINTS, on by PILOT_ENABLE_AMBIENT: pilot/pkg/features/ambient.go).
	WaypointGatewayClass = "istio-waypoint"
	// DefaultGatewayClass is Istio's ingress GatewayClass: pilot/pkg/features/pilot.go PILOT_GATEWAY_API_DEFAULT_GATEWAYCLASS_NAME's default.
	DefaultGatewayClass = "istio"
	// MeshController is the controllerName of WaypointGatewayClass: pkg/config/constants/constants.go ManagedGatewayMeshController.
	MeshController = "istio.io/mesh-controller"
	// GatewayController is the controllerName of DefaultGatewayClass: pilot/pkg/features/pilot.go PILOT_GATEWAY_API_CONTROLLER_NAME's default.
	GatewayController = "istio.io/gateway-controller"
	// MeshControllerLabel is the gateway.istio.io/managed value on what istiod deploys for a waypoint: pkg/config/constants/constants.go ManagedGatewayMeshControllerLabel.
	MeshControllerLabel = "istio.io-mesh-controller"
	// ManagedGatewayLabel marks what istiod deploys for a Gateway: files/waypoint.yaml and files/kube-gateway.yaml of the istiod chart.
	ManagedGatewayLabel = "gateway.istio.io/managed"
	// GatewayNameLabel names the Gateway an object was deployed for (Gateway API's label, written by istiod's templates).
	GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"
	// WaypointListener and HBONEPort are the waypoint's one listener, as istioctl writes it (istioctl/pkg/waypoint/waypoint.go): name mesh, port 15008, protocol HBONE.
	WaypointListener = "mesh"
	HBONEPort        = 15008
	HBONEProtocol    = "HBONE"

	// WaypointBoundCondition is the condition istiod writes on a Service that uses a waypoint: pilot/pkg/model/service.go WaypointBound (status True, reason WaypointAccepted, "Successfully attached to waypoint NS/NAME").
	WaypointBoundCondition = "istio.io/WaypointBound"
	// ZtunnelAcceptedCondition is the condition istiod writes on an AuthorizationPolicy ztunnel enforces (a selector or namespace policy): pilot/pkg/model/service.go ZtunnelAccepted.
	ZtunnelAcceptedCondition = "ZtunnelAccepted"
	// WaypointAcceptedCondition is the condition istiod writes on an AuthorizationPolicy with targetRefs, and the reason of a bound Service's WaypointBound: pilot/pkg/model/service.go WaypointAccepted.
	WaypointAcceptedCondition = "WaypointAccepted"
)
