package behaviors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"meshconform/framework/expect"
	"meshconform/framework/istionames"
	"meshconform/framework/probe"
	"meshconform/framework/workload"
	"meshconform/suites/cases"
	"meshconform/suites/internal/e2e"
)

// IstioBackdate is how far istiod's CA backdates a certificate's NotBefore:
// ClockSkewGracePeriod, 2 minutes (security/pkg/pki/util/generate_cert.go:285, used at :350),
// so that a certificate issued over CSR lasts its requested TTL plus 2 minutes.
const IstioBackdate = 2 * time.Minute

// IssuedLifetimeTolerance is how far an issued certificate's notAfter - notBefore may stray
// from TTL + IstioBackdate. Both ends come from the same instant (generate_cert.go:338-350)
// and are encoded to the second, so the difference is exact: the tolerance only absorbs
// encoding, and is far below the backdating, so a CA that does not backdate fails.
const IssuedLifetimeTolerance = 30 * time.Second

// AgentFiles are what a grpc-agent pod's pilot-agent wrote (istionames.AgentCertsDir) and the
// root its namespace holds: cert-chain.pem and root-cert.pem as the agent wrote them from
// istiod's CSR answer (security/pkg/nodeagent/cache/secretcache.go:261-271,
// security/pkg/nodeagent/util/util.go:49), and istiod's istio-ca-root-cert ConfigMap.
type AgentFiles struct {
	Chain, Root, ConfigMapRoot probe.Chain
}

