package posture

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"meshconform/framework/istionames"
	"meshconform/framework/probe"
)

// Placeholders for a finding's missing value or object.
const (
	absent   = "(absent)"
	noneName = "(none)"
)

// outcome is what a check's evaluation yields before the allow list is applied.
type outcome struct {
	findings []Finding
	examined string
	notes    []string
	err      error
}

// check is one POSTURE check: how to evaluate it and how to fix it.
type check struct {
	id     string
	eval   func(s *snapshot) outcome
	remedy func(s *snapshot) string
}

var checks = []check{
	{MeshWideStrict, checkMeshWideStrict, func(s *snapshot) string {
		return fmt.Sprintf("create a PeerAuthentication in %s with no selector and spec.mtls.mode: STRICT (posture.Hardened)", s.rootNS)
	}},
	{NothingWeakensStrict, checkNothingWeakens, func(*snapshot) string {
		return "set spec.mtls.mode and every spec.portLevelMtls mode to STRICT or UNSET, or allow-list the object with the reason it must accept plaintext"
	}},
	{MeshWideDefaultDeny, checkDefaultDeny, func(s *snapshot) string {
		return fmt.Sprintf("create an AuthorizationPolicy in %s with spec: {} (no selector, no rules: deny all), remove mesh-wide allow-all rules, and allow per workload (posture.Hardened)", s.rootNS)
	}},
	{SidecarsEverywhere, checkSidecars, remedyInMesh},
	{NoCaptureBypass, checkCaptureBypass, func(s *snapshot) string {
		annotations := "the traffic.sidecar.istio.io/exclude* annotations"
		if s.anyAmbientBypass() {
			annotations = fmt.Sprintf("the traffic.sidecar.istio.io/exclude* and %s annotations", istionames.AmbientBypassInboundCaptureAnnotation)
		}
		return "remove " + annotations + ", or allow-list the workload and confine those ports with a NetworkPolicy"
	}},
	{NoPrivilegedInit, checkPrivilegedInit, func(*snapshot) string {
		return "install Istio CNI (istio-cni chart, istiod value pilot.cni.enabled=true) so injected pods need no NET_ADMIN/NET_RAW, then restart them"
	}},
	{ControlPlaneIsolated, checkControlPlaneIsolated, func(s *snapshot) string {
		return fmt.Sprintf("apply a NetworkPolicy in %s that selects istiod and admits only proxies on 15012 (injected pods, gateways included, in any namespace: label service.istio.io/canonical-name) and webhooks on 15017 (posture.Hardened)", s.systemNS)
	}},
}

// evaluate runs every check on the snapshot and applies the allow list.
func evaluate(s *snapshot, allow AllowList) Report {
	r := Report{
		RootNamespace: s.rootNS, RootNamespaceSource: s.rootNSSource,
		SystemNamespace: s.systemNS, SystemNamespaceSource: s.systemNSSource,
		MeshedNamespaces: s.meshedNamespaces(), AmbientNamespaces: s.ambientNamespaces(),
	}
	if s.rootErr != nil {
		r.RootNamespaceSource = "unknown: " + s.rootErr.Error()
	}
	for _, c := range checks {
		o := c.eval(s)
		res := CheckResult{ID: c.id, Title: title(c.id), Remedy: c.remedy(s), Examined: o.examined,
			Notes: o.notes, Findings: []Finding{}, Allowed: []Finding{}}
		if o.err != nil {
			res.Result, res.Error = Error, o.err.Error()
			r.Checks = append(r.Checks, res)
			continue
		}
		for _, f := range o.findings {
			if a := allow.allowance(c.id, f); a != nil {
				f.Allowed = a
				res.Allowed = append(res.Allowed, f)
			} else {
				res.Findings = append(res.Findings, f)
			}
		}
		res.Result = Pass
		if len(res.Findings) > 0 {
			res.Result = Fail
		}
		r.Checks = append(r.Checks, res)
	}
	return r
}

