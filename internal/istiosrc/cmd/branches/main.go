// Command branches prints the pinned Istio branches, one a line: "<name> <pseudo-version>
// <version>", oldest first, so that scripts (scripts/istiod-image.sh) read them from
// internal/istiosrc instead of repeating the strings.
package main

import (
	"fmt"

	"meshconform/internal/istiosrc"
)

func main() {
	for _, b := range istiosrc.Branches {
		fmt.Println(b.Name, b.Pseudo, b.Version)
	}
}
