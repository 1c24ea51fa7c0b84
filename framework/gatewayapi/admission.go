package gatewayapi

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// createAdmission creates the standard channel's ValidatingAdmissionPolicy or its binding
// (data is the object's JSON).
func createAdmission(ctx context.Context, c Clients, kind string, data []byte) error {
	ar := c.Kube.AdmissionregistrationV1()
	switch kind {
	case "ValidatingAdmissionPolicy":
		var p admissionv1.ValidatingAdmissionPolicy
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			return err
		}
		_, err := ar.ValidatingAdmissionPolicies().Create(ctx, &p, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	case "ValidatingAdmissionPolicyBinding":
		var b admissionv1.ValidatingAdmissionPolicyBinding
		if err := yaml.UnmarshalStrict(data, &b); err != nil {
			return err
		}
		_, err := ar.ValidatingAdmissionPolicyBindings().Create(ctx, &b, metav1.CreateOptions{FieldManager: fieldManager})
		return err
	}
	return fmt.Errorf("not an admission policy: %s", kind)
}

// deleteAdmission deletes the Gateway API's admission policy and binding matching sel.
func deleteAdmission(ctx context.Context, c Clients, sel string) error {
	ar := c.Kube.AdmissionregistrationV1()
	bs, err := ar.ValidatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list ValidatingAdmissionPolicyBindings: %w", err)
	}
	for _, b := range bs.Items {
		if !strings.Contains(b.Name, "gateway") {
			continue
		}
		if err := ar.ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ValidatingAdmissionPolicyBinding %s: %w", b.Name, err)
		}
	}
	ps, err := ar.ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list ValidatingAdmissionPolicies: %w", err)
	}
	for _, p := range ps.Items {
		if !strings.Contains(p.Name, "gateway") {
			continue
		}
		if err := ar.ValidatingAdmissionPolicies().Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete ValidatingAdmissionPolicy %s: %w", p.Name, err)
		}
	}
	return nil
}
