package provision

import (
	"context"
	"errors"
	"meshconform"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"meshconform/framework/cluster"
	"meshconform/framework/cluster/preflight"
	"meshconform/framework/mesh"
	"meshconform/framework/settings"
	"meshconform/framework/workload"
	"meshconform/internal/istiosrc"
	"meshconform/internal/kindtest"
)

func load(t *testing.T, env map[string]string) settings.Settings {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["REPORTS_DIR"]; !ok {
		env["REPORTS_DIR"] = t.TempDir()
	}
	s, err := settings.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeep(t *testing.T) {
	want := map[settings.KeepPolicy][3]bool{ // passed, failed, interrupted
		settings.KeepAlways:    {true, true, true},
		settings.KeepOnFailure: {false, true, false},
		settings.KeepNever:     {false, false, false},
	}
	for p, w := range want {
		for i, o := range []Outcome{Passed, Failed, Interrupted} {
			if got := Keep(p, o); got != w[i] {
				t.Errorf("Keep(%s, %s) = %v, want %v", p, o, got, w[i])
			}
		}
	}
	if OutcomeOf(false, false) != Passed || OutcomeOf(false, true) != Failed {
		t.Error("OutcomeOf without an interrupt")
	}
	if OutcomeOf(true, false) != Interrupted || OutcomeOf(true, true) != Interrupted {
		t.Error("an interrupt is an interrupt, failed or not")
	}
	for _, o := range []Outcome{Passed, Failed, Interrupted} {
		if got, err := ParseOutcome(string(o)); got != o || err != nil {
			t.Errorf("ParseOutcome(%s) = %q, %v", o, got, err)
		}
	}
	if got, err := ParseOutcome("fail"); err == nil || err.Error() != `outcome "fail" is none of passed, failed, interrupted` {
		t.Errorf("ParseOutcome(fail) = %q, %v", got, err)
	}
}

func TestDisruptiveAllowed(t *testing.T) {
	for _, tc := range []struct {
		t       settings.Toggle
		created bool
		want    bool
	}{
		{settings.ToggleAuto, true, true}, {settings.ToggleAuto, false, false},
		{settings.ToggleOn, false, true}, {settings.ToggleOff, true, false},
	} {
		if got := DisruptiveAllowed(tc.t, tc.created); got != tc.want {
			t.Errorf("DisruptiveAllowed(%s, created=%v) = %v", tc.t, tc.created, got)
		}
	}
}

func TestPlanIstio(t *testing.T) {
	def := mesh.ControlPlane{Namespace: "istio-system", Deployment: "istiod", Version: defaultIstio}
	canary := mesh.ControlPlane{Namespace: "istio-system", Deployment: "istiod-canary", Revision: "canary", Version: "1.30.5"}
	tests := []struct {
		name  string
		env   map[string]string
		found []mesh.ControlPlane
		plan  IstioPlan
		match string
		err   string
	}{
		{"kind, nothing there: install", nil, nil, Install, "", ""},
		{"kind, same version there: use it", nil, []mesh.ControlPlane{def}, UseFound, "istiod", ""},
		{"kind, other version there: install (upgrade)", map[string]string{"ISTIO_VERSION": "1.30.5"}, []mesh.ControlPlane{def}, Install, "istiod", ""},
		{"kind, install=no, nothing", map[string]string{"ISTIO_INSTALL": "no"}, nil, "", "", "no istiod found in istio-system and ISTIO_INSTALL=no: set ISTIO_INSTALL=auto to install Istio " + defaultIstio + ", or ISTIO_INSTALL=none to check the cluster alone (the baseline; every behaviour is left out)"},
		{"existing, nothing there", map[string]string{"KUBE_CONTEXT": "lab"}, nil, "", "",
			"no istiod found in istio-system; install Istio or unset KUBE_CONTEXT to let the suite create a kind cluster (or set ISTIO_INSTALL=yes to install Istio " + defaultIstio + " on context lab)"},
		{"existing, found, no version asked: use it", map[string]string{"KUBE_CONTEXT": "lab", "ISTIO_REVISION": "canary"}, []mesh.ControlPlane{def, canary}, UseFound, "istiod-canary", ""},
		{"existing, found another version than asked", map[string]string{"KUBE_CONTEXT": "lab", "ISTIO_VERSION": "1.30.5"}, []mesh.ControlPlane{def}, "", "istiod",
			"the cluster runs Istio " + defaultIstio + " (istiod istio-system/istiod (revision default, " + defaultIstio + " from , trust domain , root namespace )) but ISTIO_VERSION=1.30.5: unset ISTIO_VERSION to test what is installed, or set ISTIO_INSTALL=yes to upgrade it"},
		{"existing, other revision only", map[string]string{"KUBE_CONTEXT": "lab"}, []mesh.ControlPlane{canary}, "", "",
			`no istiod of revision "" (found revisions canary): set ISTIO_REVISION to one of them, or ISTIO_INSTALL=yes to install ` + defaultIstio},
		{"existing, install=yes", map[string]string{"KUBE_CONTEXT": "lab", "ISTIO_INSTALL": "yes"}, []mesh.ControlPlane{def}, Install, "istiod", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, cp, err := PlanIstio(load(t, tc.env), tc.found)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got  %v\nwant %s", err, tc.err)
				}
				return
			}
			if err != nil || plan != tc.plan {
				t.Fatalf("plan %q err %v, want %q", plan, err, tc.plan)
			}
			got := ""
			if cp != nil {
				got = cp.Deployment
			}
			if got != tc.match {
				t.Errorf("matched %q, want %q", got, tc.match)
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := load(t, map[string]string{"KUBE_CONTEXT": "lab", "KUBECONFIG": "/k"})
	st := State{
		RunID: "abc12345", Kubeconfig: "/k", Context: "lab", Server: "https://127.0.0.1:6443", Existing: true,
		KubernetesVersion: "v1.37.2", Istio: Istio{Version: "1.31.1", Namespace: "istio-system", TrustDomain: "cluster.local", RootNamespace: "istio-system"},
		RunDir: filepath.Join(s.ReportsDir, "run"), Settings: s, Started: time.Now().UTC().Truncate(time.Second),
	}
	path := StatePath(st.RunDir)
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode().Perm())
	}
	back, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, back) {
		t.Fatalf("round trip changed it:\n%+v\n%+v", st, back)
	}
	if _, err := UnmarshalState([]byte(`{}`)); err == nil {
		t.Error("an empty state was accepted")
	}
	if _, err := LoadState(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), StateEnv) {
		t.Errorf("missing state file: %v", err)
	}
}

