package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// countingFS counts the files opened in it.
type countingFS struct {
	fs.FS
	opens atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	c.opens.Add(1)
	return c.FS.Open(name)
}

// TestNewDist: the hashed name changes with the contents and only with
// them; the sources are read once, on first use, not when built.
func TestNewDist(t *testing.T) {
	t.Parallel()
	src := func(css string) *countingFS {
		return &countingFS{FS: fstest.MapFS{
			"style.css":             {Data: []byte(css)},
			"templates/layout.html": {Data: []byte("<html>")},
		}}
	}
	manifest := func(t *testing.T, d *dist) map[string]string {
		t.Helper()
		var m map[string]string
		data, err := fs.ReadFile(d, "manifest.json")
		if err != nil || json.Unmarshal(data, &m) != nil {
			t.Fatalf("manifest.json: %s %v", data, err)
		}
		return m
	}
	a, b, a2 := src("a{}"), src("b{}"), src("a{}")
	da, db, da2 := newDist(a), newDist(b), newDist(a2)
	if n := a.opens.Load(); n != 0 {
		t.Fatalf("newDist opened %d files", n)
	}
	ma, mb, ma2 := manifest(t, da), manifest(t, db), manifest(t, da2)
	sum := sha256.Sum256([]byte("a{}"))
	if want := "assets/style." + hex.EncodeToString(sum[:6]) + ".css"; ma["style.css"] != want {
		t.Fatalf("style.css is %q, want %q", ma["style.css"], want)
	}
	if ma["style.css"] == mb["style.css"] || ma["style.css"] != ma2["style.css"] {
		t.Fatalf("names %q, %q, %q: want them to differ with the contents only", ma["style.css"], mb["style.css"], ma2["style.css"])
	}
	opened := a.opens.Load()
	if got, err := fs.ReadFile(da, ma["style.css"]); err != nil || string(got) != "a{}" {
		t.Fatalf("%s: %q %v", ma["style.css"], got, err)
	}
	if _, err := fs.ReadFile(da, "style.css"); err == nil {
		t.Error("the asset is also served under its plain name")
	}
	if n := a.opens.Load(); n != opened {
		t.Fatalf("the sources were read again (%d opens, then %d)", opened, n)
	}
}
