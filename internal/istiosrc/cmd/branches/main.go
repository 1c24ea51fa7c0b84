// Command branches prints the pinned Istio branches, one a line: "<name> <pseudo-version>
// <version>", oldest first, so that scripts (scripts/istiod-image.sh) read them from
// internal/istiosrc instead of repeating the strings. With -charts BRANCH it prepares that
// branch's charts (istiosrc.ChartDir: Istio's own base, istiod and gateway charts at the
// branch's version) and prints their directory, for ISTIO_CHART_DIR (scripts/live.sh). With
// -archives DIR it writes every branch's charts into DIR as <chart>-<version>.tgz, one
// ISTIO_CHART_DIR for runs that install one branch and upgrade to another, and prints DIR. With
// -module BRANCH -dir DIR it writes the module that builds BRANCH's pilot-discovery (go.mod and
// go.sum, istiosrc.BuildModule) into DIR.
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
	archives := flag.String("archives", "", "write every branch's charts into this directory as <chart>-<version>.tgz")
	module := flag.String("module", "", "write the build module of this branch into -dir")
	dir := flag.String("dir", "", "the directory -module writes to")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("unexpected arguments %q (flags: -charts BRANCH, -archives DIR, -module BRANCH -dir DIR)", flag.Args()))
	}
	ctx := context.Background()
	switch {
	case *charts != "":
		d, err := istiosrc.ChartDir(ctx, find(*charts))
		if err != nil {
			fail(1, err)
		}
		fmt.Println(d)
	case *archives != "":
		if err := istiosrc.ChartArchives(ctx, *archives, istiosrc.Branches...); err != nil {
			fail(1, err)
		}
		fmt.Println(*archives)
	case *module != "":
		if *dir == "" {
			fail(2, fmt.Errorf("-module %s needs -dir DIR", *module))
		}
		if err := istiosrc.WriteBuildModule(find(*module), *dir); err != nil {
			fail(1, err)
		}
	default:
		for _, b := range istiosrc.Branches {
			fmt.Println(b.Name, b.Pseudo, b.Version)
		}
	}
}

func find(name string) istiosrc.Branch {
	for _, b := range istiosrc.Branches {
		if b.Name == name {
			return b
		}
	}
	fail(2, fmt.Errorf("no pinned branch %q (go run ./internal/istiosrc/cmd/branches lists them)", name))
	panic("unreachable")
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "branches:", err)
	os.Exit(code)
}
