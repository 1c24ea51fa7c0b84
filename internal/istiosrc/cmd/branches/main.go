// Command branches prints the pinned Istio branches, one a line: "<name> <pseudo-version>
// <version>", oldest first, so that scripts (scripts/istiod-image.sh) read them from
// internal/istiosrc instead of repeating the strings. With -charts BRANCH it prepares that
// branch's charts (istiosrc.ChartDir: Istio's own base, istiod and gateway charts at the
// branch's version) and prints their directory, for ISTIO_CHART_DIR (scripts/live.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"meshconform/internal/istiosrc"
)

func main() {
	charts := flag.String("charts", "", "prepare the charts of this branch (e.g. release-1.31) and print their directory")
	flag.Parse()
	if *charts == "" {
		for _, b := range istiosrc.Branches {
			fmt.Println(b.Name, b.Pseudo, b.Version)
		}
		return
	}
	for _, b := range istiosrc.Branches {
		if b.Name != *charts {
			continue
		}
		dir, err := istiosrc.ChartDir(context.Background(), b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "branches:", err)
			os.Exit(1)
		}
		fmt.Println(dir)
		return
	}
	fmt.Fprintf(os.Stderr, "branches: no pinned branch %q (go run ./internal/istiosrc/cmd/branches lists them)\n", *charts)
	os.Exit(2)
}
