package apitest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"meshconform/framework/gatewayapi"
)

// The Gateway API release tier 1 installs and where its files come from: the product's own
// (framework/gatewayapi), so that tier 1 applies what an ambient install applies.
const (
	// GatewayAPIModule is the Kubernetes Gateway API's Go module, whose zip carries its CRDs.
	GatewayAPIModule = gatewayapi.Module
	// GatewayAPIVersion is the Gateway API release Istio 1.31 builds on (gatewayapi.Version).
	GatewayAPIVersion = gatewayapi.Version
	// GatewayAPIDirEnv overrides where the standard channel's files are read from.
	GatewayAPIDirEnv = gatewayapi.DirEnv
)

// GatewayAPICRDDir returns the Gateway API's standard-channel directory at GatewayAPIVersion
// (gatewayapi.Dir).
func GatewayAPICRDDir(ctx context.Context) (string, error) { return gatewayapi.Dir(ctx) }

// InstallGatewayAPI installs the Gateway API's standard channel at GatewayAPIVersion into this
// environment, as `kubectl apply` of the release's standard-install.yaml does: every CRD in
// GatewayAPICRDDir (waiting until each is established), then the safe-upgrades
// ValidatingAdmissionPolicy and its binding. Only the tests that call it pay for it, once per
// environment: later calls return at once (a failed one is tried again).
func (e *Environment) InstallGatewayAPI(ctx context.Context) error {
	e.gwMu.Lock()
	defer e.gwMu.Unlock()
	if e.gwInstalled {
		return nil
	}
	began := time.Now()
	dir, err := GatewayAPICRDDir(ctx)
	if err != nil {
		return err
	}
	crds, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths: []string{dir}, ErrorIfPathMissing: true, MaxTime: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("apitest: installing the Gateway API CRDs from %s: %w", dir, err)
	}
	if len(crds) == 0 {
		return fmt.Errorf("apitest: %s holds no CRD", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := docs.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("apitest: %s: %w", f, err)
			}
			if err := e.createAdmissionPolicy(ctx, string(doc)); err != nil {
				return fmt.Errorf("apitest: %s: %w", f, err)
			}
		}
	}
	e.gwInstalled = true
	e.Timings.GatewayAPI = time.Since(began)
	return nil
}

// createAdmissionPolicy creates doc when it is a ValidatingAdmissionPolicy or a binding of
// one; anything else (the CRDs, installed by envtest) is left alone.
func (e *Environment) createAdmissionPolicy(ctx context.Context, doc string) error {
	var head metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return err
	}
	var err error
	switch head.Kind {
	case "ValidatingAdmissionPolicy":
		var p admissionv1.ValidatingAdmissionPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
			return err
		}
		_, err = e.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, &p, metav1.CreateOptions{})
	case "ValidatingAdmissionPolicyBinding":
		var b admissionv1.ValidatingAdmissionPolicyBinding
		if err := yaml.UnmarshalStrict([]byte(doc), &b); err != nil {
			return err
		}
		_, err = e.Kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &b, metav1.CreateOptions{})
	default:
		return nil
	}
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
