package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"meshconform"
	"meshconform/framework/mesh"
)

const versionsUsage = `Usage: meshconform versions [flags] [fact]

Prints what versions.yaml says, so that make and the CI workflows never repeat a version.

Facts:
  (none)               everything, readable
  matrix               GitHub Actions matrix JSON: every Istio version × every node image inside
                       that Istio minor's supported Kubernetes range (istioKubernetes) × each
                       data-plane mode (sidecar, ambient),
                       {"include":[{"istio":…,"kubernetes":…,"node_image":…,"mode":…}]}; the
                       pairs outside the range are named on stderr
  upgrades             GitHub Actions matrix JSON of the upgrade pairs, each on the newest node
                       image both ends support,
                       {"include":[{"from":…,"to":…,"kubernetes":…,"node_image":…}]}
  default-istio        the newest Istio version (make e2e's default)
  default-node-image   make e2e's default kind node image: the newest inside the default
                       Istio's Kubernetes range
  default-kubernetes   the Kubernetes version of the default node image
  kind-node-image      the pinned kind's own default node image (versions.yaml's first)
  istio                the Istio versions, one a line
  kubernetes           "version image", one a line
  check                read the chart source make e2e would use (ISTIO_CHART_REPO, default
                       ` + mesh.DefaultChartRepo + `; an oci:// repository's tags; or
                       ISTIO_CHART_DIR) and report every Istio release newer than versions.yaml's
                       newest, with the lines to paste into versions.yaml, and every listed
                       release past its minor's end of life (istioEndOfLife). Exit 0: nothing
                       new, nothing past end of life; 1: something is; 2: the settings or the
                       source could not be read (the message names the source and the fix)
`

// matrixCell is one cell of the nightly matrix; the names are what the workflows read.
type matrixCell struct {
	Istio      string `json:"istio"`
	Kubernetes string `json:"kubernetes"`
	NodeImage  string `json:"node_image"`
	// Mode is the cell's DATAPLANE_MODE: each supported pair runs once per mode, the matrix's
	// columns being Istio × Kubernetes × mode (report.Merge).
	Mode string `json:"mode"`
}

// matrixModes are the data-plane modes every nightly pair runs in.
var matrixModes = []string{mesh.ModeSidecar, mesh.ModeAmbient}

type upgradeCell struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Kubernetes string `json:"kubernetes"`
	NodeImage  string `json:"node_image"`
}

// rangeText is "1.32-1.36", or "none" for an Istio release without a range.
func rangeText(v meshconform.Versions, istio string) string {
	r, ok := v.KubernetesRangeOf(istio)
	if !ok {
		return "none"
	}
	return r.Min + "-" + r.Max
}

func versionsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform versions", versionsUsage, stdout, stderr)
	file := fs.String("file", "", "read this versions file instead of the versions.yaml built in")
	var co checkOptions
	fs.StringVar(&co.on, "on", "", "check: judge end of life on this day (YYYY-MM-DD) instead of today")
	fs.DurationVar(&co.timeout, "timeout", 2*time.Minute, "check: bound of reading the chart source")
	// Named as framework/settings names them, so settings.Load reads them as it reads make
	// e2e's flags: a flag wins over the environment variable.
	fs.String("istio-chart-repo", "", "check: the chart repository to read instead of $ISTIO_CHART_REPO")
	fs.String("istio-chart-dir", "", "check: the chart directory to read instead of $ISTIO_CHART_DIR")
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	rest, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 1 {
		return usageError(fs, stderr, "takes at most one fact, got %d", len(rest))
	}
	v := meshconform.SupportedVersions()
	if *file != "" {
		data, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "meshconform versions: %v\n", err)
			return exitUsage
		}
		if v, err = meshconform.ParseVersions(data); err != nil {
			fmt.Fprintf(stderr, "meshconform versions: %s: %v\n", *file, err)
			return exitUsage
		}
	}
	fact := ""
	if len(rest) == 1 {
		fact = rest[0]
	}
	if fact != "check" {
		var checkOnly []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "file" {
				checkOnly = append(checkOnly, "-"+f.Name)
			}
		})
		if len(checkOnly) > 0 {
			return usageError(fs, stderr, "%s: only for versions check", checkOnly[0])
		}
	}
	switch fact {
	case "check":
		return versionsCheck(v, fs, co, stdout, stderr)
	case "":
		fmt.Fprintf(stdout, "istio (newest first; default %s) and the Kubernetes range each supports:\n", v.DefaultIstio())
		for _, i := range v.Istio {
			eol := ""
			if date, _, ok := v.EndOfLife(i); ok {
				eol = "  end of life " + date
			}
			fmt.Fprintf(stdout, "  %s  kubernetes %s%s\n", i, rangeText(v, i), eol)
		}
		def := v.DefaultNodeImageFor(v.DefaultIstio())
		fmt.Fprintf(stdout, "kubernetes node images (default %s, the newest istio %s supports):\n", def.Version, v.DefaultIstio())
		for _, k := range v.Kubernetes {
			fmt.Fprintf(stdout, "  %s  %s\n", k.Version, k.Image)
		}
		if k := v.DefaultNodeImage(); !v.Supports(v.DefaultIstio(), k.Version) {
			fmt.Fprintf(stdout, "note: kind's own default node image (Kubernetes %s) is outside istio %s's range %s\n", k.Version, v.DefaultIstio(), rangeText(v, v.DefaultIstio()))
		}
		fmt.Fprintln(stdout, "upgrade pairs:")
		for _, u := range v.Upgrades {
			on := "no common node image"
			if n := v.NodeImagesFor(u.From, u.To); len(n) > 0 {
				on = "on kubernetes " + n[0].Version
			}
			fmt.Fprintf(stdout, "  %s -> %s  %s\n", u.From, u.To, on)
		}
	case "matrix":
		// Only the pairs Istio supports: a cell outside an Istio minor's Kubernetes range
		// fails for reasons that are no finding about the mesh.
		cells := []matrixCell{}
		for _, i := range v.Istio {
			for _, k := range v.Kubernetes {
				if !v.Supports(i, k.Version) {
					fmt.Fprintf(stderr, "skipped: istio %s on kubernetes %s (istio %s supports kubernetes %s)\n", i, k.Version, i, rangeText(v, i))
					continue
				}
				for _, m := range matrixModes {
					cells = append(cells, matrixCell{Istio: i, Kubernetes: k.Version, NodeImage: k.Image, Mode: m})
				}
			}
		}
		return printJSON(stdout, stderr, map[string]any{"include": cells})
	case "upgrades":
		cells := []upgradeCell{}
		for _, u := range v.Upgrades {
			n := v.NodeImagesFor(u.From, u.To)
			if len(n) == 0 { // ParseVersions rules this out; kept for a hand-built Versions
				fmt.Fprintf(stderr, "meshconform versions: upgrade %s -> %s: no node image lies in both Kubernetes ranges\n", u.From, u.To)
				return exitUsage
			}
			cells = append(cells, upgradeCell{From: u.From, To: u.To, Kubernetes: n[0].Version, NodeImage: n[0].Image})
		}
		return printJSON(stdout, stderr, map[string]any{"include": cells})
	case "default-istio":
		fmt.Fprintln(stdout, v.DefaultIstio())
	case "default-node-image": // make e2e's: the newest the default Istio supports
		fmt.Fprintln(stdout, v.DefaultNodeImageFor(v.DefaultIstio()).Image)
	case "default-kubernetes":
		fmt.Fprintln(stdout, v.DefaultNodeImageFor(v.DefaultIstio()).Version)
	case "kind-node-image": // the pinned kind's own default
		fmt.Fprintln(stdout, v.DefaultNodeImage().Image)
	case "istio":
		for _, i := range v.Istio {
			fmt.Fprintln(stdout, i)
		}
	case "kubernetes":
		for _, k := range v.Kubernetes {
			fmt.Fprintf(stdout, "%s %s\n", k.Version, k.Image)
		}
	default:
		return usageError(fs, stderr, "unknown fact %q", fact)
	}
	return exitOK
}

// printJSON prints compact JSON on one line: GitHub's step outputs are name=value lines.
func printJSON(stdout, stderr io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(stderr, "meshconform versions: %v\n", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, string(b))
	return exitOK
}
