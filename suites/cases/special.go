package cases

import "meshconform/framework/policy"

// Objects the specs outside the tables apply (probes, MySQL), kept here so that the tier-1
// dry-run covers them too.

// NamespaceStrict is seed 001's namespace-wide STRICT policy.
func NamespaceStrict(ns string) policy.Object {
	return policy.PeerAuthentication(ns, "namespace-policy", policy.Mode(policy.MTLSStrict))
}

// ProbePortPermissive keeps probe-port STRICT except its probe port 8081 (PROBE-003). The
// port is the container port: portLevelMtls is keyed by the target port, not the Service's.
func ProbePortPermissive(ns string) policy.Object {
	return policy.PeerAuthentication(ns, "probe-port",
		policy.Selector(map[string]string{"app": "probe-port"}), policy.Mode(policy.MTLSStrict),
		policy.PortMTLS(8081, policy.MTLSPermissive))
}

// SpecialObjects are the objects above, in role server's namespace, for validation.
func SpecialObjects(e Env) []policy.Object {
	ns := e.NS(Server)
	return []policy.Object{NamespaceStrict(ns), ProbePortPermissive(ns)}
}
