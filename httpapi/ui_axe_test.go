package httpapi_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeVersion is the axe-core that checks the pages: it comes from npm
// when the tests run (it is not committed).
const axeVersion = "4.14.1"

var axeOnce struct {
	sync.Once
	src string
	err error
}

// axeSource installs axe-core from npm once per test binary and returns
// its script. Without node and npm the test skips, unless
// TRAIL_REQUIRE_BROWSER=1 (as in CI), where it fails.
func axeSource(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("TRAIL_REQUIRE_BROWSER") == "1" {
			t.Fatal("TRAIL_REQUIRE_BROWSER=1 but no npm to install axe-core with")
		}
		t.Skip("no npm: axe-core cannot be installed")
	}
	axeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trail-axe-")
		if err != nil {
			axeOnce.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir, "axe-core@"+axeVersion).CombinedOutput()
		if err != nil {
			axeOnce.err = &npmError{err: err, out: string(out)}
			return
		}
		data, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
		axeOnce.src, axeOnce.err = string(data), err
		os.RemoveAll(dir)
	})
	if axeOnce.err != nil {
		t.Fatalf("install axe-core %s: %v", axeVersion, axeOnce.err)
	}
	return axeOnce.src
}

type npmError struct {
	err error
	out string
}

func (e *npmError) Error() string { return e.err.Error() + "\n" + e.out }

// axeViolation is one rule that failed on a page, with where.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkAxe runs axe-core on the page the browser shows and fails the test
// on every violation, of every impact. The page's CSP allows no script
// but its own; axe is added through the DevTools protocol, which the CSP
// does not govern (and the page's own script, if any, runs as it would).
func checkAxe(t *testing.T, ctx context.Context, src, page string) {
	t.Helper()
	var raw string
	run(t, ctx, chromedp.Evaluate[chromedp.Void](src),
		into(&raw, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations'], rules: {'target-size': {enabled: true}}}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise)))
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("%s: axe's answer: %v", page, err)
	}
	for _, v := range vs {
		var where []string
		for _, n := range v.Nodes {
			b, _ := json.Marshal(n.Target)
			where = append(where, string(b)+": "+strings.ReplaceAll(n.Summary, "\n", " "))
		}
		t.Errorf("%s: axe %s (%s): %s\n\t%s", page, v.ID, v.Impact, v.Help, strings.Join(where, "\n\t"))
	}
}

// testAxe: axe-core finds no violation on any page of the UI, at a
// phone's, a tablet's and a desktop's width, light and dark.
func (b *uiBrowser) testAxe(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	src := axeSource(t)
	defer run(t, ctx, chromedp.EmulateViewport(1280, 1000))
	event := ts.allIDs(t, org)[0]
	changed := ts.allIDs(t, org, "actions", "escalation_path.updated")
	pages := []string{"/ui/?range=all", "/ui/?range=7d&actions=user.*", "/ui/?range=all&q=no-such-word",
		"/ui/?from=nonsense", "/ui/events/" + event, "/ui/settings", "/ui/streams/new", "/ui/streams/new?type=Splunk", "/ui/exports", "/ui/top?range=all",
		"/ui/no-such-page"}
	if len(changed) > 0 {
		pages = append(pages, "/ui/events/"+changed[0])
	}
	if b.stream != "" {
		pages = append(pages, "/ui/streams/"+b.stream)
	}
	if b.export != "" {
		pages = append(pages, b.export)
	}
	dark := func(on string) {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: on}}}); err != nil {
			t.Fatal(err)
		}
	}
	defer dark("light")
	for _, scheme := range []string{"light", "dark"} {
		dark(scheme)
		for _, size := range [][2]int64{{390, 844}, {768, 1024}, {1440, 900}} {
			if scheme == "dark" && size[0] != 1440 {
				continue // colours do not change with the width
			}
			opts := []chromedp.EmulateViewportOption{}
			if size[0] < 500 {
				opts = append(opts, chromedp.EmulateMobile)
			}
			for _, path := range pages {
				run(t, ctx, chromedp.EmulateViewport(size[0], size[1], opts...), chromedp.Navigate(ts.URL()+path), chromedp.WaitVisible(chromedp.CSS(`main`)))
				checkAxe(t, ctx, src, path+" at "+strconv.FormatInt(size[0], 10)+" px, "+scheme)
			}
		}
	}
}
