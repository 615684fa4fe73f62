//go:build !noui

package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// TestDist: every file at the top of src/ is in Dist under assets/, named
// by the SHA-256 of its contents, manifest.json names it, and the
// templates are src/templates as they are; there is nothing else.
func TestDist(t *testing.T) {
	t.Parallel()
	want := map[string][]byte{}
	wantManifest := map[string]string{}
	entries, err := os.ReadDir("src")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("src", e.Name()))
		if e.IsDir() || err != nil {
			continue
		}
		sum := sha256.Sum256(data)
		ext := filepath.Ext(e.Name())
		p := "assets/" + strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:6]) + ext
		want[p], wantManifest[e.Name()] = data, p
	}
	templates, err := filepath.Glob("src/templates/*.html")
	if err != nil || len(templates) == 0 {
		t.Fatalf("templates: %v %v", templates, err)
	}
	for _, p := range templates {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want["templates/"+filepath.Base(p)] = data
	}
	var manifest map[string]string
	data, err := fs.ReadFile(Dist, "manifest.json")
	if err != nil || json.Unmarshal(data, &manifest) != nil {
		t.Fatalf("manifest.json: %s %v", data, err)
	}
	if len(manifest) != len(wantManifest) || manifest["style.css"] != wantManifest["style.css"] || manifest["icon.svg"] != wantManifest["icon.svg"] {
		t.Fatalf("manifest %v, want %v", manifest, wantManifest)
	}
	got := map[string][]byte{}
	err = fs.WalkDir(Dist, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "manifest.json" {
			return err
		}
		got[p], err = fs.ReadFile(Dist, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range want {
		if !bytes.Equal(got[p], data) {
			t.Errorf("%s: not the source's contents (%d bytes, want %d)", p, len(got[p]), len(data))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is not derived from src/", p)
		}
	}
	if err := fstest.TestFS(Dist, append([]string{"manifest.json"}, keys(want)...)...); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
