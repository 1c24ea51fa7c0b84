package posture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"meshconform/framework/istionames"
)

// Clients are the two API clients the audit reads with.
type Clients struct {
	Kube  kubernetes.Interface
	Istio istioclient.Interface
}

// NewClients builds both clients from one rest.Config.
func NewClients(cfg *rest.Config) (Clients, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Clients{}, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	istio, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return Clients{}, fmt.Errorf("istio client for %s: %w", cfg.Host, err)
	}
	return Clients{Kube: kube, Istio: istio}, nil
}

// Config tunes one audit.
type Config struct {
	// IstioNamespace is where istiod and its mesh config live; empty: found from the istiod
	// pods (label app=istiod), else istio-system.
	IstioNamespace string
	// Revision selects the mesh config ConfigMap istio-<revision>; empty: "istio", then the
	// revisions of the istiod pods found.
	Revision string
	// Namespaces, when set, limits the per-object checks (002, 004, 005, 006) to these
	// namespaces (the root namespace is always in scope for 002). The reads are unchanged:
	// the same cluster-wide lists, filtered here, so the permissions needed do not vary.
	Namespaces []string
	// Allow exempts findings, each with its reason.
	Allow AllowList
}

const (
	// DefaultIstioNamespace is Istio's default install namespace and root namespace
	// (istio.io/istio pkg/config/mesh DefaultMeshConfig: RootNamespace istio-system).
	DefaultIstioNamespace = istionames.IstioSystemNamespace
	pageSize              = 500
)

// snapshot is everything the audit read; checks are pure functions of it.
type snapshot struct {
	namespaces []corev1.Namespace
	nsErr      error
	pods       []corev1.Pod
	podErr     error

	systemNS, systemNSSource string
	istiodPods               []corev1.Pod

	rootNS, rootNSSource string
	rootErr              error

	peerAuths []*securityv1.PeerAuthentication
	paErr     error
	authz     []*securityv1.AuthorizationPolicy // in the root namespace
	apErr     error
	netpols   []networkingv1.NetworkPolicy // in the system namespace
	npErr     error

	scope []string // Config.Namespaces
}

// inScope reports whether per-object checks look at namespace ns.
func (s *snapshot) inScope(ns string) bool {
	return len(s.scope) == 0 || slices.Contains(s.scope, ns)
}

// Run audits the cluster: it reads (get/list only) and evaluates POSTURE-001..007. Read
// failures become check errors (Result Error), so one forbidden or missing CRD does not hide
// the other checks; Run itself fails only on bad input or when the API server cannot be
// reached at all. Callers that want permissions named up front call MissingPermissions first
// (Main does).
func Run(ctx context.Context, c Clients, cfg Config) (Report, error) {
	if c.Kube == nil || c.Istio == nil {
		return Report{}, errors.New("posture.Run: Clients.Kube and Clients.Istio are both required (posture.NewClients)")
	}
	if err := cfg.Allow.Validate(); err != nil {
		return Report{}, fmt.Errorf("allow list: %w", err)
	}
	started := time.Now().UTC()
	s, err := read(ctx, c, cfg)
	if err != nil {
		return Report{Started: started, Error: err.Error()}, err
	}
	r := evaluate(s, cfg.Allow)
	r.Started = started
	return r, nil
}

// read takes the snapshot. Its requests are exactly the rules of the posture ClusterRole.
func read(ctx context.Context, c Clients, cfg Config) (*snapshot, error) {
	s := &snapshot{scope: cfg.Namespaces}

	s.namespaces, s.nsErr = listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Namespace, string, error) {
		l, err := c.Kube.CoreV1().Namespaces().List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	if s.nsErr != nil && !isAPIStatus(s.nsErr) {
		// No answer at all: nothing else will get one either.
		return nil, fmt.Errorf("listing namespaces: %w", s.nsErr)
	}
	s.pods, s.podErr = listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]corev1.Pod, string, error) {
		l, err := c.Kube.CoreV1().Pods("").List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})

	s.findSystemNamespace(cfg.IstioNamespace)
	s.rootNS, s.rootNSSource, s.rootErr = readRootNamespace(ctx, c.Kube, s.systemNS, meshConfigNames(cfg.Revision, s.istiodPods))

	s.peerAuths, s.paErr = listPeerAuthentications(ctx, c.Istio)
	if s.rootErr == nil {
		s.authz, s.apErr = listAuthorizationPolicies(ctx, c.Istio, s.rootNS)
	}
	s.netpols, s.npErr = listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]networkingv1.NetworkPolicy, string, error) {
		l, err := c.Kube.NetworkingV1().NetworkPolicies(s.systemNS).List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	return s, nil
}

// findSystemNamespace sets where istiod runs: the flag, else the namespace of istiod pods.
func (s *snapshot) findSystemNamespace(flag string) {
	nsSeen := map[string]bool{}
	for _, p := range s.pods {
		if p.Labels[istionames.AppLabel] == istionames.IstiodApp {
			nsSeen[p.Namespace] = true
		}
	}
	switch {
	case flag != "":
		s.systemNS, s.systemNSSource = flag, "--istio-namespace"
	case len(nsSeen) > 0:
		names := sortedKeys(nsSeen)
		s.systemNS = names[0]
		if slices.Contains(names, DefaultIstioNamespace) {
			s.systemNS = DefaultIstioNamespace
		}
		s.systemNSSource = fmt.Sprintf("istiod pods (label %s=%s) run there", istionames.AppLabel, istionames.IstiodApp)
		if len(names) > 1 {
			s.systemNSSource += fmt.Sprintf("; istiod also runs in %s: audit those with --istio-namespace",
				strings.Join(slices.DeleteFunc(names, func(n string) bool { return n == s.systemNS }), ", "))
		}
	case s.podErr != nil:
		s.systemNS = DefaultIstioNamespace
		s.systemNSSource = "assumed: pods could not be listed to find istiod (" + s.podErr.Error() + ")"
	default:
		s.systemNS = DefaultIstioNamespace
		s.systemNSSource = fmt.Sprintf("assumed: no istiod pod (label %s=%s) found; pass --istio-namespace if istiod runs elsewhere", istionames.AppLabel, istionames.IstiodApp)
	}
	for _, p := range s.pods {
		if p.Namespace == s.systemNS && p.Labels[istionames.AppLabel] == istionames.IstiodApp {
			s.istiodPods = append(s.istiodPods, p)
		}
	}
}

