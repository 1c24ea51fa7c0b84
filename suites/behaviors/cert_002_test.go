package behaviors

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"meshconform/framework/probe"
)

const (
	td       = "cluster.local"
	serverID = "spiffe://cluster.local/ns/sample/sa/httpbin"
	// Mesh CA names, in the shape seed 000 describes (root-signer root, signer intermediate).
	meshRootCN = "istio_v1_cloud_workload_root-signer-0-2018-04-25T14:11:33+00:00"
	meshIntCN  = "istio_v1_cloud_workload_signer-2024-05-01T10:00:00+00:00"
	managedTD  = "my-project.svc.id.goog"
	managedID  = "spiffe://my-project.svc.id.goog/ns/sample/sa/httpbin"
)

// TestCheckServedChain serves chains built here over loopback TLS and reads them with the
// real openssl s_client, then judges them: istiod's and Mesh CA's shapes, with and without
// the root, and the ways a chain can be wrong.
func TestCheckServedChain(t *testing.T) {
	istiodRoot := newCA(t, pkix.Name{Organization: []string{td}}, nil)
	meshRoot := newCA(t, pkix.Name{CommonName: meshRootCN, Organization: []string{"Google LLC"}}, nil)
	meshInt := newCA(t, pkix.Name{CommonName: meshIntCN}, meshRoot)
	plugged := newCA(t, pkix.Name{CommonName: "Root CA", Organization: []string{"Istio"}}, nil)
	otherTD := newCA(t, pkix.Name{Organization: []string{"example.org"}}, nil)
	// impostor has istiod's root's name but another key.
	impostor := newCA(t, pkix.Name{Organization: []string{td}}, nil)

	leaf, key := leafCert(t, istiodRoot, serverID, 24*time.Hour)
	meshLeaf, meshKey := leafCert(t, meshInt, managedID, 24*time.Hour)
	pluggedLeaf, pluggedKey := leafCert(t, plugged, serverID, 24*time.Hour)
	otherLeaf, otherKey := leafCert(t, otherTD, serverID, 24*time.Hour)

	cases := []struct {
		name     string
		chain    func(t *testing.T) probe.Chain
		td, want string
		wantKind CAKind
		wantErrs []string // substrings of the error; none: must pass
	}{
		{name: "istiod root sent", td: td, want: serverID, wantKind: CAIstiod,
			chain: func(t *testing.T) probe.Chain { return testChain(t, key, leaf, istiodRoot.cert) }},
		{name: "istiod root not sent: the issuer is judged", td: td, want: serverID, wantKind: CAIstiod,
			chain: func(t *testing.T) probe.Chain { return testChain(t, key, leaf) }},
		{name: "mesh CA with root", td: managedTD, want: managedID, wantKind: CAMeshCA,
			chain: func(t *testing.T) probe.Chain { return testChain(t, meshKey, meshLeaf, meshInt.cert, meshRoot.cert) }},
		{name: "mesh CA without root", td: managedTD, want: managedID, wantKind: CAMeshCA,
			chain: func(t *testing.T) probe.Chain { return testChain(t, meshKey, meshLeaf, meshInt.cert) }},
		{name: "another server's identity", td: td, want: "spiffe://cluster.local/ns/sample/sa/other", wantKind: CAIstiod,
			wantErrs: []string{"the leaf's SPIFFE id is " + serverID + ", want spiffe://cluster.local/ns/sample/sa/other"},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, key, leaf, istiodRoot.cert) }},
		{name: "root of another trust domain", td: td, want: serverID,
			wantErrs: []string{`root subject is "O=example.org": neither O=cluster.local`},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, otherKey, otherLeaf, otherTD.cert) }},
		{name: "plugged-in CA", td: td, want: serverID,
			wantErrs: []string{`"CN=Root CA,O=Istio"`, "plugged-in CA"},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, pluggedKey, pluggedLeaf, plugged.cert) }},
		{name: "plugged-in CA, root not sent", td: td, want: serverID,
			wantErrs: []string{`issuer of the last certificate served (the root was not sent) is "CN=Root CA,O=Istio"`},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, pluggedKey, pluggedLeaf) }},
		{name: "out of order", td: managedTD, want: managedID, wantKind: CAMeshCA,
			wantErrs: []string{"certificate 0's issuer", "is not certificate 1's subject"},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, meshKey, meshLeaf, meshRoot.cert, meshInt.cert) }},
		{name: "root with the right name but another key", td: td, want: serverID, wantKind: CAIstiod,
			wantErrs: []string{"certificate 0 is not signed by certificate 1"},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, key, leaf, impostor.cert) }},
		{name: "a lone self-signed certificate", td: td, want: serverID, wantKind: CAIstiod,
			wantErrs: []string{"the leaf has no spiffe:// URI SAN", "the only certificate served is self-signed"},
			chain:    func(t *testing.T) probe.Chain { return testChain(t, istiodRoot.key, istiodRoot.cert) }},
		{name: "nothing served", td: td, want: serverID,
			wantErrs: []string{"no certificate was served"},
			chain:    func(t *testing.T) probe.Chain { return probe.Chain{} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := c.chain(t)
			kind, err := CheckServedChain(ch, c.td, c.want)
			if kind != c.wantKind {
				t.Errorf("CA kind %q, want %q", kind, c.wantKind)
			}
			if len(c.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("want pass, got: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q, got pass\nchain: %s", c.wantErrs, ch)
			}
			for _, w := range c.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if !strings.HasPrefix(err.Error(), "CERT-002: ") {
				t.Errorf("error does not name the behaviour: %v", err)
			}
			if len(ch.Certs) > 0 && !strings.Contains(err.Error(), "chain: ") {
				t.Errorf("error does not show the chain: %v", err)
			}
		})
	}
}

// TestCheckServedChainWithoutX509 judges a chain whose certificates carry only names (as a
// Chain built by hand would), so the name-based fallbacks are exercised.
func TestCheckServedChainWithoutX509(t *testing.T) {
	ch := probe.Chain{Certs: []probe.Cert{
		{Subject: "", Issuer: "O=cluster.local", URIs: []string{serverID}},
		{Subject: "O=cluster.local", Issuer: "O=cluster.local", Organization: []string{td}, IsCA: true},
	}}
	kind, err := CheckServedChain(ch, td, serverID)
	if err != nil || kind != CAIstiod {
		t.Fatalf("got %q, %v; want istiod, nil", kind, err)
	}
}
