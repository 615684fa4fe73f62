// Package ui holds Trail's web UI (SPEC §9): the Go templates that trail
// serve renders, a style sheet and an icon, in src/, embedded in the
// binary as they are. Nothing is fetched from outside and nothing is
// generated ahead: the first time the UI is read, [Dist] derives from
// src/ what is served, the assets named by a hash of their contents (so
// that they can be cached as immutable) and manifest.json, which maps
// each asset's name to that path. Edit src/ and rebuild.
//
//	srv := &httpapi.Server{Portal: portal, UI: ui.Dist} // nil with -tags noui
package ui
