// Package policy builds Istio's security objects as typed istio.io/client-go values
// (PeerAuthentication, AuthorizationPolicy, DestinationRule) and applies them with the run's
// ownership labels.
//
//	pa := policy.PeerAuthentication(ns, "default", policy.Mode(policy.MTLSStrict))
//	ap := policy.AuthorizationPolicy(ns, "deny-get", policy.Action(policy.Deny),
//		policy.Selector(map[string]string{"app": "server"}),
//		policy.Rule(policy.FromNamespaces("client"), policy.ToMethods("GET")))
//	dr := policy.DestinationRule(ns, "plain", "server."+ns+".svc.cluster.local", policy.TLSMode(policy.TLSDisable))
//	err := policy.NewApplier(istio, runID).Apply(ctx, pa)
package policy

import (
	"fmt"
	"strconv"
	"strings"

	networkingapi "istio.io/api/networking/v1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Modes, TLS modes and actions, named as in Istio's documentation.
type (
	MTLSMode      = securityapi.PeerAuthentication_MutualTLS_Mode
	ClientTLSMode = networkingapi.ClientTLSSettings_TLSmode
	RuleAction    = securityapi.AuthorizationPolicy_Action
)

const (
	MTLSUnset      MTLSMode = securityapi.PeerAuthentication_MutualTLS_UNSET
	MTLSDisable    MTLSMode = securityapi.PeerAuthentication_MutualTLS_DISABLE
	MTLSPermissive MTLSMode = securityapi.PeerAuthentication_MutualTLS_PERMISSIVE
	MTLSStrict     MTLSMode = securityapi.PeerAuthentication_MutualTLS_STRICT

	TLSDisable     ClientTLSMode = networkingapi.ClientTLSSettings_DISABLE
	TLSSimple      ClientTLSMode = networkingapi.ClientTLSSettings_SIMPLE
	TLSMutual      ClientTLSMode = networkingapi.ClientTLSSettings_MUTUAL
	TLSIstioMutual ClientTLSMode = networkingapi.ClientTLSSettings_ISTIO_MUTUAL

	Allow  RuleAction = securityapi.AuthorizationPolicy_ALLOW
	Deny   RuleAction = securityapi.AuthorizationPolicy_DENY
	Audit  RuleAction = securityapi.AuthorizationPolicy_AUDIT
	Custom RuleAction = securityapi.AuthorizationPolicy_CUSTOM
)

// ParseMTLSMode reads a PeerAuthentication mode as written in YAML ("STRICT").
func ParseMTLSMode(s string) (MTLSMode, error) {
	v, ok := securityv1beta1.PeerAuthentication_MutualTLS_Mode_value[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("mTLS mode %q is not one of UNSET, DISABLE, PERMISSIVE, STRICT", s)
	}
	return MTLSMode(v), nil
}

// ParseTLSMode reads a DestinationRule TLS mode as written in YAML ("ISTIO_MUTUAL").
func ParseTLSMode(s string) (ClientTLSMode, error) {
	v, ok := networkingv1alpha3.ClientTLSSettings_TLSmode_value[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("TLS mode %q is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL", s)
	}
	return ClientTLSMode(v), nil
}

// ParseAction reads an AuthorizationPolicy action as written in YAML ("DENY").
func ParseAction(s string) (RuleAction, error) {
	v, ok := securityv1beta1.AuthorizationPolicy_Action_value[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("action %q is not one of ALLOW, DENY, AUDIT, CUSTOM", s)
	}
	return RuleAction(v), nil
}

// Options are typed per kind, so that a PeerAuthentication option cannot be given to a
// DestinationRule; the options that make sense for all three (Selector, Labels,
// Annotations) satisfy all three.
type (
	PeerAuthenticationOption interface {
		applyPA(*securityv1.PeerAuthentication)
	}
	AuthorizationPolicyOption interface {
		applyAP(*securityv1.AuthorizationPolicy)
	}
	DestinationRuleOption interface {
		applyDR(*networkingv1.DestinationRule)
	}
)

type (
	paOption func(*securityv1.PeerAuthentication)
	apOption func(*securityv1.AuthorizationPolicy)
	drOption func(*networkingv1.DestinationRule)
)

func (f paOption) applyPA(o *securityv1.PeerAuthentication)  { f(o) }
func (f apOption) applyAP(o *securityv1.AuthorizationPolicy) { f(o) }
func (f drOption) applyDR(o *networkingv1.DestinationRule)   { f(o) }

// CommonOption applies to every kind.
type CommonOption struct {
	meta     func(*metav1.ObjectMeta)
	selector *typeapi.WorkloadSelector
}

func (c CommonOption) applyPA(o *securityv1.PeerAuthentication) {
	c.apply(&o.ObjectMeta)
	if c.selector != nil {
		o.Spec.Selector = c.selector
	}
}

func (c CommonOption) applyAP(o *securityv1.AuthorizationPolicy) {
	c.apply(&o.ObjectMeta)
	if c.selector != nil {
		o.Spec.Selector = c.selector
	}
}

func (c CommonOption) applyDR(o *networkingv1.DestinationRule) {
	c.apply(&o.ObjectMeta)
	if c.selector != nil {
		o.Spec.WorkloadSelector = c.selector
	}
}

func (c CommonOption) apply(m *metav1.ObjectMeta) {
	if c.meta != nil {
		c.meta(m)
	}
}

// Selector limits the object to workloads with these labels (spec.selector, or
// spec.workloadSelector for a DestinationRule). Without it the object covers the namespace
// (the whole mesh in the root namespace).
func Selector(matchLabels map[string]string) CommonOption {
	return CommonOption{selector: &typeapi.WorkloadSelector{MatchLabels: copyMap(matchLabels)}}
}

// Labels adds metadata labels.
func Labels(labels map[string]string) CommonOption {
	return CommonOption{meta: func(m *metav1.ObjectMeta) { m.Labels = merge(m.Labels, labels) }}
}

// Annotations adds metadata annotations.
func Annotations(annotations map[string]string) CommonOption {
	return CommonOption{meta: func(m *metav1.ObjectMeta) { m.Annotations = merge(m.Annotations, annotations) }}
}

// PeerAuthentication builds a security.istio.io/v1 PeerAuthentication. With no options its
// spec is empty, which Istio reads as "inherit from the parent scope".
func PeerAuthentication(ns, name string, opts ...PeerAuthenticationOption) *securityv1.PeerAuthentication {
	o := &securityv1.PeerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}
	for _, opt := range opts {
		opt.applyPA(o)
	}
	return o
}

