//go:build noui

package ui

import "io/fs"

// Dist is nil in a build with the noui tag: trail serve serves no UI.
var Dist fs.FS