// POSTURE-001: a selector-less PeerAuthentication in the root namespace with mode STRICT.
// With several, Istio applies the oldest (then by name), so that one decides.
func checkMeshWideStrict(s *snapshot) outcome {
	if err := firstErr(s.rootErr, s.paErr); err != nil {
		return outcome{err: err}
	}
	var meshWide []*securityv1.PeerAuthentication
	for _, pa := range s.peerAuths {
		if pa.Namespace == s.rootNS && selectsAll(pa.Spec.GetSelector()) {
			meshWide = append(meshWide, pa)
		}
	}
	o := outcome{examined: fmt.Sprintf("%d selector-less PeerAuthentication(s) in root namespace %s", len(meshWide), s.rootNS)}
	if len(meshWide) == 0 {
		o.findings = append(o.findings, Finding{Kind: "PeerAuthentication", Namespace: s.rootNS, Name: noneName,
			Field: "spec.mtls.mode", Value: absent,
			Message: "no mesh-wide PeerAuthentication: workloads default to PERMISSIVE and accept plaintext",
			subject: subject{namespace: s.rootNS}})
		return o
	}
	slices.SortFunc(meshWide, func(a, b *securityv1.PeerAuthentication) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	eff := meshWide[0]
	if len(meshWide) > 1 {
		o.notes = append(o.notes, fmt.Sprintf("%d selector-less PeerAuthentications in %s; Istio applies only the oldest, %s", len(meshWide), s.rootNS, eff.Name))
	}
	if mode := eff.Spec.GetMtls().GetMode(); mode != securityapi.PeerAuthentication_MutualTLS_STRICT {
		o.findings = append(o.findings, Finding{Kind: "PeerAuthentication", Namespace: eff.Namespace, Name: eff.Name,
			Field: "spec.mtls.mode", Value: modeValue(mode),
			Message: "the mesh-wide mode is not STRICT: plaintext is accepted",
			subject: objectSubject(&eff.ObjectMeta, "")})
	}
	return o
}

// POSTURE-002: no PeerAuthentication (namespace, workload or port level) sets PERMISSIVE or DISABLE.
func checkNothingWeakens(s *snapshot) outcome {
	if s.paErr != nil {
		return outcome{err: s.paErr}
	}
	var o outcome
	n := 0
	for _, pa := range s.peerAuths {
		if !s.inScope(pa.Namespace) && pa.Namespace != s.rootNS {
			continue
		}
		n++
		sub := objectSubject(&pa.ObjectMeta, "")
		if m := pa.Spec.GetMtls().GetMode(); weak(m) {
			o.findings = append(o.findings, Finding{Kind: "PeerAuthentication", Namespace: pa.Namespace, Name: pa.Name,
				Field: "spec.mtls.mode", Value: m.String(), Message: paScope(pa, s.rootNS) + " mode weakens STRICT", subject: sub})
		}
		ports := make([]uint32, 0, len(pa.Spec.GetPortLevelMtls()))
		for p := range pa.Spec.GetPortLevelMtls() {
			ports = append(ports, p)
		}
		slices.Sort(ports)
		for _, p := range ports {
			if m := pa.Spec.GetPortLevelMtls()[p].GetMode(); weak(m) {
				o.findings = append(o.findings, Finding{Kind: "PeerAuthentication", Namespace: pa.Namespace, Name: pa.Name,
					Field: fmt.Sprintf("spec.portLevelMtls[%d].mode", p), Value: m.String(),
					Message: fmt.Sprintf("port %d of %s accepts plaintext", p, paScope(pa, s.rootNS)), subject: sub})
			}
		}
	}
	o.examined = fmt.Sprintf("%d PeerAuthentication(s)", n)
	return o
}

// POSTURE-003: an AuthorizationPolicy in the root namespace that denies by default: no
// selector or targetRef, action ALLOW, no rules (spec: {}). A selector-less ALLOW policy with
// an empty rule there allows everything mesh-wide and undoes it, so it is a finding too.
func checkDefaultDeny(s *snapshot) outcome {
	if err := firstErr(s.rootErr, s.apErr); err != nil {
		return outcome{err: err}
	}
	o := outcome{examined: fmt.Sprintf("%d AuthorizationPolicy(ies) in root namespace %s", len(s.authz), s.rootNS)}
	var denyAll bool
	var seen []string
	for _, ap := range s.authz {
		if !meshWidePolicy(ap) {
			continue
		}
		spec := &ap.Spec
		seen = append(seen, fmt.Sprintf("%s (%s, %d rules)", ap.Name, spec.GetAction(), len(spec.GetRules())))
		if spec.GetAction() != securityapi.AuthorizationPolicy_ALLOW {
			continue
		}
		if len(spec.GetRules()) == 0 {
			denyAll = true
			continue
		}
		for i, rule := range spec.GetRules() {
			if len(rule.GetFrom()) == 0 && len(rule.GetTo()) == 0 && len(rule.GetWhen()) == 0 {
				o.findings = append(o.findings, Finding{Kind: "AuthorizationPolicy", Namespace: ap.Namespace, Name: ap.Name,
					Field: fmt.Sprintf("spec.rules[%d]", i), Value: "{}",
					Message: "an empty rule in a mesh-wide ALLOW policy allows every request and undoes default deny",
					subject: objectSubject(&ap.ObjectMeta, "")})
			}
		}
	}
	if !denyAll {
		msg := "no mesh-wide deny-by-default policy: requests without a matching policy are allowed"
		if len(seen) > 0 {
			msg += "; mesh-wide policies present: " + strings.Join(seen, ", ")
		}
		o.findings = append([]Finding{{Kind: "AuthorizationPolicy", Namespace: s.rootNS, Name: noneName,
			Field: "spec", Value: absent, Message: msg, subject: subject{namespace: s.rootNS}}}, o.findings...)
	}
	return o
}

// POSTURE-004: every pod in a meshed namespace is in the mesh, by either mode: it has a proxy
// (sidecar injection), or Istio's CNI agent enrolled it in ambient (it wrote
// ambient.istio.io/redirection: enabled on the pod); none opts out. An audit that finds no
// meshed namespace fails: it could check no pod, and a mesh whose namespaces carry none of
// Istio's labels is more likely misread (or a wrong --namespaces) than secure.
func checkSidecars(s *snapshot) outcome {
	if err := firstErr(s.nsErr, s.podErr); err != nil {
		return outcome{err: err}
	}
	modes := s.namespaceModes()
	if len(modes) == 0 {
		return outcome{examined: "no pod: " + noMeshedNamespace, findings: []Finding{{Kind: "Namespace", Name: noneName,
			Field: "metadata.labels", Value: absent, Message: s.noMeshedNamespaceMessage(), subject: subject{unlistable: true}}}}
	}
	var o outcome
	n, finished, ambient := 0, 0, 0
	for i := range s.pods {
		p := &s.pods[i]
		mode, meshed := modes[p.Namespace]
		if !meshed {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			finished++ // not running: nothing to bypass the mesh
			continue
		}
		n++
		if hasProxy(p) || ambientEnrolled(p) {
			continue
		}
		sub := podSubject(p)
		if mode == modeAmbient {
			o.findings = append(o.findings, notEnrolled(p, sub))
			continue
		}
		switch {
		case p.Labels[istionames.InjectLabel] == "false":
			o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
				Field: fmt.Sprintf("metadata.labels['%s']", istionames.InjectLabel), Value: "false",
				Message: "injection disabled in a meshed namespace: no sidecar", subject: sub})
		case p.Annotations[istionames.InjectLabel] == "false":
			o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
				Field: fmt.Sprintf("metadata.annotations['%s']", istionames.InjectLabel), Value: "false",
				Message: "injection disabled in a meshed namespace: no sidecar", subject: sub})
		default:
			o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
				Field: "spec.containers[*].name", Value: strings.Join(containerNames(p), ","),
				Message: "no istio-proxy container: created before injection was enabled, or injection failed", subject: sub})
		}
	}
	for _, m := range modes {
		if m == modeAmbient {
			ambient++
		}
	}
	o.examined = fmt.Sprintf("%d running pod(s) in %d meshed namespace(s)", n, len(modes))
	if ambient > 0 {
		o.examined += fmt.Sprintf(", %d of them ambient", ambient)
	}
	if finished > 0 {
		o.notes = append(o.notes, fmt.Sprintf("%d finished pod(s) (Succeeded/Failed) not examined", finished))
	}
	for _, ns := range s.namespaces {
		if modes[ns.Name] == modeSidecar && ns.Labels[istionames.DataplaneModeLabel] == istionames.DataplaneModeAmbient {
			o.notes = append(o.notes, fmt.Sprintf("namespace %s is labelled for sidecar injection and %s=%s: injection takes precedence, so its pods were judged as sidecar pods (an un-injected pod there still passes if ambient enrolled it)",
				ns.Name, istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient))
		}
	}
	return o
}