// Mode sets spec.mtls.mode.
func Mode(m MTLSMode) PeerAuthenticationOption {
	return paOption(func(o *securityv1.PeerAuthentication) {
		o.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: m}
	})
}

// PortMTLS sets spec.portLevelMtls[port].mode. Istio requires a Selector with it (the CRD
// rejects it otherwise: "portLevelMtls requires selector").
func PortMTLS(port uint32, m MTLSMode) PeerAuthenticationOption {
	return paOption(func(o *securityv1.PeerAuthentication) {
		if o.Spec.PortLevelMtls == nil {
			o.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{}
		}
		o.Spec.PortLevelMtls[port] = &securityapi.PeerAuthentication_MutualTLS{Mode: m}
	})
}

// DestinationRule builds a networking.istio.io/v1 DestinationRule for host.
func DestinationRule(ns, name, host string, opts ...DestinationRuleOption) *networkingv1.DestinationRule {
	o := &networkingv1.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "DestinationRule"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}
	o.Spec.Host = host
	for _, opt := range opts {
		opt.applyDR(o)
	}
	return o
}

// TLSMode sets spec.trafficPolicy.tls.mode.
func TLSMode(m ClientTLSMode) DestinationRuleOption {
	return drOption(func(o *networkingv1.DestinationRule) {
		trafficPolicy(o).Tls = &networkingapi.ClientTLSSettings{Mode: m}
	})
}

