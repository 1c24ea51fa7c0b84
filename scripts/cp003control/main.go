// Command cp003control starts CP-003's negative control on a live cluster (scripts/live.sh's
// broken istio run): in a namespace labelled for injection, a pod built from what Istio's
// injector makes of a grpc-agent pod (a server-side dry run), with the projected token's
// audience changed to one istiod refuses (behaviors.BadTokenControl). Its pilot-agent's CSRs
// make istiod log "Failed to authenticate client from …", which CP-003 must then report.
//
//	go run ./scripts/cp003control -kubeconfig K -namespace N -name P -image IMG [-await 2m]
//
// With -await it waits (framework/wait) until istiod logs the rejection and prints that line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"meshconform/framework/istionames"
	"meshconform/framework/ownership"
	"meshconform/suites/behaviors"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	ns := flag.String("namespace", "meshconform-cp003-control", "namespace (created, labelled for injection)")
	name := flag.String("name", "bad-token", "the control pod's name")
	image := flag.String("image", "", "pilot-agent image (sidecar.istio.io/proxyImage); empty: the chart's proxy image")
	await := flag.Duration("await", 0, "wait this long for istiod to log the rejection, and print the line")
	flag.Parse()
	if err := run(*kubeconfig, *ns, *name, *image, *await); err != nil {
		fmt.Fprintln(os.Stderr, "cp003control:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, ns, name, image string, await time.Duration) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+await)
	defer cancel()
	labels := ownership.Stamp(map[string]string{istionames.InjectionLabel: istionames.InjectionEnabled}, "cp003-control")
	_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	const sa = "cp003-control"
	_, err = kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	started := time.Now()
	p, err := behaviors.StartBadTokenControl(ctx, kube, ns, sa, name, image)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cp003control: started %s/%s\n", p.Namespace, p.Name)
	if await <= 0 {
		return nil
	}
	line, err := behaviors.AwaitCAAuthFailure(ctx, kube, istionames.IstioSystemNamespace, started.Add(-time.Second), await)
	if err != nil {
		return err
	}
	fmt.Println(line)
	return nil
}