// noMeshedNamespace is what the report says when no namespace is in the mesh.
const noMeshedNamespace = "no meshed namespace found"

// noMeshedNamespaceMessage says which labels were looked for, and where.
func (s *snapshot) noMeshedNamespaceMessage() string {
	where := "no namespace"
	if len(s.scope) > 0 {
		where = "none of the namespaces audited (" + strings.Join(s.scope, ", ") + ")"
	}
	return fmt.Sprintf("%s: %s is labelled %s=%s, %s=<revision> or %s=%s, so there is no pod to check; "+
		"a mesh nothing is labelled into protects nothing, and a mesh labelled otherwise is not what this audit can vouch for",
		noMeshedNamespace, where, istionames.InjectionLabel, istionames.InjectionEnabled, istionames.RevisionLabel,
		istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient)
}

// ambientEnrolled: Istio's CNI node agent redirected the pod's traffic to ztunnel and ztunnel
// took it (cni/pkg/util/podutil.go PodFullyEnrolled). The annotation is the CNI's record of
// the fact, not the user's intent (the label).
func ambientEnrolled(p *corev1.Pod) bool {
	return p.Annotations[istionames.AmbientRedirectionAnnotation] == istionames.AmbientRedirectionEnabled
}

// notEnrolled says why a pod of an ambient namespace is not in the mesh, most specific first:
// it opted out, it cannot be captured (host network: cni/pkg/util/enablement_selector.go),
// ztunnel has not taken it yet (pending), or the CNI agent never redirected it.
func notEnrolled(p *corev1.Pod, sub subject) Finding {
	f := Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, subject: sub}
	annotation := fmt.Sprintf("metadata.annotations['%s']", istionames.AmbientRedirectionAnnotation)
	node := p.Spec.NodeName
	if node == "" {
		node = "(not scheduled)"
	}
	switch v, ok := p.Annotations[istionames.AmbientRedirectionAnnotation]; {
	case p.Labels[istionames.DataplaneModeLabel] == istionames.DataplaneModeNone:
		f.Field, f.Value = fmt.Sprintf("metadata.labels['%s']", istionames.DataplaneModeLabel), istionames.DataplaneModeNone
		f.Message = "opted out of ambient in a meshed namespace: its traffic bypasses ztunnel (no mTLS, no AuthorizationPolicy)"
	case p.Spec.HostNetwork:
		f.Field, f.Value = "spec.hostNetwork", "true"
		f.Message = "host-network pod in an ambient namespace: Istio's CNI never enrols it, its traffic bypasses ztunnel"
	case v == istionames.AmbientRedirectionPending:
		f.Field, f.Value = annotation, v
		f.Message = fmt.Sprintf("redirected, but no ztunnel has taken it: its traffic is blocked until one does (is ztunnel running on node %s?)", node)
	default:
		f.Field, f.Value = annotation, absent
		if ok {
			f.Value = v
		}
		f.Message = fmt.Sprintf("not enrolled in ambient: Istio's CNI agent has not redirected it to ztunnel (is istio-cni-node running on node %s?)", node)
	}
	return f
}