// PortTLS sets the TLS mode for one port (spec.trafficPolicy.portLevelSettings), replacing
// an earlier setting for the same port.
func PortTLS(port uint32, m ClientTLSMode) DestinationRuleOption {
	return drOption(func(o *networkingv1.DestinationRule) {
		tp := trafficPolicy(o)
		for _, s := range tp.PortLevelSettings {
			if s.GetPort().GetNumber() == port {
				s.Tls = &networkingapi.ClientTLSSettings{Mode: m}
				return
			}
		}
		tp.PortLevelSettings = append(tp.PortLevelSettings, &networkingapi.TrafficPolicy_PortTrafficPolicy{
			Port: &networkingapi.PortSelector{Number: port},
			Tls:  &networkingapi.ClientTLSSettings{Mode: m},
		})
	})
}

// ExportTo sets spec.exportTo ("." keeps the rule to its own namespace).
func ExportTo(namespaces ...string) DestinationRuleOption {
	return drOption(func(o *networkingv1.DestinationRule) { o.Spec.ExportTo = append([]string(nil), namespaces...) })
}

func trafficPolicy(o *networkingv1.DestinationRule) *networkingapi.TrafficPolicy {
	if o.Spec.TrafficPolicy == nil {
		o.Spec.TrafficPolicy = &networkingapi.TrafficPolicy{}
	}
	return o.Spec.TrafficPolicy
}

// AuthorizationPolicy builds a security.istio.io/v1 AuthorizationPolicy. With no options its
// spec is empty: action ALLOW and no rules, which matches nothing, so it denies every request
// to the workloads it selects (Istio's "allow-nothing" / deny-all).
func AuthorizationPolicy(ns, name string, opts ...AuthorizationPolicyOption) *securityv1.AuthorizationPolicy {
	o := &securityv1.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}
	for _, opt := range opts {
		opt.applyAP(o)
	}
	return o
}

// Action sets spec.action.
func Action(a RuleAction) AuthorizationPolicyOption {
	return apOption(func(o *securityv1.AuthorizationPolicy) { o.Spec.Action = a })
}

// Provider sets the extension provider of a CUSTOM policy (and the action to CUSTOM).
func Provider(name string) AuthorizationPolicyOption {
	return apOption(func(o *securityv1.AuthorizationPolicy) {
		o.Spec.Action = Custom
		o.Spec.ActionDetail = &securityv1beta1.AuthorizationPolicy_Provider{
			Provider: &securityv1beta1.AuthorizationPolicy_ExtensionProvider{Name: name},
		}
	})
}

// TargetRef is one entry of an AuthorizationPolicy's spec.targetRefs: the object a policy is
// attached to instead of a selector. In ambient mode that attaches it to a waypoint, which
// enforces its L7 fields (HTTP methods, paths, request principals); ztunnel enforces only
// selector and namespace-wide policies, and drops their HTTP fields. Istio writes how it bound
// the policy in its status: condition WaypointAccepted ("bound to NS/WAYPOINT", or reason
// TargetNotFound / AncestorNotBound), pilot/pkg/serviceregistry/ambient/policies.go:64-137 at
// release-1.31.
type TargetRef struct{ Group, Kind, Name string }

// ServiceRef targets a Service (core group): the waypoint that Service uses enforces the policy.
func ServiceRef(name string) TargetRef { return TargetRef{Group: "", Kind: "Service", Name: name} }

// GatewayRef targets a Gateway (gateway.networking.k8s.io): a waypoint, or an ingress Gateway.
func GatewayRef(name string) TargetRef {
	return TargetRef{Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: name}
}

// GatewayClassRef targets a GatewayClass (every waypoint of class istio-waypoint); Istio accepts
// it only for a policy in the root namespace (policies.go:75-97).
func GatewayClassRef(name string) TargetRef {
	return TargetRef{Group: "gateway.networking.k8s.io", Kind: "GatewayClass", Name: name}
}

// TargetRefs appends spec.targetRefs. The CRD refuses a policy with both targetRefs and a
// selector ("only one of targetRefs or selector can be set"), so do not give Selector too.
func TargetRefs(refs ...TargetRef) AuthorizationPolicyOption {
	return apOption(func(o *securityv1.AuthorizationPolicy) {
		for _, r := range refs {
			o.Spec.TargetRefs = append(o.Spec.TargetRefs, &typeapi.PolicyTargetReference{Group: r.Group, Kind: r.Kind, Name: r.Name})
		}
	})
}

