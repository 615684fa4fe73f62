package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestServe_UIAssets: the binary embeds ui/src itself; a page links each
// asset under a name derived from its contents, and serves there the
// source's bytes, as immutable.
func TestServe_UIAssets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	p := startServe(t, []string{"TRAIL_DATA_DIR=" + t.TempDir(), "TRAIL_ADMIN_KEY="})
	fetch := func(t *testing.T, url string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	// Without a session, the UI answers with a page in the layout.
	_, page := fetch(t, p.URL+"/ui/")
	for _, name := range []string{"style.css", "icon.svg"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "ui", "src", name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		ext := filepath.Ext(name)
		want := "/ui/assets/" + name[:len(name)-len(ext)] + "." + hex.EncodeToString(sum[:6]) + ext
		if !regexp.MustCompile(`href="` + regexp.QuoteMeta(want) + `"`).Match(page) {
			t.Errorf("the page does not link %s as %s:\n%s", name, want, page)
			continue
		}
		res, body := fetch(t, p.URL+want)
		if res.StatusCode != 200 || !bytes.Equal(body, src) || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d, %s, %d bytes, want the %d of ui/src/%s", want, res.StatusCode, res.Header.Get("Cache-Control"), len(body), len(src), name)
		}
	}
}