// remedyInMesh is POSTURE-004's remedy for the modes the audit found.
func remedyInMesh(s *snapshot) string {
	modes := s.namespaceModes()
	if len(modes) == 0 {
		return fmt.Sprintf("label the namespaces that belong in the mesh (%s=%s or %s=<revision> for sidecars, %s=%s for ambient), or point --namespaces at them",
			istionames.InjectionLabel, istionames.InjectionEnabled, istionames.RevisionLabel, istionames.DataplaneModeLabel, istionames.DataplaneModeAmbient)
	}
	var sidecar, ambient bool
	for _, m := range modes {
		sidecar = sidecar || m == modeSidecar
		ambient = ambient || m == modeAmbient
	}
	var parts []string
	if sidecar {
		parts = append(parts, "restart pods created before injection was enabled, remove sidecar.istio.io/inject=\"false\"")
	}
	if ambient {
		parts = append(parts, fmt.Sprintf("remove %s=%s from ambient pods, check istio-cni-node and ztunnel on the pod's node", istionames.DataplaneModeLabel, istionames.DataplaneModeNone))
	}
	return strings.Join(parts, "; ") + ", or allow-list the workload with its reason"
}

// POSTURE-005: no pod excludes ports or IP ranges from sidecar capture, nor its inbound
// traffic from ambient capture (ambient.istio.io/bypass-inbound-capture: the CNI node agent
// then installs no inbound redirect, so plaintext reaches the app past ztunnel, STRICT and
// ztunnel's AuthorizationPolicies: cni/pkg/nodeagent/net.go, cni/pkg/iptables/iptables.go).
func checkCaptureBypass(s *snapshot) outcome {
	if s.podErr != nil {
		return outcome{err: s.podErr}
	}
	var o outcome
	n := 0
	for i := range s.pods {
		p := &s.pods[i]
		if !s.inScope(p.Namespace) {
			continue
		}
		n++
		if v, ok := p.Annotations[istionames.AmbientBypassInboundCaptureAnnotation]; ok {
			switch bypass, err := strconv.ParseBool(v); {
			case err != nil:
				o.notes = append(o.notes, fmt.Sprintf("Pod %s/%s has %s=%q, not a boolean: Istio's CNI ignores it (cni/pkg/util/podutil.go CheckBooleanAnnotation)",
					p.Namespace, p.Name, istionames.AmbientBypassInboundCaptureAnnotation, v))
			case bypass:
				o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
					Field: fmt.Sprintf("metadata.annotations['%s']", istionames.AmbientBypassInboundCaptureAnnotation), Value: v,
					Message: "inbound traffic is not captured in ambient: plaintext reaches the app past ztunnel (no STRICT, no AuthorizationPolicy)",
					subject: podSubject(p)})
			}
		}
		for _, key := range []string{istionames.ExcludeInboundPortsAnnotation, istionames.ExcludeOutboundPortsAnnotation, istionames.ExcludeOutboundIPRangesAnnotation} {
			v, ok := p.Annotations[key]
			if !ok || strings.TrimSpace(v) == "" {
				continue
			}
			msg := "this traffic bypasses the sidecar: no mTLS, no AuthorizationPolicy"
			if key == istionames.ExcludeInboundPortsAnnotation {
				ports, own := appExcludedInbound(p, v)
				if len(ports) == 0 {
					continue // only the proxy's own ports: what the injector writes with Istio CNI
				}
				msg = fmt.Sprintf("inbound port(s) %s bypass the sidecar: no mTLS, no AuthorizationPolicy", strings.Join(ports, ","))
				if len(own) > 0 {
					msg += fmt.Sprintf(" (%s: the proxy's own, written by the injector, not counted)", strings.Join(own, ","))
				}
			}
			o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
				Field: fmt.Sprintf("metadata.annotations['%s']", key), Value: v,
				Message: msg, subject: podSubject(p)})
		}
	}
	o.examined = fmt.Sprintf("%d pod(s)", n)
	return o
}

