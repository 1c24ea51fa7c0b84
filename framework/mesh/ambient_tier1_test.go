package mesh

// Tier 1 of the ambient data plane: Istio's real cni and ztunnel charts, rendered with
// profile=ambient, applied to a real API server; and every ambient object a behaviour would
// create, checked by the API server against Istio's CRDs (istio.io/api) and Gateway API
// v1.6.0's standard-channel CRDs (apitest.InstallGatewayAPI), malformed ones included, so that
// a wrong field is found here rather than on a live cluster. No istiod runs: what only istiod
// checks (e.g. which kinds a targetRef may name) is out of reach, and a test below pins that.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"

	"meshconform/framework/istionames"
	"meshconform/internal/apitest"
	"meshconform/internal/istiosrc"
)

// applier creates or server-side applies YAML objects through the dynamic client, mapping kinds
// to resources by discovery (reset when a kind is not found, as after new CRDs).
type applier struct {
	t      *testing.T
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, env *apitest.Environment) *applier {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{t: t, dyn: env.Dynamic, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// resource is the client for obj's kind, in obj's namespace when the kind is namespaced.
func (a *applier) resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, bool, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()), true, nil
	}
	return a.dyn.Resource(m.Resource), false, nil
}

func decode(t testing.TB, doc string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, doc)
	}
	return obj
}

// create creates doc (after filling in ns for NS) and returns the API server's error.
func (a *applier) create(ctx context.Context, doc, ns string) error {
	obj := decode(a.t, strings.ReplaceAll(doc, "NS", ns))
	r, _, err := a.resource(obj)
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	return err
}

// TestAmbientChartsApply renders cni and ztunnel of each pinned branch with profile=ambient in
// a control-plane namespace of its own and applies every object to the API server (server-side
// apply, as Helm does): the charts' objects are valid for this Kubernetes, and the stored
// DaemonSets run the -distroless images RenderedImages lists. No kubelet runs, so no pod
// starts; a DaemonSet is accepted all the same.
func TestAmbientChartsApply(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 3*time.Minute)
	a := newApplier(t, env)
	var clusterScoped []func()
	t.Cleanup(func() {
		for _, del := range clusterScoped {
			del()
		}
	})
	for _, b := range istiosrc.Branches {
		ns := env.Namespace(t, "istio-system", nil)
		o := ambientOptions(t, b, ns)
		in, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		images, err := in.RenderedImages(ctx, ChartCNI, ChartZtunnel)
		if err != nil {
			t.Fatal(err)
		}
		applied := map[string]bool{}
		for _, c := range []Chart{ChartCNI, ChartZtunnel} {
			m, err := in.Render(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range releaseutil.SplitManifests(m) {
				obj := decode(t, doc)
				if obj.Object == nil {
					continue
				}
				r, namespaced, err := a.resource(obj)
				if err != nil {
					t.Errorf("%s %s: %s %s: %v", b.Name, c, obj.GetKind(), obj.GetName(), err)
					continue
				}
				force := true
				if _, err := r.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: force}); err != nil {
					t.Errorf("%s %s: the API server refused %s %s: %v", b.Name, c, obj.GetKind(), obj.GetName(), err)
					continue
				}
				applied[obj.GetKind()+"/"+obj.GetName()] = true
				if !namespaced {
					name := obj.GetName()
					clusterScoped = append(clusterScoped, func() {
						if err := r.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
							t.Errorf("cleanup: %s %s: %v", obj.GetKind(), name, err)
						}
					})
				}
			}
		}
		t.Logf("%s: applied %d objects of cni and ztunnel in %s", b.Name, len(applied), ns)
		var stored []string
		for _, name := range []string{"istio-cni-node", "ztunnel"} {
			ds, err := env.Kube.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: DaemonSet %s/%s: %v", b.Name, ns, name, err)
				continue
			}
			for _, c := range ds.Spec.Template.Spec.Containers {
				stored = append(stored, c.Image)
			}
		}
		if want := []string{srcHub + "/install-cni:" + b.Version + "-distroless", srcHub + "/ztunnel:" + b.Version + "-distroless"}; fmt.Sprint(stored) != fmt.Sprint(want) || fmt.Sprint(images) != fmt.Sprint(want) {
			t.Errorf("%s: stored DaemonSets run %v, RenderedImages lists %v; want %v", b.Name, stored, images, want)
		}
		if _, err := env.Kube.CoreV1().ConfigMaps(ns).Get(ctx, "istio-cni-config", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: %v", b.Name, err)
		}
	}
}

