package policy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"meshconform/framework/ownership"
)

// Snapshot is what a namespace held of the three policy kinds at one moment. Disruptive
// specs take one of the root namespace before they change mesh-wide policy, and Restore it
// after.
type Snapshot struct {
	Namespace             string
	PeerAuthentications   []*securityv1.PeerAuthentication
	AuthorizationPolicies []*securityv1.AuthorizationPolicy
	DestinationRules      []*networkingv1.DestinationRule
}

// String lists the snapshot's objects, for logs.
func (s *Snapshot) String() string {
	var names []string
	for _, o := range s.PeerAuthentications {
		names = append(names, "PeerAuthentication/"+o.Name)
	}
	for _, o := range s.AuthorizationPolicies {
		names = append(names, "AuthorizationPolicy/"+o.Name)
	}
	for _, o := range s.DestinationRules {
		names = append(names, "DestinationRule/"+o.Name)
	}
	if len(names) == 0 {
		return fmt.Sprintf("namespace %s: no policies", s.Namespace)
	}
	return fmt.Sprintf("namespace %s: %s", s.Namespace, strings.Join(names, ", "))
}

// Snapshot records every PeerAuthentication, AuthorizationPolicy and DestinationRule in ns.
func (a *Applier) Snapshot(ctx context.Context, ns string) (*Snapshot, error) {
	if ns == "" {
		return nil, errors.New("policy: Snapshot needs a namespace (the root namespace, usually istio-system)")
	}
	s := &Snapshot{Namespace: ns}
	var err error
	if s.PeerAuthentications, err = snapshotKind(ctx, a.peerAuthentications(ns)); err != nil {
		return nil, err
	}
	if s.AuthorizationPolicies, err = snapshotKind(ctx, a.authorizationPolicies(ns)); err != nil {
		return nil, err
	}
	if s.DestinationRules, err = snapshotKind(ctx, a.destinationRules(ns)); err != nil {
		return nil, err
	}
	return s, nil
}

func snapshotKind[P Object](ctx context.Context, c kindClient[P]) ([]P, error) {
	items, err := c.list(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("policy: snapshot: list %s: %w", c.kind, err)
	}
	out := make([]P, 0, len(items))
	for _, it := range items {
		out = append(out, it.DeepCopyObject().(P))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// RestoreReport says what Restore did, as "Kind/name" entries.
type RestoreReport struct {
	Deleted, Created, Updated []string
	// Kept are objects absent from the snapshot that this run did not make (someone else
	// added them meanwhile): Restore leaves them, and lists them here.
	Kept []string
}

func (r RestoreReport) String() string {
	part := func(verb string, l []string) string {
		if len(l) == 0 {
			return ""
		}
		return fmt.Sprintf(" %s %s;", verb, strings.Join(l, ", "))
	}
	s := strings.TrimSpace(part("deleted", r.Deleted) + part("created", r.Created) + part("updated", r.Updated) + part("kept (not ours)", r.Kept))
	if s == "" {
		return "nothing to restore"
	}
	return strings.TrimSuffix(s, ";")
}

// Restore makes the snapshot's namespace hold what it held: objects this run added are
// deleted, objects that were removed are created again (same name, labels, annotations and
// spec; a new uid), and objects whose spec, labels or annotations changed are updated back.
// Objects added since the snapshot by anyone else are left, and reported in Kept.
func (a *Applier) Restore(ctx context.Context, s *Snapshot) (RestoreReport, error) {
	var rep RestoreReport
	errs := []error{
		restoreKind(ctx, a, a.peerAuthentications(s.Namespace), s.PeerAuthentications, &rep),
		restoreKind(ctx, a, a.authorizationPolicies(s.Namespace), s.AuthorizationPolicies, &rep),
		restoreKind(ctx, a, a.destinationRules(s.Namespace), s.DestinationRules, &rep),
	}
	return rep, errors.Join(errs...)
}

func restoreKind[P Object](ctx context.Context, a *Applier, c kindClient[P], want []P, rep *RestoreReport) error {
	current, err := c.list(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("policy: restore: list %s: %w", c.kind, err)
	}
	wanted := map[string]P{}
	for _, w := range want {
		wanted[w.GetName()] = w
	}
	var errs []error
	for _, cur := range current {
		name := c.kind + "/" + cur.GetName()
		if _, ok := wanted[cur.GetName()]; ok {
			continue
		}
		if !ownership.Owned(cur.GetLabels(), a.runID) {
			rep.Kept = append(rep.Kept, name)
			continue
		}
		if err := c.del(ctx, cur.GetName()); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("policy: restore: delete %s in %s: %w", name, cur.GetNamespace(), err))
			continue
		}
		rep.Deleted = append(rep.Deleted, name)
	}
	byName := map[string]P{}
	for _, cur := range current {
		byName[cur.GetName()] = cur
	}
	for _, w := range want {
		name := c.kind + "/" + w.GetName()
		cur, exists := byName[w.GetName()]
		switch {
		case !exists:
			fresh := w.DeepCopyObject().(P)
			clearServerFields(fresh)
			if _, err := c.create(ctx, fresh, metav1.CreateOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("policy: restore: create %s in %s: %w", name, w.GetNamespace(), err))
				continue
			}
			rep.Created = append(rep.Created, name)
		case !c.sameContent(cur, w):
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				latest, err := c.get(ctx, w.GetName())
				if err != nil {
					return err
				}
				c.setContent(latest, w)
				_, err = c.update(ctx, latest, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("policy: restore: update %s in %s: %w", name, w.GetNamespace(), err))
				continue
			}
			rep.Updated = append(rep.Updated, name)
		}
	}
	return errors.Join(errs...)
}

// clearServerFields removes what the API server assigns, so the object can be created again.
func clearServerFields(o metav1.Object) {
	o.SetResourceVersion("")
	o.SetUID("")
	o.SetCreationTimestamp(metav1.Time{})
	o.SetGeneration(0)
	o.SetManagedFields(nil)
	o.SetDeletionTimestamp(nil)
	o.SetDeletionGracePeriodSeconds(nil)
	o.SetSelfLink("")
}
