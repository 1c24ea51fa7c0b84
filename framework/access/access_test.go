package access

import (
	"strings"
	"testing"

	"meshconform/manifests/rbac"
)

func TestShippedClusterRolesAreLeastPrivilege(t *testing.T) {
	for name, data := range map[string][]byte{
		"suite-clusterrole.yaml":   rbac.SuiteClusterRole,
		"posture-clusterrole.yaml": rbac.PostureClusterRole,
	} {
		cr, err := ParseClusterRole(name, data)
		if err != nil {
			t.Fatal(err)
		}
		perms := Permissions(cr)
		if len(perms) == 0 {
			t.Errorf("%s grants nothing", name)
		}
		for _, p := range perms {
			if p.Verb == "*" || p.Resource == "*" || p.Group == "*" {
				t.Errorf("%s: wildcard in %s", name, p)
			}
			// The suite creates and deletes INGRESS-002's TLS Secret; nothing reads one.
			if p.Resource == "secrets" && (name != "suite-clusterrole.yaml" || (p.Verb != "create" && p.Verb != "delete")) {
				t.Errorf("%s: grants %s; only the suite writes a Secret (create, delete), and nothing may read one", name, p)
			}
			if p.Verb == "escalate" || p.Verb == "bind" || p.Verb == "impersonate" {
				t.Errorf("%s: grants %s", name, p)
			}
		}
	}
}

func TestPermissionsExpandAndSort(t *testing.T) {
	cr, err := ParseClusterRole("x.yaml", []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: x}
rules:
- apiGroups: ["", apps]
  resources: [pods]
  verbs: [list, get]
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range Permissions(cr) {
		got = append(got, p.String())
	}
	want := "get pods (cluster-wide)|get pods.apps (cluster-wide)|list pods (cluster-wide)|list pods.apps (cluster-wide)"
	if strings.Join(got, "|") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}

func TestParseClusterRoleRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not a ClusterRole": "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\n",
		"unknown field":     "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\nrulez: []\n",
	} {
		if _, err := ParseClusterRole("f.yaml", []byte(in)); err == nil || !strings.Contains(err.Error(), "f.yaml") {
			t.Errorf("%s: got %v, want an error naming the file", name, err)
		}
	}
}
