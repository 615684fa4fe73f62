package ui

import (
	"github.com/trail-audit/trail/ui/internal/assets"

	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestDistIsFresh: the committed dist/ is what go generate ./ui builds
// from src/ (STYLE §6: CI checks it is fresh).
func TestDistIsFresh(t *testing.T) {
	want, err := assets.Plan("src")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir("dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel("dist", p)
		got[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("dist/%s is stale or missing: run go generate ./ui", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("dist/%s is not built from src/: run go generate ./ui", name)
		}
	}
}
