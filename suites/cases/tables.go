package cases

import (
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meshconform/framework/catalog"
	"meshconform/framework/istionames"
	"meshconform/framework/policy"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
)

// Sources used across the tables.
var (
	plainClient = Source{Role: Client, Sample: workload.PlainClient}
	meshClient  = Source{Role: Client, Sample: workload.Sleep}
	allowedSA   = Source{Role: Client, Sample: workload.TestClient}
	// proxySource curls from the istio-proxy container of a meshed pod: the proxy's own
	// traffic is not captured, so it is plaintext (seed 001).
	proxySource = Source{Role: Client, Sample: workload.ProductCatalog, Container: istionames.ProxyContainerName}
)

var (
	httpbin  = Target{Role: Server, Sample: workload.Httpbin}
	frontend = Target{Role: Server, Sample: workload.Frontend}
	nginx    = Target{Role: Server, Sample: workload.Nginx}
)

// Namespace shapes shared by most cases: a meshed server namespace and a meshed client
// namespace holding a mesh client and a plain (opted-out) client.
func serverAndClients(server []workload.Sample, clients ...workload.Sample) []Namespace {
	if len(clients) == 0 {
		clients = []workload.Sample{workload.Sleep, workload.PlainClient}
	}
	return []Namespace{
		{Role: Server, Meshed: true, Samples: server},
		{Role: Client, Meshed: true, Samples: clients},
	}
}

// namespaceStrict is seed 001's namespace-wide policy, named as there.
func namespaceStrict(e Env) []policy.Object {
	return []policy.Object{NamespaceStrict(e.NS(Server))}
}

func namespacePermissive(e Env) []policy.Object {
	return []policy.Object{policy.PeerAuthentication(e.NS(Server), "namespace-policy", policy.Mode(policy.MTLSPermissive))}
}

// nginxAllowGET is seed 004's ALLOW policy: only the test-service-account principal, GET only.
func nginxAllowGET(e Env) []policy.Object {
	return []policy.Object{policy.AuthorizationPolicy(e.NS(Server), "nginx-authn",
		policy.Selector(map[string]string{"run": "my-nginx"}),
		policy.Action(policy.Allow),
		policy.Rule(policy.FromPrincipals(e.Principal(Client, "test-service-account")), policy.ToMethods("GET")),
	)}
}

func denyAll(e Env) []policy.Object {
	return []policy.Object{policy.AuthorizationPolicy(e.NS(Server), "deny-authz-ns")}
}

