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

	"meshconform/internal/moddownload"
)

const (
	// GatewayAPIModule is the Kubernetes Gateway API's Go module, whose zip carries its CRDs.
	GatewayAPIModule = "sigs.k8s.io/gateway-api"
	// GatewayAPIVersion is the Gateway API release Istio 1.31 builds on (its go.mod: require
	// sigs.k8s.io/gateway-api v1.6.0; release-1.30's says v1.5.1, and v1.6.0's CRDs serve it
	// too), and the one tier 1 installs.
	GatewayAPIVersion = "v1.6.0"
	// gatewayAPIStandard is the standard channel's directory in the module: the CRDs
	// (gateway.networking.k8s.io_<plural>.yaml) and the safe-upgrades ValidatingAdmissionPolicy
	// with its binding, as the release's standard-install.yaml bundles them.
	gatewayAPIStandard = "config/crd/standard"
	// GatewayAPIDirEnv overrides where the standard channel's files are read from (a
	// directory laid out like config/crd/standard), for machines without the module proxy.
	GatewayAPIDirEnv = "MESHCONFORM_GATEWAY_API_CRDS"
)

// GatewayAPICRDDir returns the Gateway API's standard-channel directory at GatewayAPIVersion
// from the Go module cache, downloading the module first when needed: `go mod download -json`
// run outside this module, so go.mod and go.sum are neither read nor changed (the module is
// data to tier 1, not a dependency). GOPROXY, GOFLAGS, GONOSUMDB/GOSUMDB and GOMODCACHE apply
// as for any module.
func GatewayAPICRDDir(ctx context.Context) (string, error) {
	if d := os.Getenv(GatewayAPIDirEnv); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("apitest: %s=%s is not a directory (%v)", GatewayAPIDirEnv, d, err)
		}
		return d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ref := GatewayAPIModule + "@" + GatewayAPIVersion
	modDir, err := moddownload.Dir(ctx, GatewayAPIModule, GatewayAPIVersion)
	if err != nil {
		return "", fmt.Errorf("apitest: go mod download %s: %v. It needs the Go module proxy (GOPROXY) or a module cache that holds it; or set %s to a copy of its %s",
			ref, err, GatewayAPIDirEnv, gatewayAPIStandard)
	}
	dir := filepath.Join(modDir, gatewayAPIStandard)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("apitest: %s has no %s: %w", ref, gatewayAPIStandard, err)
	}
	return dir, nil
}

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