// anyAmbientBypass: a pod in scope asks ambient not to capture its inbound traffic.
func (s *snapshot) anyAmbientBypass() bool {
	for i := range s.pods {
		p := &s.pods[i]
		if b, err := strconv.ParseBool(p.Annotations[istionames.AmbientBypassInboundCaptureAnnotation]); err == nil && b && s.inScope(p.Namespace) {
			return true
		}
	}
	return false
}

const debugPortFlag = "--debug-port="

// Ports of the proxy itself. With Istio CNI the injector writes excludeInboundPorts on every
// pod it injects: the pod's own value (or the mesh-wide global.proxy.excludeInboundPorts) with
// the status port appended (istio-discovery/files/injection-template.yaml, the annotations block
// under pilot.cni.enabled, and excludeInboundPort in pkg/kube/inject/template.go), so a pod
// nobody annotated carries "15020". Without CNI, istio-init excludes the same ports plus Envoy's
// 15090 and 15021 on every pod ("-d 15090,15021,<status port>" in that template). Excluding
// them bypasses nothing of the application, whoever wrote them.
var (
	defaultStatusPort = strconv.Itoa(istionames.StatusPort)
	proxyInboundPorts = []string{"15090", "15021"}
)

// appExcludedInbound splits an excludeInboundPorts value into the application's ports, which
// bypass the sidecar, and the proxy's own (its status port, 15090, 15021).
func appExcludedInbound(p *corev1.Pod, value string) (app, own []string) {
	ownPorts := append([]string{statusPort(p)}, proxyInboundPorts...)
	for _, port := range strings.Split(value, ",") {
		port = strings.TrimSpace(port)
		switch {
		case port == "":
		case slices.Contains(ownPorts, port):
			own = append(own, port)
		default:
			app = append(app, port)
		}
	}
	return app, own
}

