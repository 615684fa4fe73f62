// Command build writes ui/dist from ui/src: go generate ./ui.
package main

import (
	"fmt"
	"os"

	"github.com/trail-audit/trail/ui/internal/assets"
)

func main() {
	if err := assets.Build("src", "dist"); err != nil {
		fmt.Fprintln(os.Stderr, "build ui:", err)
		os.Exit(1)
	}
}