// meshConfigNames are the ConfigMaps that may hold the mesh config, in the order tried:
// istio-<revision> for an explicit revision; else istio, then istio-<rev> for each revision
// of the istiod pods (label istio.io/rev; "default" means the plain name).
func meshConfigNames(revision string, istiod []corev1.Pod) []string {
	name := func(rev string) string {
		if rev == "" || rev == istionames.DefaultRevision {
			return istionames.MeshConfigMap
		}
		return istionames.MeshConfigMap + "-" + rev
	}
	if revision != "" {
		return []string{name(revision)}
	}
	names := []string{istionames.MeshConfigMap}
	var revs []string
	for _, p := range istiod {
		revs = append(revs, p.Labels[istionames.RevisionLabel])
	}
	slices.Sort(revs)
	for _, r := range revs {
		if n := name(r); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// readRootNamespace reads rootNamespace from the first mesh config found.
func readRootNamespace(ctx context.Context, kube kubernetes.Interface, ns string, names []string) (root, source string, err error) {
	for _, name := range names {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("reading the mesh config ConfigMap %s/%s: %w", ns, name, err)
		}
		mesh, ok := cm.Data[istionames.MeshConfigKey]
		if !ok {
			return DefaultIstioNamespace, fmt.Sprintf("ConfigMap %s/%s has no key mesh: Istio's default %s", ns, name, DefaultIstioNamespace), nil
		}
		var mc struct {
			RootNamespace string `json:"rootNamespace"`
		}
		if err := yaml.Unmarshal([]byte(mesh), &mc); err != nil {
			return "", "", fmt.Errorf("ConfigMap %s/%s key mesh is not YAML: %w", ns, name, err)
		}
		if mc.RootNamespace == "" {
			return DefaultIstioNamespace, fmt.Sprintf("ConfigMap %s/%s key mesh sets no rootNamespace: Istio's default %s", ns, name, DefaultIstioNamespace), nil
		}
		return mc.RootNamespace, fmt.Sprintf("ConfigMap %s/%s, key mesh, field rootNamespace", ns, name), nil
	}
	return DefaultIstioNamespace, fmt.Sprintf("assumed Istio's default: no mesh config found (ConfigMap %s in %s)",
		strings.Join(names, " or "), ns), nil
}

// listPeerAuthentications lists every PeerAuthentication through security.istio.io/v1, or
// v1beta1 where v1 is not served (Istio before 1.22). Both are the same resource for RBAC.
func listPeerAuthentications(ctx context.Context, c istioclient.Interface) ([]*securityv1.PeerAuthentication, error) {
	out, err := listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]*securityv1.PeerAuthentication, string, error) {
		l, err := c.SecurityV1().PeerAuthentications("").List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	if !apierrors.IsNotFound(err) {
		return out, crdHint(err, "peerauthentications.security.istio.io")
	}
	out, err = listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]*securityv1.PeerAuthentication, string, error) {
		l, err := c.SecurityV1beta1().PeerAuthentications("").List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		var items []*securityv1.PeerAuthentication
		for _, p := range l.Items {
			items = append(items, &securityv1.PeerAuthentication{ObjectMeta: p.ObjectMeta, Spec: *p.Spec.DeepCopy()})
		}
		return items, l.Continue, nil
	})
	return out, crdHint(err, "peerauthentications.security.istio.io")
}

// listAuthorizationPolicies lists the AuthorizationPolicies of one namespace (v1, else v1beta1).
func listAuthorizationPolicies(ctx context.Context, c istioclient.Interface, ns string) ([]*securityv1.AuthorizationPolicy, error) {
	out, err := listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]*securityv1.AuthorizationPolicy, string, error) {
		l, err := c.SecurityV1().AuthorizationPolicies(ns).List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	if !apierrors.IsNotFound(err) {
		return out, crdHint(err, "authorizationpolicies.security.istio.io")
	}
	out, err = listAll(ctx, func(ctx context.Context, o metav1.ListOptions) ([]*securityv1.AuthorizationPolicy, string, error) {
		l, err := c.SecurityV1beta1().AuthorizationPolicies(ns).List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		var items []*securityv1.AuthorizationPolicy
		for _, p := range l.Items {
			items = append(items, &securityv1.AuthorizationPolicy{ObjectMeta: p.ObjectMeta, Spec: *p.Spec.DeepCopy()})
		}
		return items, l.Continue, nil
	})
	return out, crdHint(err, "authorizationpolicies.security.istio.io")
}

// crdHint turns "the server could not find the requested resource" into the fix.
func crdHint(err error, resource string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s is not served (neither v1 nor v1beta1): is Istio installed in this cluster? (%w)", resource, err)
	}
	return err
}

// listAll follows continue tokens so that large clusters are read in pages of pageSize.
func listAll[T any](ctx context.Context, list func(context.Context, metav1.ListOptions) ([]T, string, error)) ([]T, error) {
	var out []T
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		items, cont, err := list(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if cont == "" {
			return out, nil
		}
		opts.Continue = cont
	}
}

func isAPIStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