// statusPort is the pod's proxy status port as the injector chose it: the pod's
// status.sidecar.istio.io/port annotation, else the --debug-port the template gives a native
// sidecar's preStop hook (which carries a mesh-wide global.proxy.statusPort), else the default.
func statusPort(p *corev1.Pod) string {
	if v := strings.TrimSpace(p.Annotations[istionames.StatusPortAnnotation]); v != "" {
		return v
	}
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		if c.Name != istionames.ProxyContainerName || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
			continue
		}
		for _, arg := range c.Lifecycle.PreStop.Exec.Command {
			if v, ok := strings.CutPrefix(arg, debugPortFlag); ok && v != "" {
				return v
			}
		}
	}
	return defaultStatusPort
}

// POSTURE-006: no injected pod carries NET_ADMIN/NET_RAW (the istio-init container has them
// when Istio CNI is not in use).
func checkPrivilegedInit(s *snapshot) outcome {
	if s.podErr != nil {
		return outcome{err: s.podErr}
	}
	var o outcome
	n := 0
	for i := range s.pods {
		p := &s.pods[i]
		if !s.inScope(p.Namespace) || !injected(p) {
			continue
		}
		n++
		for _, group := range []struct {
			field string
			list  []corev1.Container
		}{{"spec.initContainers", p.Spec.InitContainers}, {"spec.containers", p.Spec.Containers}} {
			for _, c := range group.list {
				caps := netCaps(c)
				if len(caps) == 0 {
					continue
				}
				msg := fmt.Sprintf("container %s adds %s in an injected pod", c.Name, strings.Join(caps, ", "))
				if c.Name == istionames.InitContainerName {
					msg = "istio-init sets up iptables with " + strings.Join(caps, ", ") + ": Istio CNI is not in use"
				}
				o.findings = append(o.findings, Finding{Kind: "Pod", Namespace: p.Namespace, Name: p.Name,
					Field:   fmt.Sprintf("%s[%s].securityContext.capabilities.add", group.field, c.Name),
					Value:   "[" + strings.Join(capStrings(c.SecurityContext.Capabilities.Add), " ") + "]",
					Message: msg, subject: podSubject(p)})
			}
		}
	}
	o.examined = fmt.Sprintf("%d injected pod(s)", n)
	return o
}