func TestImages(t *testing.T) {
	s := load(t, nil)
	imgs, err := Images(context.Background(), s, "extra/image:1", "docker.io/istio/pilot:"+s.IstioVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"docker.io/istio/pilot:" + s.IstioVersion, "docker.io/istio/proxyv2:" + s.IstioVersion, "extra/image:1"}, workload.Images()...) {
		if !slices.Contains(imgs, want) {
			t.Errorf("images lack %s: %v", want, imgs)
		}
	}
	if !slices.IsSorted(imgs) || len(slices.Compact(slices.Clone(imgs))) != len(imgs) {
		t.Errorf("not sorted and unique: %v", imgs)
	}
	if len(workload.Images()) == 0 {
		t.Error("the samples list no images")
	}
	for _, img := range imgs {
		if r, err := cluster.ParseImageRef(img); err != nil || !r.Pinned() {
			t.Errorf("image %q is not a pinned reference (%v): preloading would load a moving tag", img, err)
		}
	}
	// ISTIO_INSTALL=no installs no Istio, so none of its images is preloaded.
	none, err := Images(context.Background(), load(t, map[string]string{"ISTIO_INSTALL": "no"}))
	if err != nil || slices.ContainsFunc(none, func(img string) bool { return strings.Contains(img, "/istio/") }) || len(none) != len(workload.Images()) {
		t.Errorf("ISTIO_INSTALL=no preloads %v (%v); want the samples' images only", none, err)
	}
	// Without Istio only the baseline runs: its two samples' images are all that is preloaded.
	baselineImgs, _ := workload.ImagesOf(workload.PlainClient, workload.Httpbin)
	slices.Sort(baselineImgs)
	if none, err := Images(context.Background(), load(t, map[string]string{"ISTIO_INSTALL": "none"})); err != nil || !slices.Equal(none, slices.Compact(baselineImgs)) {
		t.Errorf("ISTIO_INSTALL=none preloads %v (%v); want the baseline's images only, %v", none, err, baselineImgs)
	}
	// The baseline's two samples are required; the others (mysql among them) optional.
	opt := OptionalImages()
	core, _ := workload.ImagesOf(workload.PlainClient, workload.Httpbin)
	if len(opt) == 0 || len(opt)+len(core) != len(workload.Images()) || slices.ContainsFunc(core, func(img string) bool { return slices.Contains(opt, img) }) ||
		!slices.ContainsFunc(opt, func(img string) bool { return strings.Contains(img, "/mysql:") }) {
		t.Errorf("optional images %v, core %v: want every sample image but the baseline's, mysql among them", opt, core)
	}
	// ISTIO_AGENT_IMAGE is preloaded, and required (not optional), where Istio runs.
	agent := "meshconform.local/istio/pilot-agent:1.31.0-dev.20260827124520"
	if got, err := Images(context.Background(), load(t, map[string]string{"ISTIO_AGENT_IMAGE": agent})); err != nil || !slices.Contains(got, agent) || slices.Contains(OptionalImages(), agent) {
		t.Errorf("ISTIO_AGENT_IMAGE: preloads %v (%v); want %s among the required images", got, err, agent)
	}
	if got, _ := Images(context.Background(), load(t, map[string]string{"ISTIO_AGENT_IMAGE": agent, "ISTIO_INSTALL": "none"})); slices.Contains(got, agent) {
		t.Errorf("ISTIO_INSTALL=none preloads the agent image: %v", got)
	}
	// The proxyless mode preloads ISTIO_ECHO_IMAGE, and with ISTIO_AGENT_IMAGE no proxyv2 (no
	// pod runs it); without an agent image the grpc-agent pods run the chart's proxy image.
	echo := "meshconform.local/istio/app:1.31.0-dev.20260827124520"
	px, err := Images(context.Background(), load(t, map[string]string{"DATAPLANE_MODE": "proxyless", "ISTIO_ECHO_IMAGE": echo, "ISTIO_AGENT_IMAGE": agent}))
	if err != nil || !slices.Contains(px, echo) || !slices.Contains(px, agent) || slices.ContainsFunc(px, func(img string) bool { return strings.Contains(img, "/proxyv2:") }) {
		t.Errorf("proxyless with an agent image preloads %v (%v); want the echo and agent images, no proxyv2", px, err)
	}
	px, _ = Images(context.Background(), load(t, map[string]string{"DATAPLANE_MODE": "proxyless", "ISTIO_ECHO_IMAGE": echo}))
	if !slices.ContainsFunc(px, func(img string) bool { return strings.Contains(img, "/proxyv2:") }) {
		t.Errorf("proxyless without an agent image preloads %v; want the chart's proxy image", px)
	}
	hub := load(t, map[string]string{"ISTIO_HUB": "mirror.local/istio"})
	if got, err := IstioImages(context.Background(), hub); err != nil || got[0] != "mirror.local/istio/pilot:"+hub.IstioVersion {
		t.Errorf("hub not used: %v", got)
	}
}