// MTLS are the data cases of the mtls area (MTLS-012, the MySQL case, is a special spec).
func MTLS() []Case {
	return []Case{
		{
			ID: "MTLS-001", Name: "plaintext and mesh clients get 200 under the default PERMISSIVE mode",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{{Name: "no policy", Probes: []Probe{
				{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
				{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
			}}},
		},
		{
			ID: "MTLS-002", Name: "namespace STRICT resets a plaintext client (curl exit 56)",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []Probe{
				{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
			}}},
		},
		{
			ID: "MTLS-003", Name: "the proxy container's own plaintext traffic is rejected under STRICT",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.ProductCatalog),
			Steps: []Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []Probe{
				{Name: "istio-proxy container", From: proxySource, To: httpbin, Expect: catalog.PlaintextRejected},
			}}},
		},
		{
			ID: "MTLS-004", Name: "a mesh client still gets 200 under STRICT (auto mTLS)",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []Probe{
				{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
			}}},
		},
		{
			ID: "MTLS-005", Name: "deleting the STRICT policy restores plaintext access",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{
				{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []Probe{
					{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
				}},
				{Name: "policy deleted", Delete: namespaceStrict, Probes: []Probe{
					{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
				}},
			},
		},
		{
			ID: "MTLS-006", Name: "workload STRICT by selector affects only that workload",
			Namespaces: serverAndClients([]workload.Sample{workload.Frontend, workload.Httpbin}),
			Steps: []Step{{Name: "frontend STRICT + ISTIO_MUTUAL DestinationRule", Apply: func(e Env) []policy.Object {
				return []policy.Object{
					policy.PeerAuthentication(e.NS(Server), "frontend",
						policy.Selector(map[string]string{"app": "frontend"}), policy.Mode(policy.MTLSStrict)),
					policy.DestinationRule(e.NS(Server), "frontend", e.FQDN(Server, "frontend"),
						policy.TLSMode(policy.TLSIstioMutual)),
				}
			}, Probes: []Probe{
				{Name: "plain client to frontend", From: plainClient, To: frontend, Expect: catalog.PlaintextRejected},
				{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.Allowed},
			}}},
		},
		{
			ID: "MTLS-007", Name: "mesh-wide STRICT in the root namespace rejects plaintext everywhere, until deleted",
			Disruptive: true,
			Namespaces: []Namespace{
				{Role: Server, Meshed: true, Samples: []workload.Sample{workload.Httpbin}},
				{Role: Other, Meshed: true, Samples: []workload.Sample{workload.Nginx}},
				{Role: Client, Meshed: true, Samples: []workload.Sample{workload.PlainClient}},
			},
			Steps: []Step{
				{Name: "mesh-wide STRICT", Apply: meshWideStrict, Probes: []Probe{
					{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
					{Name: "plain client to nginx", From: plainClient, To: Target{Role: Other, Sample: workload.Nginx}, Expect: catalog.PlaintextRejected},
				}},
				{Name: "mesh-wide policy deleted", Delete: meshWideStrict, Probes: []Probe{
					{Name: "plain client to httpbin", From: plainClient, To: httpbin, Expect: catalog.Allowed},
					{Name: "plain client to nginx", From: plainClient, To: Target{Role: Other, Sample: workload.Nginx}, Expect: catalog.Allowed},
				}},
			},
		},
		{
			ID: "MTLS-008", Name: "a DISABLE DestinationRule makes a mesh client send plaintext to a STRICT server: 503 reset",
			Namespaces: serverAndClients([]workload.Sample{workload.Nginx}),
			Steps: []Step{{Name: "nginx STRICT + DISABLE DestinationRule", Apply: func(e Env) []policy.Object {
				return []policy.Object{
					policy.PeerAuthentication(e.NS(Server), "nginx-auth",
						policy.Selector(map[string]string{"run": "my-nginx"}), policy.Mode(policy.MTLSStrict)),
					// In the client's namespace, as in seed 004 (applied where the client ran),
					// so it changes only this case's client.
					policy.DestinationRule(e.NS(Client), "disable-tls", "*."+e.NS(Server)+".svc.cluster.local",
						policy.TLSMode(policy.TLSDisable)),
				}
			}, Probes: []Probe{
				{Name: "mesh client", From: meshClient, To: nginx, Expect: catalog.DisableVsStrict},
			}}},
		},
		{
			ID: "MTLS-009", Name: "non-mesh clients are rejected under STRICT and admitted under PERMISSIVE; mesh clients under both",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{
				{Name: "namespace PERMISSIVE", Apply: namespacePermissive, Probes: []Probe{
					{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.Allowed},
					{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
				}},
				{Name: "namespace STRICT", Apply: namespaceStrict, Probes: []Probe{
					{Name: "plain client", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
					{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
				}},
			},
		},
		{
			ID: "MTLS-010", Name: "excludeInboundPorts does not stop mesh clients sending mTLS; a DISABLE DestinationRule for the port fixes it",
			Namespaces: serverAndClients([]workload.Sample{workload.HttpbinExcluded}, workload.Sleep),
			Steps: []Step{
				{Name: "server port excluded from capture", Probes: []Probe{
					{Name: "mesh client", From: meshClient, To: Target{Role: Server, Sample: workload.HttpbinExcluded}, Expect: catalog.UpstreamConnectError},
				}},
				{Name: "DISABLE DestinationRule for the port", Apply: func(e Env) []policy.Object {
					return []policy.Object{policy.DestinationRule(e.NS(Server), "httpbin-excluded-plaintext",
						e.FQDN(Server, "httpbin-excluded"), policy.PortTLS(8000, policy.TLSDisable))}
				}, Probes: []Probe{
					{Name: "mesh client", From: meshClient, To: Target{Role: Server, Sample: workload.HttpbinExcluded}, Expect: catalog.Allowed},
				}},
			},
		},
		{
			ID: "MTLS-011", Name: "portLevelMtls PERMISSIVE (keyed by the container port) opens one port of a STRICT workload",
			Namespaces: serverAndClients([]workload.Sample{workload.MultiPort}, workload.PlainClient),
			Steps: []Step{{Name: "STRICT with port 8081 PERMISSIVE", Apply: func(e Env) []policy.Object {
				return []policy.Object{policy.PeerAuthentication(e.NS(Server), "multiport",
					policy.Selector(map[string]string{"app": "multiport"}), policy.Mode(policy.MTLSStrict),
					policy.PortMTLS(8081, policy.MTLSPermissive))}
			}, Probes: []Probe{
				{Name: "plain client to the PERMISSIVE port", From: plainClient, To: Target{Role: Server, Sample: workload.MultiPort, Port: 8001}, Expect: catalog.Allowed},
				{Name: "plain client to the STRICT port", From: plainClient, To: Target{Role: Server, Sample: workload.MultiPort, Port: 8000}, Expect: catalog.PlaintextRejected},
			}}},
		},
	}
}

func meshWideStrict(e Env) []policy.Object {
	return []policy.Object{policy.PeerAuthentication(e.RootNamespace, "mesh-wide", policy.Mode(policy.MTLSStrict))}
}

// Authz are the data cases of the authz area.
func Authz() []Case {
	clients := []workload.Sample{workload.Sleep, workload.TestClient, workload.PlainClient}
	return []Case{
		{
			ID: "AUTHZ-001", Name: "an empty-spec AuthorizationPolicy denies everything: 403 RBAC: access denied",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{{Name: "deny-authz-ns", Apply: denyAll, Probes: []Probe{
				{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.RBACDenied},
			}}},
		},
		{
			ID: "AUTHZ-002", Name: "ALLOW by principal: other service accounts are denied, the allowed one gets 200",
			Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, clients...),
			Steps: []Step{{Name: "ALLOW test-service-account GET", Apply: nginxAllowGET, Probes: []Probe{
				{Name: "sa sleep", From: meshClient, To: nginx, Expect: catalog.RBACDenied},
				{Name: "sa test-service-account", From: allowedSA, To: nginx, Expect: catalog.Allowed},
			}}},
		},
		{
			ID: "AUTHZ-003", Name: "ALLOW by method: the allowed principal is denied POST",
			Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, clients...),
			Steps: []Step{{Name: "ALLOW test-service-account GET", Apply: nginxAllowGET, Probes: []Probe{
				{Name: "sa test-service-account POST", From: allowedSA, To: nginx, Method: "POST", Expect: catalog.RBACDenied},
			}}},
		},
		{
			ID: "AUTHZ-004", Name: "a plain client has no principal: 403 under a principal ALLOW policy",
			Namespaces: serverAndClients([]workload.Sample{workload.Nginx}, clients...),
			Steps: []Step{{Name: "ALLOW test-service-account GET, server PERMISSIVE", Apply: nginxAllowGET, Probes: []Probe{
				{Name: "plain client (runs as test-service-account, no sidecar)", From: plainClient, To: nginx, Expect: catalog.Denied403},
			}}},
		},
		{
			ID: "AUTHZ-005", Name: "removing the deny policy restores access",
			Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}),
			Steps: []Step{
				{Name: "deny-authz-ns", Apply: denyAll, Probes: []Probe{
					{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.RBACDenied},
				}},
				{Name: "policy deleted", Delete: denyAll, Probes: []Probe{
					{Name: "mesh client", From: meshClient, To: httpbin, Expect: catalog.Allowed},
				}},
			},
		},
	}
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckXFCC asserts seed 000/004's X-Forwarded-Client-Cert shape on httpbin's /headers
// echo: By is the server's SPIFFE id, Hash 64 hex digits, a Subject key, URI the client's.
func CheckXFCC(body, wantBy, wantURI string) error {
	raw, err := probe.EchoedHeader(body, "X-Forwarded-Client-Cert")
	if err != nil {
		return fmt.Errorf("no X-Forwarded-Client-Cert in the echoed headers: %w", err)
	}
	els, err := probe.ParseXFCC(raw)
	if err != nil {
		return err
	}
	if len(els) == 0 {
		return fmt.Errorf("X-Forwarded-Client-Cert %q has no element", raw)
	}
	el := els[len(els)-1] // the element the server's own proxy appended
	var problems []string
	if el.By != wantBy {
		problems = append(problems, fmt.Sprintf("By=%q, want %q", el.By, wantBy))
	}
	if !hexHash.MatchString(el.Hash) {
		problems = append(problems, fmt.Sprintf("Hash=%q, want 64 hex digits", el.Hash))
	}
	if !subjectKey.MatchString(raw) {
		problems = append(problems, "no Subject= key")
	}
	found := false
	for _, u := range el.URI {
		found = found || u == wantURI
	}
	if !found {
		problems = append(problems, fmt.Sprintf("URI=%q, want %q", el.URI, wantURI))
	}
	if len(problems) > 0 {
		return fmt.Errorf("X-Forwarded-Client-Cert %q: %v", raw, problems)
	}
	return nil
}

// Seed 000 prints `Subject=""`: the key is there, its value may be empty.
var subjectKey = regexp.MustCompile(`(^|[;,])Subject=`)

// Identity are the data cases of the identity area (CERT-002..004 are special specs).
func Identity() []Case {
	return []Case{{
		ID: "CERT-001", Name: "X-Forwarded-Client-Cert carries the server's and the client's SPIFFE identities",
		Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.Sleep),
		Steps: []Step{{Name: "mesh client GET /headers", Probes: []Probe{{
			Name: "mesh client", From: meshClient, To: Target{Role: Server, Sample: workload.Httpbin, Path: "/headers"},
			Expect: catalog.Allowed,
			Check: func(e Env, o probe.Outcome) error {
				return CheckXFCC(o.Body, e.SPIFFE(Server, "httpbin"), e.SPIFFE(Client, "sleep"))
			},
		}}}},
	}}
}

