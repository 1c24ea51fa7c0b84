// Package upgrade holds the version-skew checks of the upgrade gate (`make e2e-upgrade`), the
// ones the behaviour suites cannot make because they need workloads that outlive an upgrade:
// a mesh client and a STRICT server deployed on Istio FROM, a new server deployed after the
// in-place upgrade to TO while the old client keeps its FROM proxy, and the client moved to a
// canary revision by relabelling its namespace and restarting it.
//
// The e2e driver runs the suite once per phase (MESHCONFORM_UPGRADE_PHASE), between the
// control-plane changes it makes; the long-lived namespaces are found by label in each phase.
// The phases and the environment the driver sets are framework/gate's, the plan of the gate.
// This file and its siblings hold what is not Ginkgo (tested at tier 0 and tier 1); the specs
// are in upgrade_e2e_test.go (build tag e2e).
package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"meshconform/framework/gate"
	"meshconform/framework/ownership"
	"meshconform/framework/workload"
)

// RoleKey labels the skew namespaces with their role, so that every phase finds them (with
// the run's ownership labels) although they were made by an earlier run of the suite.
const RoleKey = "meshconform.io/upgrade-role"

// Role is what a skew namespace holds.
type Role string

const (
	// Server holds httpbin under namespace STRICT, deployed on FROM and never restarted.
	Server Role = "server"
	// Client holds the mesh client (sleep) and the plain client; the mesh client keeps its
	// FROM proxy through the in-place upgrade and is moved to the canary in the last phase.
	Client Role = "client"
	// NewServer holds httpbin under namespace STRICT, deployed after the in-place upgrade.
	NewServer Role = "new-server"
)

// Samples deployed per role.
var roleSamples = map[Role][]workload.Sample{
	Server:    {workload.Httpbin},
	Client:    {workload.Sleep, workload.PlainClient},
	NewServer: {workload.Httpbin},
}

// SamplesOf are the samples a role's namespace holds.
func SamplesOf(r Role) []workload.Sample { return slices.Clone(roleSamples[r]) }

// CreatedIn is the phase that creates a role's namespace, for messages.
func CreatedIn(r Role) gate.Phase {
	if r == NewServer {
		return gate.AfterInPlace
	}
	return gate.Before
}

// CreateNamespace makes the namespace of role for the run, injected as inj.
func CreateNamespace(ctx context.Context, kube kubernetes.Interface, runID string, role Role, inj workload.Injection) (string, error) {
	return workload.Namespace(ctx, kube, workload.NamespaceSpec{
		Prefix: "upgrade-" + string(role), RunID: runID, Injection: inj,
		Labels: map[string]string{RoleKey: string(role)},
	})
}

// Namespaces maps roles to the namespaces found for a run.
type Namespaces map[Role]string

// Selector selects the skew namespaces of a run.
func Selector(runID string) string { return ownership.Selector(runID) + "," + RoleKey }

// FindNamespaces lists the run's skew namespaces by label. Two live namespaces of one role are
// an error (the phases would not know which to use); namespaces being deleted are left out.
func FindNamespaces(ctx context.Context, kube kubernetes.Interface, runID string) (Namespaces, error) {
	if err := ownership.ValidRunID(runID); err != nil {
		return nil, fmt.Errorf("upgrade namespaces: %w", err)
	}
	list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: Selector(runID)})
	if err != nil {
		return nil, fmt.Errorf("upgrade namespaces: listing %s: %w", Selector(runID), err)
	}
	out := Namespaces{}
	for _, ns := range list.Items {
		if ns.DeletionTimestamp != nil {
			continue
		}
		r := Role(ns.Labels[RoleKey])
		if old, ok := out[r]; ok {
			return nil, fmt.Errorf("upgrade namespaces: two namespaces of role %s in run %s (%s and %s): delete one", r, runID, old, ns.Name)
		}
		out[r] = ns.Name
	}
	return out, nil
}

