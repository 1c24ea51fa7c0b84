package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"meshconform"
)

const versionsUsage = `Usage: meshconform versions [flags] [fact]

Prints what versions.yaml says, so that make and the CI workflows never repeat a version.

Facts:
  (none)               everything, readable
  matrix               GitHub Actions matrix JSON: every Istio version × every node image,
                       {"include":[{"istio":…,"kubernetes":…,"node_image":…}]}
  upgrades             GitHub Actions matrix JSON of the upgrade pairs, {"include":[{"from":…,"to":…}]}
  default-istio        the newest Istio version (make e2e's default)
  default-node-image   the default kind node image
  default-kubernetes   the Kubernetes version of the default node image
  istio                the Istio versions, one a line
  kubernetes           "version image", one a line
`

// matrixCell is one cell of the nightly matrix; the names are what the workflows read.
type matrixCell struct {
	Istio      string `json:"istio"`
	Kubernetes string `json:"kubernetes"`
	NodeImage  string `json:"node_image"`
}

type upgradeCell struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func versionsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("meshconform versions", versionsUsage, stdout, stderr)
	file := fs.String("file", "", "read this versions file instead of the versions.yaml built in")
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
	switch fact {
	case "":
		fmt.Fprintf(stdout, "istio (newest first; default %s):\n", v.DefaultIstio())
		for _, i := range v.Istio {
			fmt.Fprintf(stdout, "  %s\n", i)
		}
		fmt.Fprintf(stdout, "kubernetes node images (default %s):\n", v.DefaultNodeImage().Version)
		for _, k := range v.Kubernetes {
			fmt.Fprintf(stdout, "  %s  %s\n", k.Version, k.Image)
		}
		fmt.Fprintln(stdout, "upgrade pairs:")
		for _, u := range v.Upgrades {
			fmt.Fprintf(stdout, "  %s -> %s\n", u.From, u.To)
		}
	case "matrix":
		cells := []matrixCell{}
		for _, i := range v.Istio {
			for _, k := range v.Kubernetes {
				cells = append(cells, matrixCell{Istio: i, Kubernetes: k.Version, NodeImage: k.Image})
			}
		}
		return printJSON(stdout, stderr, map[string]any{"include": cells})
	case "upgrades":
		cells := []upgradeCell{}
		for _, u := range v.Upgrades {
			cells = append(cells, upgradeCell(u))
		}
		return printJSON(stdout, stderr, map[string]any{"include": cells})
	case "default-istio":
		fmt.Fprintln(stdout, v.DefaultIstio())
	case "default-node-image":
		fmt.Fprintln(stdout, v.DefaultNodeImage().Image)
	case "default-kubernetes":
		fmt.Fprintln(stdout, v.DefaultNodeImage().Version)
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