// Ingress are the data cases of the ingress area.
func Ingress() []Case {
	const host = "httpbin.meshconform.example"
	return []Case{{
		ID: "INGRESS-001", Name: "the ingress gateway reaches a STRICT backend while a plain client is reset",
		Namespaces: serverAndClients([]workload.Sample{workload.Httpbin}, workload.PlainClient),
		Steps: []Step{{Name: "namespace STRICT + Gateway + VirtualService", Apply: func(e Env) []policy.Object {
			return append(namespaceStrict(e), gateway(e, host), virtualService(e, host))
		}, Probes: []Probe{
			{Name: "through the gateway", From: plainClient, To: Target{Role: Server, Sample: workload.Httpbin, ViaGateway: true, Host: host}, Expect: catalog.Allowed},
			{Name: "plain client direct", From: plainClient, To: httpbin, Expect: catalog.PlaintextRejected},
		}}},
	}}
}

func gateway(e Env, host string) policy.Object {
	sel := map[string]any{}
	for k, v := range e.Gateway.Selector {
		sel[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "httpbin", "namespace": e.NS(Server)},
		"spec": map[string]any{
			"selector": sel,
			"servers": []any{map[string]any{
				"port":  map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"},
				"hosts": []any{host},
			}},
		},
	}}
}

func virtualService(e Env, host string) policy.Object {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "httpbin", "namespace": e.NS(Server)},
		"spec": map[string]any{
			"hosts":    []any{host},
			"gateways": []any{"httpbin"},
			"http": []any{map[string]any{
				"route": []any{map[string]any{"destination": map[string]any{
					"host": e.FQDN(Server, "httpbin"), "port": map[string]any{"number": int64(8000)},
				}}},
			}},
		},
	}}
}

// All is every data case, by area order.
func All() []Case {
	var out []Case
	for _, group := range [][]Case{MTLS(), Authz(), Identity(), Ingress()} {
		out = append(out, group...)
	}
	return out
}
