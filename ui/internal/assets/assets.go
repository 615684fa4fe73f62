// Package assets builds ui/dist from ui/src.
package assets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Build writes dist from src (go generate ./ui): the assets under assets/
// with a hash of their contents in their names, so that they can be
// served as immutable; the templates as they are; and manifest.json, which
// maps each asset's name to its path. No Node: the UI is Go templates and
// a style sheet.
func Build(src, dist string) error {
	files, err := Plan(src)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dist); err != nil {
		return err
	}
	for name, data := range files {
		p := filepath.Join(dist, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Plan returns the files Build writes: path under dist → contents.
func Plan(src string) (map[string][]byte, error) {
	out := map[string][]byte{}
	manifest := map[string]string{}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		ext := path.Ext(e.Name())
		hashed := "assets/" + strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
		out[hashed] = data
		manifest[e.Name()] = hashed
	}
	templates, err := os.ReadDir(filepath.Join(src, "templates"))
	if err != nil {
		return nil, err
	}
	for _, e := range templates {
		data, err := os.ReadFile(filepath.Join(src, "templates", e.Name()))
		if err != nil {
			return nil, err
		}
		out["templates/"+e.Name()] = data
	}
	names := make([]string, 0, len(manifest))
	for n := range manifest {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, n := range names {
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(manifest[n])
		fmt.Fprintf(&b, "  %s: %s", k, v)
		if i < len(names)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	out["manifest.json"] = b.Bytes()
	return out, nil
}