// POSTURE-007: a NetworkPolicy in the Istio system namespace selects istiod for Ingress and
// does not admit everything (an ingress rule with neither from nor ports).
func checkControlPlaneIsolated(s *snapshot) outcome {
	if s.npErr != nil {
		return outcome{err: s.npErr}
	}
	target := labels.Set{istionames.AppLabel: istionames.IstiodApp, istionames.IstioLabel: istionames.IstioPilot}
	if len(s.istiodPods) > 0 {
		target = s.istiodPods[0].Labels
	}
	o := outcome{examined: fmt.Sprintf("%d NetworkPolicy(ies) in %s, against istiod labels %s", len(s.netpols), s.systemNS, labels.Set(target))}
	for i := range s.netpols {
		np := &s.netpols[i]
		why := isolates(np, target)
		if why == "" {
			return o
		}
		o.notes = append(o.notes, fmt.Sprintf("NetworkPolicy %s/%s does not count: %s", np.Namespace, np.Name, why))
	}
	o.findings = append(o.findings, Finding{Kind: "NetworkPolicy", Namespace: s.systemNS, Name: noneName,
		Field: "spec.podSelector", Value: absent,
		Message: fmt.Sprintf("no NetworkPolicy in %s isolates istiod: any pod in any namespace can reach the control plane", s.systemNS),
		subject: subject{namespace: s.systemNS}})
	return o
}

// isolates returns "" when np restricts ingress to pods labelled target, else why not.
func isolates(np *networkingv1.NetworkPolicy, target labels.Set) string {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return "invalid podSelector: " + err.Error()
	}
	if !sel.Matches(target) {
		return fmt.Sprintf("podSelector %s does not select istiod", metav1.FormatLabelSelector(&np.Spec.PodSelector))
	}
	ingress := len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
	if !ingress {
		return "policyTypes has no Ingress"
	}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 && len(r.Ports) == 0 {
			return fmt.Sprintf("spec.ingress[%d] has neither from nor ports: it admits everything", i)
		}
	}
	return ""
}

// meshMode is how a namespace joins the mesh.
type meshMode string

const (
	modeSidecar meshMode = "sidecar"
	modeAmbient meshMode = "ambient"
)

// namespaceModes maps each meshed namespace in scope to how it is meshed. Sidecar: label
// istio-injection=enabled, or istio.io/rev set (unless istio-injection=disabled, which Istio's
// webhooks honour over the revision). Ambient: label istio.io/dataplane-mode=ambient (the
// istio-cni chart's enablement selector). A namespace labelled both is the sidecar's: the
// injector adds a proxy, and the CNI leaves injected pods alone (enablement_selector.go).
func (s *snapshot) namespaceModes() map[string]meshMode {
	out := map[string]meshMode{}
	for _, ns := range s.namespaces {
		if !s.inScope(ns.Name) {
			continue
		}
		inj := ns.Labels[istionames.InjectionLabel]
		_, rev := ns.Labels[istionames.RevisionLabel]
		switch {
		case inj == istionames.InjectionEnabled || (rev && inj != istionames.InjectionDisabled):
			out[ns.Name] = modeSidecar
		case ns.Labels[istionames.DataplaneModeLabel] == istionames.DataplaneModeAmbient:
			out[ns.Name] = modeAmbient
		}
	}
	return out
}