const deadEngine = "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n"

// On a machine without a Docker engine the flow stops in preflight, within seconds, with the
// message, and creates nothing: no cluster, no kubeconfig, no run directory content.
func TestUpStopsAtPreflightWithoutDocker(t *testing.T) {
	kindtest.NoEngine(t)
	s := load(t, map[string]string{"KIND_CONFIG": kindtest.FreePortsConfig(t)})
	var log strings.Builder
	start := time.Now()
	st, err := Up(context.Background(), s, &log) // the real preflight: real docker CLI, real chart check
	took := time.Since(start)
	if took > 10*time.Second {
		t.Fatalf("took %s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "docker: Docker engine not reachable: ") ||
		!strings.Contains(err.Error(), "Start Docker (or set KUBE_CONTEXT to use an existing cluster)") {
		t.Fatalf("err = %v", err)
	}
	if st.ClusterName != "" || st.CreatedCluster || st.Context != "" {
		t.Errorf("state after preflight failure: %+v", st)
	}
	if strings.Contains(log.String(), "meshconform: cluster ...") {
		t.Errorf("went past preflight:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "meshconform: preflight failed after") || !strings.Contains(log.String(), "preflight FAIL docker") {
		t.Errorf("log:\n%s", log.String())
	}
	if entries, _ := os.ReadDir(filepath.Join(s.ReportsDir, "run")); len(entries) != 0 {
		t.Errorf("run dir has %d entries after a preflight failure", len(entries))
	}
	t.Logf("%s\n--- error:\n%v", log.String(), err)
}

// The same with a fake CLI that fails like a dead engine, independent of this machine.
func TestUpStopsAtPreflightFakeDeadEngine(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "docker")
	os.WriteFile(bin, []byte(deadEngine), 0o755)
	s := load(t, map[string]string{"KIND_CONFIG": kindtest.FreePortsConfig(t)})
	var charts int
	_, err := Up(context.Background(), s, nil, WithPreflight(preflight.Options{
		Docker: cluster.Docker{Path: bin},
		Charts: func(context.Context, settings.Settings) error { charts++; return nil },
	}))
	var pe *preflight.Error
	if err == nil || !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Check != "docker" {
		t.Fatalf("err = %v", err)
	}
	if charts != 1 {
		t.Errorf("chart check ran %d times, want 1 (all checks run, side by side)", charts)
	}
}

func TestDownMessages(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no kind, no docker: what Down prints must still be right
	s := load(t, map[string]string{"CLUSTER_NAME": "mc", "KEEP_CLUSTER": "on-failure"})
	base := State{RunID: "r1", Settings: s, ClusterName: "mc", Kubeconfig: "/reports/run/kubeconfig", Context: "kind-mc"}

	var log strings.Builder
	existing := base
	existing.Existing, existing.ClusterName = true, ""
	if err := Down(context.Background(), existing, Failed, &log); err != nil || log.Len() != 0 {
		t.Errorf("existing cluster: err %v, log %q", err, log.String())
	}

	log.Reset()
	reused := base
	if err := Down(context.Background(), reused, Passed, &log); err != nil {
		t.Fatal(err)
	}
	if want := "meshconform: kind cluster mc was reused and is left as found; remove it with: go run sigs.k8s.io/kind@v0.33.0 delete cluster --name mc\n"; log.String() != want {
		t.Errorf("reused:\n got %q\nwant %q", log.String(), want)
	}

	log.Reset()
	created := base
	created.CreatedCluster = true
	if err := Down(context.Background(), created, Failed, &log); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kept kind cluster mc (KEEP_CLUSTER=on-failure, run failed)",
		"kubectl --kubeconfig /reports/run/kubeconfig --context kind-mc get pods -A",
		"make e2e REUSE_CLUSTER=1 CLUSTER_NAME=mc",
		"remove:  go run sigs.k8s.io/kind@v0.33.0 delete cluster --name mc",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("kept message lacks %q:\n%s", want, log.String())
		}
	}

	// Passed with on-failure: delete. Without docker the delete fails, and says how to do it
	// by hand; it runs (and fails) even though the caller's context is already cancelled.
	log.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := Down(ctx, created, Passed, &log)
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Down took %s", time.Since(start))
	}
	if err == nil || !strings.Contains(err.Error(), `delete kind cluster "mc"`) || !strings.Contains(err.Error(), "remove it by hand with: go run sigs.k8s.io/kind@v0.33.0 delete cluster --name mc") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(log.String(), "deleting kind cluster mc (KEEP_CLUSTER=on-failure, run passed)") {
		t.Errorf("log: %s", log.String())
	}

	// Installed by the run where none was: Down uninstalls it (here the context reaches no
	// cluster, so the uninstall fails and says what may be left and how to remove it).
	log.Reset()
	installed := existing
	installed.Istio = Istio{Version: "1.31.1", Revision: "canary", InstalledByRun: true}
	installed.Settings.IstioVersion = "1.31.1"
	if !UninstallsOnDown(installed) {
		t.Fatal("a mesh the run installed on an existing cluster is not uninstalled by Down")
	}
	err = Down(context.Background(), installed, Passed, &log)
	if !strings.Contains(log.String(), "meshconform: uninstalling Istio 1.31.1, which this run installed on context kind-mc ...") ||
		err == nil || !strings.Contains(err.Error(), "uninstalling the Istio this run installed on context kind-mc: ") ||
		!strings.Contains(err.Error(), "remove what is left with: helm --kube-context kind-mc -n istio-ingress uninstall istio-ingressgateway-canary && helm --kube-context kind-mc -n istio-system uninstall istiod-canary") {
		t.Errorf("installed on existing: log %q, err %v", log.String(), err)
	}

	// Upgraded by the run: the user's mesh stays, and Down says at which version.
	log.Reset()
	upgraded := installed
	upgraded.Istio.Replaced = "1.30.8"
	if UninstallsOnDown(upgraded) {
		t.Error("Down would uninstall a mesh that was there before the run")
	}
	if err := Down(context.Background(), upgraded, Passed, &log); err != nil {
		t.Fatal(err)
	}
	want := "meshconform: Istio on context kind-mc was upgraded by this run from 1.30.8 to 1.31.1 and is left at 1.31.1 (it was there before the run); to return to 1.30.8, rerun with ISTIO_INSTALL=yes ISTIO_VERSION=1.30.8\n"
	if log.String() != want {
		t.Errorf("upgraded on existing:\n got %q\nwant %q", log.String(), want)
	}
	for _, st := range []State{created, existing} {
		if UninstallsOnDown(st) {
			t.Errorf("Down would uninstall Istio of %+v", st.Istio)
		}
	}

	// A reused kind cluster the run installed Istio on keeps it (the next run reuses it),
	// unless WithUninstallFromReused asks for it to be left as found (the upgrade gate): then
	// the other revisions go first, each at its own version, then the run's own at its version
	// now (here the context reaches no cluster, so the first uninstall fails, saying how to
	// remove what is left).
	reusedIstio := reused
	reusedIstio.Istio = Istio{Version: "1.30.8", InstalledByRun: true}
	reusedIstio.Settings.IstioVersion = "1.30.8"
	if !UninstallsFromReused(reusedIstio) || UninstallsFromReused(reused) || UninstallsFromReused(installed) {
		t.Fatal("UninstallsFromReused: want it only for a reused kind cluster the run installed Istio on")
	}
	log.Reset()
	if err := Down(context.Background(), reusedIstio, Failed, &log); err != nil || strings.Contains(log.String(), "uninstall") {
		t.Errorf("reused without WithUninstallFromReused: err %v, log %q; want Istio kept", err, log.String())
	}
	log.Reset()
	err = Down(context.Background(), reusedIstio, Failed, &log, WithUninstallFromReused(func() Installed {
		return Installed{Version: "1.31.1", Others: map[string]string{"canary": "1.31.1"}}
	}))
	if !strings.Contains(log.String(), "meshconform: uninstalling istiod 1.31.1 (revision canary), which this run installed on context kind-mc ...") ||
		err == nil || !strings.Contains(err.Error(), "uninstalling istiod revision canary, which this run installed on context kind-mc: ") ||
		!strings.Contains(err.Error(), "helm --kube-context kind-mc -n istio-system uninstall istiod-canary") ||
		!strings.Contains(err.Error(), "kubectl --context kind-mc delete namespace -l app.kubernetes.io/managed-by=meshconform,meshconform.io/run-id=r1") {
		t.Errorf("reused, left as found: log %q, err %v", log.String(), err)
	}
	log.Reset()
	err = Down(context.Background(), reusedIstio, Passed, &log, WithUninstallFromReused(func() Installed { return Installed{Version: "1.31.1"} }))
	if !strings.Contains(log.String(), "meshconform: uninstalling Istio 1.31.1, which this run installed on context kind-mc ...") || err == nil ||
		!strings.Contains(err.Error(), "uninstall istiod istio-base") {
		t.Errorf("reused, default revision only: log %q, err %v", log.String(), err)
	}

	// WithNoIstioBefore's refusal names what was found and both ways out.
	msg := NoIstioBeforeError("the upgrade gate starts from Istio 1.30.8", reused, []mesh.ControlPlane{{Namespace: "istio-system", Version: "1.29.2"}}).Error()
	for _, want := range []string{"the upgrade gate starts from Istio 1.30.8 on a cluster without Istio, and kind cluster mc has ", "1.29.2", "unset REUSE_CLUSTER", "delete cluster --name mc"} {
		if !strings.Contains(msg, want) {
			t.Errorf("NoIstioBeforeError lacks %q: %s", want, msg)
		}
	}
}