// The ambient objects, as Istio's docs and istioctl write them (NS is the test's namespace,
// INGRESS the ingress gateway's).
const (
	// istioctl waypoint apply's Gateway (istioctl/pkg/waypoint/waypoint.go).
	waypointGateway = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: NS
  labels:
    istio.io/waypoint-for: service
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
`
	// A Service sending its traffic through the waypoint.
	waypointService = `
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: NS
  labels:
    istio.io/use-waypoint: waypoint
spec:
  selector:
    app: httpbin
  ports:
  - name: http
    port: 8000
    targetPort: 8080
`
	// L7 policies enforced by the waypoint: attached to the waypoint Gateway, and to the Service.
	policyOnWaypoint = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: get-only
  namespace: NS
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: waypoint
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
`
	policyOnService = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: NS
spec:
  targetRefs:
  - group: ""
    kind: Service
    name: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
`
	// Gateway API ingress: a Gateway of class istio and an HTTP → HTTPS redirect route.
	ingressGateway = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ingress
  namespace: INGRESS
  annotations:
    networking.istio.io/service-type: NodePort
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: All
`
	redirectRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: redirect
  namespace: NS
spec:
  parentRefs:
  - name: ingress
    namespace: INGRESS
    sectionName: http
  rules:
  - filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        statusCode: 301
`
)

// TestAmbientObjectsAccepted: in a namespace enrolled in ambient mode, the waypoint, a Service
// using it, L7 AuthorizationPolicies attached to the waypoint and to the Service by targetRefs,
// and Gateway-API ingress (a Gateway of class istio and a 301 redirect HTTPRoute) are all
// accepted by the API server with Istio's and Gateway API v1.6.0's CRDs, and stored as written.
// Malformed variants are refused with the offending field named.
func TestAmbientObjectsAccepted(t *testing.T) {
	env := apitest.Env(t)
	ctx := apitest.Context(t, 2*time.Minute)
	if err := env.InstallGatewayAPI(ctx); err != nil {
		t.Fatal(err)
	}
	a := newApplier(t, env)
	ns := env.Namespace(t, "ambient", map[string]string{istionames.DataplaneModeLabel: istionames.DataplaneModeAmbient})
	ingress := env.Namespace(t, "istio-ingress", nil)
	fill := func(doc string) string { return strings.ReplaceAll(doc, "INGRESS", ingress) }

	got, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Labels[istionames.DataplaneModeLabel] != "ambient" {
		t.Fatalf("namespace %s: labels %v, %v; want %s=ambient", ns, got.GetLabels(), err, istionames.DataplaneModeLabel)
	}
	for _, doc := range []string{waypointGateway, waypointService, policyOnWaypoint, policyOnService, ingressGateway, redirectRoute} {
		if err := a.create(ctx, fill(doc), ns); err != nil {
			obj := decode(t, doc)
			t.Errorf("the API server refused %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	// Stored as written: what istiod would read.
	read := func(doc, namespace string) *unstructured.Unstructured {
		obj := decode(t, fill(strings.ReplaceAll(doc, "NS", namespace)))
		r, _, err := a.resource(obj)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		return out
	}
	wp := read(waypointGateway, ns)
	listeners, _, _ := unstructured.NestedSlice(wp.Object, "spec", "listeners")
	class, _, _ := unstructured.NestedString(wp.Object, "spec", "gatewayClassName")
	var l map[string]any
	if len(listeners) == 1 {
		l, _ = listeners[0].(map[string]any)
	}
	// The CRD defaults allowedRoutes (from: Same); the rest is as written.
	if class != "istio-waypoint" || l["name"] != "mesh" || l["port"] != int64(15008) || l["protocol"] != "HBONE" || wp.GetLabels()["istio.io/waypoint-for"] != "service" {
		t.Errorf("waypoint stored as class %q, listeners %v, labels %v", class, listeners, wp.GetLabels())
	}
	code, _, _ := unstructured.NestedSlice(read(redirectRoute, ns).Object, "spec", "rules")
	if !strings.Contains(fmt.Sprint(code), "statusCode:301") {
		t.Errorf("redirect route stored as %v, want statusCode 301", code)
	}
	refs, _, _ := unstructured.NestedSlice(read(policyOnWaypoint, ns).Object, "spec", "targetRefs")
	if fmt.Sprint(refs) != "[map[group:gateway.networking.k8s.io kind:Gateway name:waypoint]]" {
		t.Errorf("policy on the waypoint stored with targetRefs %v", refs)
	}

	// Refused, each with the field named: the CRDs' schemas and CEL rules at work.
	refused := []struct {
		name, doc, from, to string
		want                []string
	}{
		{"a redirect status code the HTTPRoute CRD does not allow", redirectRoute, "statusCode: 301", "statusCode: 304",
			[]string{"statusCode", "304"}},
		{"a waypoint listener port out of range", waypointGateway, "port: 15008", "port: 150080",
			[]string{"spec.listeners[0].port"}},
		{"a targetRef to another namespace", policyOnService, "    name: httpbin", "    name: httpbin\n    namespace: elsewhere",
			[]string{"targetRefs[0].namespace", "cross namespace referencing is not currently supported"}},
		{"targetRefs and a selector together", policyOnWaypoint, "spec:\n", "spec:\n  selector:\n    matchLabels:\n      app: httpbin\n",
			[]string{"only one of targetRefs or selector can be set"}},
	}
	for _, r := range refused {
		if !strings.Contains(r.doc, r.from) {
			t.Fatalf("%s: the fixture lacks %q", r.name, r.from)
		}
		doc := strings.Replace(strings.Replace(r.doc, r.from, r.to, 1), "name: ", "name: bad-", 1)
		err := a.create(ctx, fill(doc), ns)
		if err == nil {
			t.Errorf("%s: accepted; want it refused naming %q", r.name, r.want)
			continue
		}
		t.Logf("%s: refused: %v", r.name, err)
		if !apierrors.IsInvalid(err) {
			t.Errorf("%s: refused as %v, not as an invalid object", r.name, err)
		}
		for _, w := range r.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: refused with %q, which does not name %q", r.name, err, w)
			}
		}
	}

	// The AuthorizationPolicy CRD (istio.io/api) puts no limit on a targetRef's kind: a policy
	// attached to a Deployment is stored, and only istiod would report it as not attached. If
	// a future CRD refuses it, this fails: move the case to the refusals above.
	deploymentRef := strings.Replace(strings.Replace(policyOnService, "    kind: Service", "    kind: Deployment", 1), "group: \"\"", "group: apps", 1)
	deploymentRef = strings.Replace(deploymentRef, "name: deny-admin", "name: on-deployment", 1)
	if err := a.create(ctx, deploymentRef, ns); err != nil {
		t.Errorf("a targetRef of kind Deployment: %v; the CRD used to accept any kind (only istiod judges it)", err)
	}
}