// Require checks that the roles' namespaces were found, naming the phase that makes each
// missing one.
func (n Namespaces) Require(runID string, roles ...Role) error {
	var missing []string
	for _, r := range roles {
		if n[r] == "" {
			missing = append(missing, fmt.Sprintf("%s (made by phase %s)", r, CreatedIn(r)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no namespace labelled %s for role %s in run %s: the phases run in order on one run (%s), as `make e2e-upgrade` runs them",
			RoleKey, strings.Join(missing, ", "), runID, gate.PhaseList())
	}
	return nil
}

// Names lists the namespaces, sorted.
func (n Namespaces) Names() []string {
	var out []string
	for _, ns := range n {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}

// Cleanup deletes the run's skew namespaces and waits until they are gone.
func Cleanup(ctx context.Context, kube kubernetes.Interface, runID string) error {
	found, err := FindNamespaces(ctx, kube, runID)
	if err != nil {
		return err
	}
	return workload.DeleteNamespaces(ctx, kube, found.Names()...)
}

// Record is what a phase saw of a pod, kept on its namespace for the later phases.
type Record struct {
	Pod     string     `json:"pod"`
	UID     string     `json:"uid"`
	Image   string     `json:"image"`
	Version string     `json:"version"`
	Phase   gate.Phase `json:"phase"`
}

// RecordPrefix starts the annotation that holds a Record, followed by the pod's app label.
const RecordPrefix = "upgrade.meshconform.io/"

// RecordPod reads a pod's proxy and keeps it, with the pod's name and UID, in an annotation
// of its namespace (upgrade.meshconform.io/<app>).
func RecordPod(ctx context.Context, kube kubernetes.Interface, pod *corev1.Pod, phase gate.Phase) (Record, error) {
	p, err := ProxyOf(pod)
	if err != nil {
		return Record{}, err
	}
	app := pod.Labels["app"]
	if app == "" {
		return Record{}, fmt.Errorf("pod %s/%s has no app label to key its record by", pod.Namespace, pod.Name)
	}
	rec := Record{Pod: pod.Name, UID: string(pod.UID), Image: p.Image, Version: p.Version, Phase: phase}
	val, err := json.Marshal(rec)
	if err != nil {
		return Record{}, err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{RecordPrefix + app: string(val)}}})
	if err != nil {
		return Record{}, err
	}
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, pod.Namespace, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: workload.FieldManager}); err != nil {
		return Record{}, fmt.Errorf("recording pod %s/%s on its namespace: %w", pod.Namespace, pod.Name, err)
	}
	return rec, nil
}

// Recorded reads the record RecordPod kept for app in ns.
func Recorded(ctx context.Context, kube kubernetes.Interface, ns, app string) (Record, error) {
	obj, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return Record{}, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	raw, ok := obj.Annotations[RecordPrefix+app]
	if !ok {
		return Record{}, fmt.Errorf("namespace %s has no annotation %s%s: phase %s records it", ns, RecordPrefix, app, gate.Before)
	}
	var rec Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return Record{}, fmt.Errorf("namespace %s: annotation %s%s is not a record: %w", ns, RecordPrefix, app, err)
	}
	return rec, nil
}

// Ref is how to address a sample: its Deployment, pods, first container and Service, read
// from its manifest (not from the cluster, so that a later phase needs no re-apply, which
// could restart what must keep running).
type Ref struct {
	Sample     workload.Sample
	Deployment string
	App        string
	Container  string
	Service    string
	Port       int32
}

// RefOf reads a sample's Ref from its manifest.
func RefOf(s workload.Sample) (Ref, error) {
	m, err := workload.Load(s)
	if err != nil {
		return Ref{}, err
	}
	d := m.Deployments[0]
	r := Ref{Sample: s, Deployment: d.Name, App: d.Spec.Template.Labels["app"]}
	if len(d.Spec.Template.Spec.Containers) > 0 {
		r.Container = d.Spec.Template.Spec.Containers[0].Name
	}
	if len(m.Services) > 0 && len(m.Services[0].Spec.Ports) > 0 {
		r.Service, r.Port = m.Services[0].Name, m.Services[0].Spec.Ports[0].Port
	}
	if r.App == "" || r.Container == "" {
		return Ref{}, fmt.Errorf("sample %s: its Deployment has no app label or no container", s)
	}
	return r, nil
}

// URL is the sample's Service in ns, as the documents curl it (http://<svc>.<ns>:<port>/…).
func (r Ref) URL(ns, path string) string {
	if r.Service == "" {
		return ""
	}
	return "http://" + r.Service + "." + ns + ":" + strconv.Itoa(int(r.Port)) + path
}

// Selector selects the sample's pods.
func (r Ref) Selector() string { return "app=" + r.App }
