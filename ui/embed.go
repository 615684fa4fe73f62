//go:build !noui

package ui

import (
	"embed"
	"io/fs"
)

//go:generate go run ./internal/build

//go:embed all:dist
var dist embed.FS

// Dist is the built UI (dist/): assets, templates and manifest.json. A
// build with the noui tag has none, and trail serve serves no UI.
var Dist = mustSub(dist, "dist")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