// CheckIssuedIdentity is CERT-006: the leaf the agent got has exactly one URI SAN, wantSPIFFE
// (the identity of the pod's token: istiod signs caller.Identities, not the CSR's SAN,
// security/pkg/server/ca/server.go:87), every certificate of cert-chain.pem is signed by the
// next, root-cert.pem is the ConfigMap's root, and the leaf verifies up to that root.
func CheckIssuedIdentity(f AgentFiles, wantSPIFFE string) error {
	leaf, ok := f.Chain.Leaf()
	if !ok {
		return errors.New("CERT-006: cert-chain.pem holds no certificate")
	}
	var problems []string
	if len(leaf.URIs) != 1 || leaf.URIs[0] != wantSPIFFE {
		problems = append(problems, fmt.Sprintf("the leaf's URI SANs are %v, want exactly [%s] (the identity of the pod's token)", leaf.URIs, wantSPIFFE))
	}
	problems = append(problems, chainLinks(f.Chain)...)
	switch {
	case len(f.Root.Certs) == 0:
		problems = append(problems, "root-cert.pem holds no certificate")
	case len(f.ConfigMapRoot.Certs) == 0:
		problems = append(problems, fmt.Sprintf("the %s ConfigMap holds no certificate", istionames.RootCertConfigMap))
	case !sameCerts(f.Root, f.ConfigMapRoot):
		problems = append(problems, fmt.Sprintf("root-cert.pem (%s) is not the %s ConfigMap's root (%s)",
			fingerprints(f.Root), istionames.RootCertConfigMap, fingerprints(f.ConfigMapRoot)))
	}
	if len(f.ConfigMapRoot.Certs) > 0 && leaf.X509 != nil {
		if err := verifiesTo(f.Chain, f.ConfigMapRoot); err != nil {
			problems = append(problems, fmt.Sprintf("the leaf does not verify up to the %s ConfigMap's root: %v", istionames.RootCertConfigMap, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("CERT-006: %s\ncert-chain.pem: %s\nroot-cert.pem: %s\n%s: %s", strings.Join(problems, "; "),
			f.Chain, f.Root, istionames.RootCertConfigMap, f.ConfigMapRoot)
	}
	return nil
}

// CheckIssuedLifetime is CERT-007: the leaf lasts ttl (the agent's SECRET_TTL, sent as the
// CSR's ValidityDuration: secretcache.go:812, caclient/providers/citadel/client.go:88-90) plus
// istiod's backdating, within IssuedLifetimeTolerance.
func CheckIssuedLifetime(leaf probe.Cert, ttl time.Duration) error {
	want := ttl + IstioBackdate
	err := CheckLifetimeWithin(leaf, want, IssuedLifetimeTolerance)
	if err == nil {
		return nil
	}
	msg := strings.Replace(err.Error(), "CERT-004:", "CERT-007:", 1)
	if def := DefaultCertLifetime + IstioBackdate; ttl != DefaultCertLifetime && (leaf.Lifetime()-def).Abs() <= IssuedLifetimeTolerance {
		msg += fmt.Sprintf("\nit is the default, %v: the agent did not take SECRET_TTL=%v (proxyMetadata in %s)", def, ttl, istionames.ProxyConfigAnnotation)
	}
	return errors.New(msg)
}

func sameCerts(a, b probe.Chain) bool {
	if len(a.Certs) != len(b.Certs) {
		return false
	}
	for i := range a.Certs {
		if a.Certs[i].X509 == nil || b.Certs[i].X509 == nil || !bytes.Equal(a.Certs[i].X509.Raw, b.Certs[i].X509.Raw) {
			return false
		}
	}
	return true
}

func fingerprints(c probe.Chain) string {
	var out []string
	for _, cert := range c.Certs {
		if cert.X509 == nil {
			continue
		}
		sum := sha256.Sum256(cert.X509.Raw)
		out = append(out, fmt.Sprintf("%s sha256:%x", cert.Subject, sum[:8]))
	}
	return strings.Join(out, ", ")
}

// verifiesTo checks the chain's leaf against roots, the chain's other certificates as
// intermediates, at a time inside the leaf's validity (a recorded chain stays judgeable).
func verifiesTo(chain, roots probe.Chain) error {
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots.Certs {
		pool.AddCert(c.X509)
	}
	for _, c := range chain.Certs[1:] {
		if c.X509 != nil {
			inter.AddCert(c.X509)
		}
	}
	leaf := chain.Certs[0].X509
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
		CurrentTime: leaf.NotBefore.Add(IstioBackdate), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// agentFields are the files as evidence.
func agentFields(f AgentFiles) map[string]string {
	m := map[string]string{"cert-chain.pem certificates": fmt.Sprint(len(f.Chain.Certs)),
		"root-cert.pem": fingerprints(f.Root), istionames.RootCertConfigMap: fingerprints(f.ConfigMapRoot)}
	if leaf, ok := f.Chain.Leaf(); ok {
		m["leaf uri SANs"] = fmt.Sprint(leaf.URIs)
		m["leaf subject"] = leaf.Subject
		m["leaf issuer"] = leaf.Issuer
		m["leaf notBefore"] = leaf.NotBefore.UTC().Format(time.RFC3339)
		m["leaf notAfter"] = leaf.NotAfter.UTC().Format(time.RFC3339)
		m["leaf lifetime"] = leaf.Lifetime().String()
	}
	return m
}

// agentCerts waits until sample's grpc-agent pod in role is ready with its proxy (its agent is
// ready only once the certificate files exist: pilot/cmd/pilot-agent/status/grpcready/probe.go)
// and converges, N reads in a row, on files for which check passes: cert-chain.pem and
// root-cert.pem read with cat in the app container, and the namespace's istio-ca-root-cert.
// It returns the last files read.
func agentCerts(ctx context.Context, t *e2e.T, role cases.Role, sample workload.Sample, check func(AgentFiles) error) (AgentFiles, error) {
	h := t.Handles[role][sample]
	// Under DATAPLANE=0 the runner waited only for admission: the agent must really run here.
	if err := workload.WaitReady(ctx, t.Run.Kube, h.Namespace, h.Selector, workload.Consecutive(t.Run.Expect.Consecutive),
		workload.Timeout(3*time.Minute), workload.Proxy(workload.ProxyRequired)); err != nil {
		return AgentFiles{}, fmt.Errorf("%s: the grpc-agent pod did not become ready (pilot-agent got no certificate?): %w", sample, err)
	}
	ex := t.Executor(ctx, cases.Source{Role: role, Sample: sample})
	var f AgentFiles
	err := expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
		var err error
		if f, err = readAgentFiles(ctx, t, ex, h.Namespace); err != nil {
			return err
		}
		return check(f)
	})
	return f, err
}

// agentImage is the image the sample's injected istio-proxy container runs pilot-agent from
// (ISTIO_AGENT_IMAGE, or the chart's proxy image), for the evidence.
func agentImage(ctx context.Context, t *e2e.T, role cases.Role, sample workload.Sample) string {
	pod, _ := t.Pod(ctx, role, sample)
	name, _, ok := workload.ProxyContainer(pod)
	if !ok {
		return "none (no istio-proxy container)"
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

func readAgentFiles(ctx context.Context, t *e2e.T, ex probe.Executor, ns string) (AgentFiles, error) {
	var f AgentFiles
	for _, file := range []struct {
		name string
		into *probe.Chain
	}{{"cert-chain.pem", &f.Chain}, {"root-cert.pem", &f.Root}} {
		path := istionames.AgentCertsDir + "/" + file.name
		res, err := ex.Exec(ctx, []string{"cat", path})
		if err != nil {
			return f, fmt.Errorf("cat %s in %s: %w", path, ex, err)
		}
		if *file.into, err = probe.ParseChain(string(res.Stdout)); err != nil {
			return f, fmt.Errorf("cat %s in %s (exit %d, stderr %q): %w", path, ex, res.ExitCode, bytes.TrimSpace(res.Stderr), err)
		}
	}
	cm, err := t.Run.Kube.CoreV1().ConfigMaps(ns).Get(ctx, istionames.RootCertConfigMap, metav1.GetOptions{})
	if err != nil {
		return f, fmt.Errorf("reading ConfigMap %s/%s: %w", ns, istionames.RootCertConfigMap, err)
	}
	if f.ConfigMapRoot, err = probe.ParseChain(cm.Data[RootCertKey]); err != nil {
		return f, fmt.Errorf("ConfigMap %s/%s key %s: %w", ns, istionames.RootCertConfigMap, RootCertKey, err)
	}
	return f, nil
}

// RootCertKey is the key of the istio-ca-root-cert ConfigMap that holds the root
// (pkg/config/constants/constants.go:93 CACertNamespaceConfigMapDataName).
const RootCertKey = "root-cert.pem"

// ClaimedServiceAccount is the identity CERT-006's claiming pod asks for in its CSR: a service
// account that does not exist, so no token could ever carry it.
const ClaimedServiceAccount = "meshconform-claimed"

// claimingPodName names CERT-006's claiming pod.
const claimingPodName = "cert-006-claims"

// ClaimingPod turns a pod the injector gave the grpc-agent template into one whose pilot-agent
// asks, in its CSR, for another identity while sending its own token: the agent builds the CSR's
// SAN from its SERVICE_ACCOUNT variable (pilot/cmd/pilot-agent/options/options.go:42,
// security.go:45; security/pkg/nodeagent/cache/secretcache.go:788-795), the template fills it
// from the pod's spec.serviceAccountName, and istiod signs the token's identity whatever the CSR
// asks (security/pkg/server/ca/server.go:87, `sans := caller.Identities`). The copy is
// hand-built (not injected again), labelled app=name so that nothing of the sample selects it,
// and its agent's SERVICE_ACCOUNT is claimed; an error when the injected pod's agent has none.
func ClaimingPod(injected *corev1.Pod, name, claimed string) (*corev1.Pod, error) {
	p := handBuilt(injected, name)
	p.Labels["app"] = name
	proxy, _, ok := workload.ProxyContainer(p)
	if !ok {
		return nil, fmt.Errorf("CERT-006: pod %s/%s has no istio-proxy container (was it injected with the %s template?)",
			injected.Namespace, injected.Name, istionames.GRPCAgentTemplate)
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			if cs[i].Name != proxy {
				continue
			}
			for j := range cs[i].Env {
				if cs[i].Env[j].Name == "SERVICE_ACCOUNT" {
					cs[i].Env[j] = corev1.EnvVar{Name: "SERVICE_ACCOUNT", Value: claimed}
					return p, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("CERT-006: the %s container of pod %s/%s has no SERVICE_ACCOUNT variable to claim another identity with",
		proxy, injected.Namespace, injected.Name)
}

// claimedIdentity runs CERT-006's second case in role's namespace: a copy of the grpc-agent
// sample's injected pod whose agent's CSR claims ClaimedServiceAccount must still get
// wantSPIFFE, its token's identity. It returns the files read and the evidence.
func claimedIdentity(ctx context.Context, t *e2e.T, role cases.Role, wantSPIFFE string) (map[string]string, error) {
	h := t.Handles[role][workload.GRPCAgent]
	const name = claimingPodName
	fields := map[string]string{"CSR's SERVICE_ACCOUNT": ClaimedServiceAccount, "token's service account": h.ServiceAccount}
	injected, err := injectedGRPCAgent(ctx, t.Run.Kube, h.Namespace, h.ServiceAccount, name, t.Run.State.Settings.AgentImage)
	if err != nil {
		return fields, fmt.Errorf("CERT-006 (claimed identity): %w", err)
	}
	pod, err := ClaimingPod(injected, name, ClaimedServiceAccount)
	if err != nil {
		return fields, err
	}
	if _, err := t.Run.Kube.CoreV1().Pods(h.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fields, fmt.Errorf("CERT-006 (claimed identity): creating pod %s/%s: %w", h.Namespace, name, err)
	}
	// Deleted with the spec's namespace.
	if err := workload.WaitReady(ctx, t.Run.Kube, h.Namespace, "app="+name, workload.Consecutive(t.Run.Expect.Consecutive),
		workload.Timeout(3*time.Minute), workload.Proxy(workload.ProxyRequired), workload.BarePods()); err != nil {
		return fields, fmt.Errorf("CERT-006 (claimed identity): pod %s did not become ready (istiod refused to sign what it claims?): %w", name, err)
	}
	ex, err := probe.NewPodExecutor(t.Run.Config, h.Namespace, name, h.Container)
	if err != nil {
		return fields, err
	}
	var f AgentFiles
	err = expect.ConvergeFunc(ctx, t.Run.Expect, func(ctx context.Context) error {
		var err error
		if f, err = readAgentFiles(ctx, t, ex, h.Namespace); err != nil {
			return err
		}
		return CheckIssuedIdentity(f, wantSPIFFE)
	})
	maps.Copy(fields, agentFields(f))
	if err != nil {
		return fields, fmt.Errorf("a CSR claiming sa/%s: %w", ClaimedServiceAccount, err)
	}
	return fields, nil
}