// meshedNamespaces lists the meshed namespaces in scope, by either mode, sorted.
func (s *snapshot) meshedNamespaces() []string {
	out := slices.Collect(maps.Keys(s.namespaceModes()))
	slices.Sort(out)
	return out
}

// ambientNamespaces lists those meshed by ambient enrolment, sorted.
func (s *snapshot) ambientNamespaces() []string {
	var out []string
	for ns, m := range s.namespaceModes() {
		if m == modeAmbient {
			out = append(out, ns)
		}
	}
	slices.Sort(out)
	return out
}

// hasProxy: istio-proxy as a container, or as a native sidecar (probe.ProxyContainer).
func hasProxy(p *corev1.Pod) bool {
	_, _, ok := probe.ProxyContainer(p)
	return ok
}

// injected: the injector's status annotation, or a proxy container.
func injected(p *corev1.Pod) bool {
	_, ok := p.Annotations[istionames.StatusAnnotation]
	return ok || hasProxy(p)
}

// netCaps returns NET_ADMIN/NET_RAW (or ALL) among the container's added capabilities.
func netCaps(c corev1.Container) []string {
	if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
		return nil
	}
	var out []string
	for _, cap := range c.SecurityContext.Capabilities.Add {
		switch n := strings.TrimPrefix(strings.ToUpper(string(cap)), "CAP_"); n {
		case "NET_ADMIN", "NET_RAW", "ALL":
			out = append(out, n)
		}
	}
	return out
}

func capStrings(caps []corev1.Capability) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = string(c)
	}
	return out
}

func containerNames(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}

func podSubject(p *corev1.Pod) subject {
	return objectSubject(&p.ObjectMeta, ownerWorkload(p))
}

func objectSubject(m *metav1.ObjectMeta, workload string) subject {
	return subject{namespace: m.Namespace, name: m.Name, workload: workload, labels: m.Labels, annotations: m.Annotations}
}

// ownerWorkload names the workload that owns a pod: the controller's name, with a
// ReplicaSet's pod-template-hash suffix removed to give the Deployment.
func ownerWorkload(p *corev1.Pod) string {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return ""
	}
	if ref.Kind == "ReplicaSet" {
		if h := p.Labels["pod-template-hash"]; h != "" {
			return strings.TrimSuffix(ref.Name, "-"+h)
		}
	}
	return ref.Name
}

// selectsAll: no selector, or one with no labels, applies to the whole namespace.
func selectsAll(sel *typeapi.WorkloadSelector) bool {
	return sel == nil || len(sel.GetMatchLabels()) == 0
}

// meshWidePolicy: an AuthorizationPolicy with no selector and no targetRef(s).
func meshWidePolicy(ap *securityv1.AuthorizationPolicy) bool {
	return selectsAll(ap.Spec.GetSelector()) && ap.Spec.GetTargetRef() == nil && len(ap.Spec.GetTargetRefs()) == 0
}

func paScope(pa *securityv1.PeerAuthentication, root string) string {
	switch {
	case !selectsAll(pa.Spec.GetSelector()):
		return "workload-level (selector " + labels.Set(pa.Spec.GetSelector().GetMatchLabels()).String() + ")"
	case pa.Namespace == root:
		return "mesh-wide"
	}
	return "namespace-level"
}

func weak(m securityapi.PeerAuthentication_MutualTLS_Mode) bool {
	return m == securityapi.PeerAuthentication_MutualTLS_PERMISSIVE || m == securityapi.PeerAuthentication_MutualTLS_DISABLE
}

func modeValue(m securityapi.PeerAuthentication_MutualTLS_Mode) string {
	if m == securityapi.PeerAuthentication_MutualTLS_UNSET {
		return "UNSET (Istio's default: PERMISSIVE)"
	}
	return m.String()
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
