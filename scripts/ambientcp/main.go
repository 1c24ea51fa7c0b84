// Command ambientcp is the live tier's ambient control-plane half (scripts/live.sh, phase
// ambient): on a live cluster it installs istiod in Istio's ambient profile and the Gateway
// API's CRDs through the product's Helm path (mesh.Install with Ambient and NoNodeAgents: no
// istio-cni, no ztunnel, for which no image exists here), makes a waypoint, a Service bound to
// it and three AuthorizationPolicies through the product's builders, and judges what istiod
// did (framework/ambientcp): each check's verdict is printed and written as JSON; any failed
// check exits 1.
//
//	go run ./scripts/ambientcp -kubeconfig K -version V -charts DIR -hub H -pilot-image IMG \
//	    [-install] [-uninstall] [-unbound] -namespace NS -out FILE
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/ambientcp"
	"meshconform/framework/mesh"
)

// Report is what -out holds.
type Report struct {
	Namespace      string              `json:"namespace"`
	Unbound        bool                `json:"unbound,omitempty"`
	InstallSeconds float64             `json:"installSeconds,omitempty"`
	JudgeSeconds   float64             `json:"judgeSeconds"`
	Passed         bool                `json:"passed"`
	Checks         []ambientcp.Verdict `json:"checks"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	version := flag.String("version", "", "Istio version (the charts' version)")
	charts := flag.String("charts", "", "chart directory (ISTIO_CHART_DIR)")
	hub := flag.String("hub", mesh.DefaultHub, "image hub (ISTIO_HUB)")
	pilot := flag.String("pilot-image", "", "istiod's image, used verbatim (pilot.image); empty: the chart's <hub>/pilot:<version>-distroless")
	install := flag.Bool("install", false, "install istiod (profile ambient, no node agents) and the Gateway API first")
	uninstall := flag.Bool("uninstall", false, "uninstall what -install installed at the end (Istio's CRDs and the run's Gateway API CRDs too)")
	unbound := flag.Bool("unbound", false, "do not bind the Service to the waypoint (the broken case)")
	ns := flag.String("namespace", "meshconform-ambientcp", "the fixtures' namespace")
	runID := flag.String("run-id", "ambientcp", "ownership run id")
	timeout := flag.Duration("timeout", time.Minute, "how long istiod has to make every check hold")
	out := flag.String("out", "", "write the verdicts as JSON here")
	httpPort := flag.Int("http-node-port", int(ambientcp.IngressNodePorts[0]), "the ingress Service's nodePort for 80 (nodePorts are cluster-wide)")
	httpsPort := flag.Int("https-node-port", int(ambientcp.IngressNodePorts[1]), "the ingress Service's nodePort for 443")
	flag.Parse()
	rep, err := run(*kubeconfig, *version, *charts, *hub, *pilot, *ns, *runID, *install, *uninstall, *unbound, *timeout, [2]int32{int32(*httpPort), int32(*httpsPort)})
	if rep != nil && *out != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if werr := os.WriteFile(*out, append(data, '\n'), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ambientcp:", err)
		os.Exit(2)
	}
	if !rep.Passed {
		os.Exit(1)
	}
}

func run(kubeconfig, version, charts, hub, pilot, ns, runID string, install, uninstall, unbound bool, timeout time.Duration, ports [2]int32) (*Report, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	c := ambientcp.Clients{}
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if c.Istio, err = istioclient.NewForConfig(cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep := &Report{Namespace: ns, Unbound: unbound}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	istiod := map[string]any{"global": map[string]any{"imagePullPolicy": "Never"}}
	if pilot != "" {
		istiod["pilot"] = map[string]any{"image": pilot}
	}
	in, err := mesh.New(mesh.Options{
		Version: version, ChartDir: charts, Hub: hub, Ambient: true, NoNodeAgents: true, NoGateway: true,
		Kubeconfig: kubeconfig, RunID: runID, Logger: log,
		Values: map[mesh.Chart]map[string]any{mesh.ChartIstiod: istiod},
	})
	if err != nil {
		return nil, err
	}
	if install {
		start := time.Now()
		if err := in.Install(ctx); err != nil {
			return nil, err
		}
		rep.InstallSeconds = time.Since(start).Seconds()
	}
	start := time.Now()
	if err := ambientcp.Setup(ctx, c, ns, runID, unbound, ports); err != nil {
		return nil, err
	}
	// The ambient profile's images carry the distroless variant (global.variant in
	// files/profile-ambient.yaml), the waypoint's proxy too.
	rep.Checks = ambientcp.Judge(ctx, c, ns, ambientcp.Expect{ProxyImage: fmt.Sprintf("%s/proxyv2:%s-distroless", hub, version), NodePorts: ports}, timeout)
	rep.JudgeSeconds = time.Since(start).Seconds()
	rep.Passed = len(rep.Checks) > 0
	for _, v := range rep.Checks {
		mark := "PASS"
		if !v.Passed {
			mark, rep.Passed = "FAIL", false
		}
		fmt.Printf("%s %-28s saw: %s\n", mark, v.Check, v.Saw)
		if !v.Passed {
			fmt.Printf("     %-28s want: %s (%s)\n", "", v.Expected, v.Source)
		}
	}
	if err := c.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return rep, fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	if uninstall {
		if err := in.Uninstall(ctx, mesh.RemoveCRDs()); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
