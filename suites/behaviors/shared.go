package behaviors

import (
	"meshconform/framework/policy"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
)

// Sources many behaviours probe from.
var (
	plainClient = cases.Source{Role: cases.Client, Sample: workload.PlainClient}
	meshClient  = cases.Source{Role: cases.Client, Sample: workload.Sleep}
	allowedSA   = cases.Source{Role: cases.Client, Sample: workload.TestClient}
	// proxySource runs in the proxy of a meshed pod: the proxy's own traffic is not
	// captured, so it is plaintext (seed 001), and openssl there speaks TLS to the server's
	// proxy itself (seed 000).
	proxySource = cases.Source{Role: cases.Client, Sample: workload.ProductCatalog, Proxy: true}
)

// Targets many behaviours call.
var (
	httpbin  = cases.Target{Role: cases.Server, Sample: workload.Httpbin}
	frontend = cases.Target{Role: cases.Server, Sample: workload.Frontend}
	nginx    = cases.Target{Role: cases.Server, Sample: workload.Nginx}
)

// serverAndClients is the namespace shape most behaviours use: a meshed server namespace and
// a meshed client namespace holding a mesh client and a plain (opted-out) client.
func serverAndClients(server []workload.Sample, clients ...workload.Sample) []cases.Namespace {
	if len(clients) == 0 {
		clients = []workload.Sample{workload.Sleep, workload.PlainClient}
	}
	return []cases.Namespace{
		{Role: cases.Server, Meshed: true, Samples: server},
		{Role: cases.Client, Meshed: true, Samples: clients},
	}
}

// authzClients are the clients of the AuthorizationPolicy behaviours: a mesh client, the
// allowed service account's client, and a plain client.
var authzClients = []workload.Sample{workload.Sleep, workload.TestClient, workload.PlainClient}

// NamespaceStrict is seed 001's namespace-wide STRICT policy, named as there.
func NamespaceStrict(ns string) policy.Object {
	return policy.PeerAuthentication(ns, "namespace-policy", policy.Mode(policy.MTLSStrict))
}

func namespaceStrict(e cases.Env) []policy.Object {
	return []policy.Object{NamespaceStrict(e.NS(cases.Server))}
}

func namespacePermissive(e cases.Env) []policy.Object {
	return []policy.Object{policy.PeerAuthentication(e.NS(cases.Server), "namespace-policy", policy.Mode(policy.MTLSPermissive))}
}

// nginxAllowGET is seed 004's ALLOW policy: only the test-service-account principal, GET only.
func nginxAllowGET(e cases.Env) []policy.Object {
	return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "nginx-authn",
		policy.Selector(map[string]string{"run": "my-nginx"}),
		policy.Action(policy.Allow),
		policy.Rule(policy.FromPrincipals(e.Principal(cases.Client, "test-service-account")), policy.ToMethods("GET")),
	)}
}

// denyAll is an AuthorizationPolicy with an empty spec: it denies every request.
func denyAll(e cases.Env) []policy.Object {
	return []policy.Object{policy.AuthorizationPolicy(e.NS(cases.Server), "deny-authz-ns")}
}

// deleted is the Writes of a Run that deletes objs through the Applier.
func deleted(objs []policy.Object) []cases.Write {
	ws := make([]cases.Write, len(objs))
	for i, o := range objs {
		ws[i] = cases.Write{Object: o, Verbs: []cases.Verb{cases.Delete}}
	}
	return ws
}
