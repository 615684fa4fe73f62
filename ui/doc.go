// Package ui holds Trail's web UI (SPEC §9), built into dist/ and embedded
// in the binary: Go templates that trail serve renders, a style sheet and
// an icon. Nothing is fetched from outside. Edit src/, then run
// go generate ./ui; a test fails while dist/ is stale.
package ui
