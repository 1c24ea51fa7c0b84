package apitest

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Context is a context that ends after d or when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// CountingPodLists is a client whose pod LISTs in ns are counted, and which calls hook(n)
// before sending the n-th: a polling check makes one per observation, so a test can change
// pods between two observations, exactly.
func CountingPodLists(t testing.TB, cfg *rest.Config, ns string, hook func(n int64)) (kubernetes.Interface, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && req.URL.Path == "/api/v1/namespaces/"+ns+"/pods" && req.URL.Query().Get("watch") == "" {
				hook(n.Add(1))
			}
			return rt.RoundTrip(req)
		})
	})
	kube, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return kube, &n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// KubeconfigAs writes a kubeconfig whose context (named contextName) reaches this API server
// as the admin impersonating user (e.g. "system:serviceaccount:ns:name"): RBAC then evaluates
// that user alone. It returns the file's path.
func (e *Environment) KubeconfigAs(t testing.TB, user, contextName string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cur := kc.Contexts[kc.CurrentContext]
	auth := kc.AuthInfos[cur.AuthInfo].DeepCopy()
	auth.Impersonate = user
	kc.AuthInfos[contextName] = auth
	kc.Contexts[contextName] = &clientcmdapi.Context{Cluster: cur.Cluster, AuthInfo: contextName}
	kc.CurrentContext = contextName
	path := filepath.Join(t.TempDir(), contextName+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