// RulePart adds to one rule.
type RulePart func(*securityapi.Rule)

// Rule appends a rule made of parts. A rule matches when every one of its from, to and when
// parts match, and within from (or to) any one entry matches. Rule() with no parts is the
// empty rule, which matches every request (ALLOW with it allows all).
func Rule(parts ...RulePart) AuthorizationPolicyOption {
	return apOption(func(o *securityv1.AuthorizationPolicy) {
		r := &securityapi.Rule{}
		for _, p := range parts {
			p(r)
		}
		o.Spec.Rules = append(o.Spec.Rules, r)
	})
}

// SourcePart sets a field of one from.source.
type SourcePart func(*securityapi.Source)

// From appends one from entry whose source has all of parts (they AND).
func From(parts ...SourcePart) RulePart {
	return func(r *securityapi.Rule) {
		s := &securityapi.Source{}
		for _, p := range parts {
			p(s)
		}
		r.From = append(r.From, &securityapi.Rule_From{Source: s})
	}
}

// FromPrincipals appends a from entry matching any of these peer identities
// ("cluster.local/ns/a/sa/b"). Shorthand for From(Principals(p...)).
func FromPrincipals(p ...string) RulePart { return From(Principals(p...)) }

// FromNamespaces appends a from entry matching peers in any of these namespaces.
func FromNamespaces(ns ...string) RulePart { return From(Namespaces(ns...)) }

func Principals(p ...string) SourcePart {
	return func(s *securityapi.Source) { s.Principals = append(s.Principals, p...) }
}
func NotPrincipals(p ...string) SourcePart {
	return func(s *securityapi.Source) { s.NotPrincipals = append(s.NotPrincipals, p...) }
}

// RequestPrincipals matches requests whose validated JWT is "<iss>/<sub>" (JWT-002).
func RequestPrincipals(p ...string) SourcePart {
	return func(s *securityapi.Source) { s.RequestPrincipals = append(s.RequestPrincipals, p...) }
}
func Namespaces(ns ...string) SourcePart {
	return func(s *securityapi.Source) { s.Namespaces = append(s.Namespaces, ns...) }
}

// ServiceAccounts matches peers by "namespace/name" service account (Istio ≥1.24; the API
// server refuses it together with Namespaces).
func ServiceAccounts(sa ...string) SourcePart {
	return func(s *securityapi.Source) { s.ServiceAccounts = append(s.ServiceAccounts, sa...) }
}

// OperationPart sets a field of one to.operation.
type OperationPart func(*securityapi.Operation)

// To appends one to entry whose operation has all of parts (they AND).
func To(parts ...OperationPart) RulePart {
	return func(r *securityapi.Rule) {
		op := &securityapi.Operation{}
		for _, p := range parts {
			p(op)
		}
		r.To = append(r.To, &securityapi.Rule_To{Operation: op})
	}
}

// ToMethods appends a to entry matching any of these HTTP methods.
func ToMethods(m ...string) RulePart { return To(Methods(m...)) }

// ToPorts appends a to entry matching any of these destination ports.
func ToPorts(ports ...uint32) RulePart { return To(Ports(ports...)) }

// ToPaths appends a to entry matching any of these paths (exact, "prefix*" or "*suffix").
func ToPaths(p ...string) RulePart { return To(Paths(p...)) }

func Methods(m ...string) OperationPart {
	return func(op *securityapi.Operation) { op.Methods = append(op.Methods, m...) }
}
func Paths(p ...string) OperationPart {
	return func(op *securityapi.Operation) { op.Paths = append(op.Paths, p...) }
}

// Ports matches destination ports (the API holds them as strings).
func Ports(ports ...uint32) OperationPart {
	return func(op *securityapi.Operation) {
		for _, p := range ports {
			op.Ports = append(op.Ports, strconv.FormatUint(uint64(p), 10))
		}
	}
}

// When appends a condition: key (e.g. "request.headers[x-user]", "source.ip") has one of values.
func When(key string, values ...string) RulePart {
	return func(r *securityapi.Rule) {
		r.When = append(r.When, &securityapi.Condition{Key: key, Values: append([]string(nil), values...)})
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func merge(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}