// A suite given a driver's state file uses it; one whose cluster is gone fails fast.
func TestAcquireFromStateFile(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://"+addr+"\"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: kind-mc, context: {cluster: c, user: u}}]\n"), 0o600)
	st := State{RunID: "r1", Kubeconfig: kc, Context: "kind-mc", Server: "http://" + addr}
	path := StatePath(dir)
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv(StateEnv, path)
	start := time.Now()
	_, owned, err := Acquire(context.Background(), load(t, nil), nil)
	if time.Since(start) > 6*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
	if owned || err == nil || !strings.Contains(err.Error(), "the run's cluster (http://"+addr+", context kind-mc from "+StateEnv) {
		t.Fatalf("owned=%v err=%v", owned, err)
	}
}

// defaultIstio is the version a run installs when ISTIO_VERSION is unset (versions.yaml's
// first), so these tests follow a version bump instead of breaking on it.
var defaultIstio = meshconform.SupportedVersions().DefaultIstio()

// ISTIO_GATEWAY=0 reaches the installer.
func TestMeshOptionsNoGateway(t *testing.T) {
	if MeshOptions(settings.Settings{NoGateway: true}, State{}).NoGateway != true || MeshOptions(settings.Settings{}, State{}).NoGateway {
		t.Error("MeshOptions does not pass Settings.NoGateway")
	}
}

