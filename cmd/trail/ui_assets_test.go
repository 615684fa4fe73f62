package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestPortal_CLIZone: trail portal names the person's zone, locale and
// the page the link opens on, checked as the API checks them.
func TestPortal_CLIZone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	p := startServe(t, []string{"TRAIL_DATA_DIR=" + dir, "TRAIL_ADMIN_KEY=" + testAdminKey})
	if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": "org_cli_zone", "name": "CLI zone"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	env := map[string]string{"TRAIL_DATA_DIR": dir}
	for flag, value := range map[string]string{"--time-zone": "Mars/Olympus", "--locale": "english please", "--return-to": "https://evil.example/ui/"} {
		if _, _, err := runMain(t, env, "portal", "--org", "org_cli_zone", "--url", p.URL, flag, value); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s %q: %v", flag, value, err)
		}
	}
	out, stderr, err := runMain(t, env, "portal", "--org", "org_cli_zone", "--url", p.URL, "--time-zone", "Asia/Kolkata", "--locale", "en-IN",
		"--return-to", "/ui/?range=today")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	for _, u := range []string{strings.TrimSpace(out), p.URL + "/ui/?range=today"} {
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if u == p.URL+"/ui/?range=today" {
			if !strings.Contains(string(b), "Times in Asia/Kolkata") {
				t.Fatalf("the page is not in the link's zone:\n%s", b)
			}
		} else if !strings.Contains(string(b), `content="0;url=/ui/?range=today"`) {
			t.Fatalf("the link does not open on --return-to:\n%s", b)
		}
	}
}
