//go:build !noui

package ui

import (
	"embed"
	"io/fs"
)

//go:embed src
var src embed.FS

// Dist is the UI as trail serve reads it, derived from the embedded src/
// once, when it is first opened:
//
//   - manifest.json maps the name of each file at the top of src/ to
//     its path in Dist, assets/<name>.<hash><ext>, where hash is the
//     first 12 hexadecimal digits of the SHA-256 of its contents;
//   - assets/ holds those files under those names;
//   - templates/ is src/templates as it is.
//
// It is safe for concurrent use. A build with the noui tag has none, and
// trail serve serves no UI.
var Dist = newDist(mustSub(src, "src"))

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