// INGRESS_API=gateway-api has the run's install put the Gateway API's CRDs in, in sidecar mode
// too (ambient always does); the default ingress API does not.
func TestMeshOptionsGatewayAPI(t *testing.T) {
	for api, want := range map[string]bool{settings.IngressGatewayAPI: true, settings.IngressIstio: false, "": false} {
		if got := MeshOptions(settings.Settings{IngressAPI: api}, State{}).GatewayAPI; got != want {
			t.Errorf("INGRESS_API=%q: GatewayAPI %v, want %v", api, got, want)
		}
	}
}

// IMAGE_PULL=0 reaches the nodes: Istio's own release-1.31 charts, rendered with the options
// the run installs with, give istiod and the injected proxy imagePullPolicy Never; and
// DATAPLANE=0 preloads istiod's image alone (no proxy runs).
func TestNoPullAndNoDataPlaneOnIstio(t *testing.T) {
	b := istiosrc.Release131
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := istiosrc.ChartDir(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, map[string]string{"ISTIO_VERSION": b.Version, "ISTIO_CHART_DIR": dir, "ISTIO_HUB": "meshconform.local/istio",
		"IMAGE_PULL": "0", "DATAPLANE": "0"})
	in, err := mesh.New(MeshOptions(s, State{}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := in.Render(ctx, mesh.ChartIstiod)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "imagePullPolicy: Never"); n != 1 {
		t.Errorf("the istiod Deployment renders imagePullPolicy: Never %d times, want once", n)
	}
	// The injector's values (ConfigMap istio-sidecar-injector, data.values as JSON) feed
	// files/injection-template.yaml's {{with .Values.global.imagePullPolicy}}.
	if !strings.Contains(out, `"imagePullPolicy": "Never"`) {
		t.Errorf("the sidecar injector's values do not carry global.imagePullPolicy Never")
	}
	imgs, err := IstioImages(context.Background(), s)
	if err != nil || !slices.Equal(imgs, []string{"meshconform.local/istio/pilot:" + b.Version}) {
		t.Errorf("DATAPLANE=0 preloads %v (%v), want istiod's image alone", imgs, err)
	}
	// And the host: the kind preload the run builds refuses to pull (it is not replaced by
	// another option after being set: the live tier's first runs pulled mysql that way).
	if p := preloaderFor(s, State{RunDir: t.TempDir()}, nil); !p.NoPull {
		t.Error("IMAGE_PULL=0: the run's preloader may pull")
	}
	pull := load(t, map[string]string{"ISTIO_VERSION": b.Version, "ISTIO_CHART_DIR": dir})
	if p := preloaderFor(pull, State{}, nil); p.NoPull {
		t.Error("IMAGE_PULL unset: the run's preloader may not pull")
	}
	if o := MeshOptions(pull, State{}); o.Values != nil {
		t.Errorf("with pulls allowed the run sets values %v", o.Values)
	}
}

// DATAPLANE_MODE=ambient reaches the installer, and the preload lists what Istio's own
// release-1.31 charts render with the ambient profile: pilot, proxyv2, install-cni and ztunnel,
// each -distroless; with IMAGE_PULL=0 the node agents' DaemonSets never pull either.
func TestAmbientImagesAndNoPull(t *testing.T) {
	b := istiosrc.Release131
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := istiosrc.ChartDir(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	s := load(t, map[string]string{"ISTIO_VERSION": b.Version, "ISTIO_CHART_DIR": dir, "ISTIO_HUB": "h.local/istio",
		"DATAPLANE_MODE": "ambient", "IMAGE_PULL": "0"})
	o := MeshOptions(s, State{})
	if !o.Ambient {
		t.Fatal("DATAPLANE_MODE=ambient does not reach mesh.Options.Ambient")
	}
	imgs, err := IstioImages(ctx, s)
	var want []string
	for _, n := range []string{"install-cni", "pilot", "proxyv2", "ztunnel"} {
		want = append(want, "h.local/istio/"+n+":"+b.Version+"-distroless")
	}
	if err != nil || !slices.Equal(imgs, want) {
		t.Errorf("ambient preloads %v (%v), want %v", imgs, err, want)
	}
	in, err := mesh.New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []mesh.Chart{mesh.ChartCNI, mesh.ChartZtunnel} {
		out, err := in.Render(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "imagePullPolicy: Never"); n != 1 {
			t.Errorf("IMAGE_PULL=0: chart %s renders imagePullPolicy: Never %d times, want once", c, n)
		}
	}
	if MeshOptions(load(t, nil), State{}).Ambient {
		t.Error("the default mode installs ambient")
	}

	// DATAPLANE=0: no node agent can run (no ztunnel or install-cni image, as with istiod built
	// from source): neither is installed nor preloaded, istiod's image alone is, and the hint
	// for what a failed run left names no release of theirs.
	s = load(t, map[string]string{"ISTIO_VERSION": b.Version, "ISTIO_CHART_DIR": dir, "ISTIO_HUB": "h.local/istio",
		"DATAPLANE_MODE": "ambient", "IMAGE_PULL": "0", "DATAPLANE": "0"})
	if o := MeshOptions(s, State{}); !o.Ambient || !o.NoNodeAgents {
		t.Errorf("ambient with DATAPLANE=0: Ambient %v, NoNodeAgents %v; want both", o.Ambient, o.NoNodeAgents)
	}
	imgs, err = IstioImages(ctx, s)
	if want := []string{"h.local/istio/pilot:" + b.Version + "-distroless"}; err != nil || !slices.Equal(imgs, want) {
		t.Errorf("ambient with DATAPLANE=0 preloads %v (%v), want %v", imgs, err, want)
	}
	st := State{Context: "kind-x", Settings: s}
	st.Istio.DataplaneMode = settings.ModeAmbient
	if hint := strings.Join(removeCommands(st), "\n"); strings.Contains(hint, "ztunnel") || strings.Contains(hint, "istio-cni") {
		t.Errorf("ambient with DATAPLANE=0: the removal hint names node agents it never installed: %s", hint)
	}
	st.Settings.NoDataPlane = false
	if hint := strings.Join(removeCommands(st), "\n"); !strings.Contains(hint, "ztunnel") {
		t.Errorf("ambient: the removal hint does not name ztunnel: %s", hint)
	}
}

// The data-plane mode is read from the cluster, never assumed: on an existing cluster the
// found mode is the run's, and a DATAPLANE_MODE given that disagrees is an error naming what
// was found; on kind, ambient asked of a found sidecar mesh installs, sidecar asked of a found
// ambient mesh is an error.
func TestPlanMode(t *testing.T) {
	ambient := mesh.DataPlaneFound{Mode: mesh.ModeAmbient, Ztunnel: "istio-system/ztunnel", AmbientNamespaces: []string{"shop"}}
	sidecar := mesh.DataPlaneFound{Mode: mesh.ModeSidecar}
	existing := map[string]string{"KUBE_CONTEXT": "prod"}
	with := func(extra map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range extra {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		found    mesh.DataPlaneFound
		plan     IstioPlan
		mode     string
		errParts []string
	}{
		{"existing ambient, mode not given", existing, ambient, UseFound, "ambient", nil},
		{"existing sidecar, mode not given", existing, sidecar, UseFound, "sidecar", nil},
		{"existing ambient, ambient given", with(existing, "DATAPLANE_MODE", "ambient"), ambient, UseFound, "ambient", nil},
		{"existing ambient, sidecar given", with(existing, "DATAPLANE_MODE", "sidecar"), ambient, "", "",
			[]string{"runs the ambient data plane (data plane ambient (DaemonSet istio-system/ztunnel, 1 namespace(s) labelled istio.io/dataplane-mode=ambient: shop)) but DATAPLANE_MODE=sidecar", "unset DATAPLANE_MODE"}},
		{"existing sidecar, ambient given", with(existing, "DATAPLANE_MODE", "ambient"), sidecar, "", "",
			[]string{"runs the sidecar data plane (data plane sidecar (no ztunnel DaemonSet)) but DATAPLANE_MODE=ambient"}},
		{"kind reused sidecar, ambient asked", map[string]string{"DATAPLANE_MODE": "ambient"}, sidecar, Install, "ambient", nil},
		{"kind reused ambient, sidecar default", nil, ambient, "", "", []string{"but DATAPLANE_MODE=sidecar", "set DATAPLANE_MODE=ambient, or delete the cluster"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, mode, err := PlanMode(load(t, tc.env), UseFound, tc.found)
			if len(tc.errParts) > 0 {
				for _, p := range tc.errParts {
					if err == nil || !strings.Contains(err.Error(), p) {
						t.Errorf("err %v, want it to say %q", err, p)
					}
				}
				return
			}
			if err != nil || plan != tc.plan || mode != tc.mode {
				t.Errorf("PlanMode = %s, %s, %v; want %s, %s", plan, mode, err, tc.plan, tc.mode)
			}
		})
	}
	if (State{}).Mode() != "sidecar" {
		t.Error("a state from before the mode must read as sidecar")
	}
}

// What a failed uninstall prints removes ztunnel and istio-cni before istiod on an ambient mesh.
func TestRemoveCommandsAmbient(t *testing.T) {
	st := State{Context: "prod"}
	st.Istio.DataplaneMode = settings.ModeAmbient
	if got := strings.Join(removeCommands(st), "\n"); !strings.Contains(got, "uninstall ztunnel istio-cni istiod istio-base") {
		t.Errorf("ambient: %s", got)
	}
	st.Istio.DataplaneMode = ""
	if got := strings.Join(removeCommands(st), "\n"); strings.Contains(got, "ztunnel") {
		t.Errorf("sidecar: %s", got)
	}
}
