package httpapi_test

import (
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/tlog"
)

// newBrowser starts headless Chromium (Debian's chromium) for a test. It
// skips where there is none, unless TRAIL_REQUIRE_BROWSER=1.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("TRAIL_REQUIRE_BROWSER") == "1" {
			t.Fatal("TRAIL_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)")
		}
		t.Skip("no chromium on PATH; set TRAIL_REQUIRE_BROWSER=1 to fail instead")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 15*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	// A page that lacks what an action waits for fails the test in a
	// minute, not at the test binary's timeout.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// portalLink asks the API for a link.
func (ts *testServer) portalLink(t *testing.T, org, role, intent string) string {
	t.Helper()
	res := ts.do(t, "POST", "/portal/generate_link", adminSecret, map[string]any{"organization": org, "intent": intent, "role": role,
		"user": map[string]any{"id": "user_" + role, "email": role + "@acme.example", "name": "Ada " + strings.ToUpper(role[:1]) + role[1:]}})
	if res.Status != http.StatusCreated {
		t.Fatalf("generate_link: %d %s", res.Status, res.Body)
	}
	return res.JSON(t)["link"].(string)
}

// uiEvents loads a test organization with varied events: 130 over the
// last three days and 10 forty days ago.
func uiEvents(t *testing.T, ts *testServer, org string) {
	t.Helper()
	now := time.Now().UTC()
	var evs []map[string]any
	actions := []string{"user.role_granted", "user.role_revoked", "escalation_path.updated", "log_stream.created", "api_key.created"}
	for i := range 140 {
		at := now.Add(-time.Duration(140-i) * 30 * time.Minute)
		if i < 10 {
			at = now.Add(-40*24*time.Hour + time.Duration(i)*time.Minute)
		}
		evs = append(evs, map[string]any{
			"action":      actions[i%len(actions)],
			"occurred_at": at.Format(time.RFC3339Nano),
			"actor":       map[string]any{"id": fmt.Sprintf("user_%d", i%4), "type": "user", "name": []string{"Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"}[i%4]},
			"targets": []map[string]any{{"id": fmt.Sprintf("team_%d", i%3), "type": "team", "name": "Team " + fmt.Sprint(i%3)},
				{"id": fmt.Sprintf("user_%d", 10+i%5), "type": "user"}},
			"context":  map[string]any{"location": fmt.Sprintf("203.0.113.%d", i%9), "user_agent": "Mozilla/5.0 ui-test"},
			"metadata": map[string]any{"ticket": fmt.Sprintf("TCK-%d", i%7), "reason": "quarterly review"},
		})
		if actions[i%len(actions)] == "escalation_path.updated" {
			evs[len(evs)-1]["metadata"].(map[string]any)["before_priority"] = "P2"
			evs[len(evs)-1]["metadata"].(map[string]any)["after_priority"] = "P1"
		}
	}
	for i := 0; i < len(evs); i += 50 {
		res := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": evs[i:min(i+50, len(evs))]})
		if res.Status != 200 && res.Status != 201 {
			t.Fatalf("batch: %d %s", res.Status, res.Body)
		}
	}
}

// apiIDs lists the ids of the first page of the API's answer to a query.
func (ts *testServer) apiIDs(t *testing.T, org string, q url.Values) []string {
	t.Helper()
	q.Set("organization_id", org)
	q.Set("limit", "50")
	res := ts.do(t, "GET", "/audit_logs/events?"+q.Encode(), adminSecret, nil)
	if res.Status != 200 {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var ids []string
	for _, e := range res.JSON(t)["data"].([]any) {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	return ids
}

// rowIDs returns the ids of the events the page lists, in order.
func rowIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var ids []string
	run(t, ctx, into(&ids, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('tr[data-event-id]')).map(e => e.dataset.eventId)`)))
	return ids
}

// screenshot saves what the screen shows as NAME.png in the directory
// TRAIL_SCREENSHOTS names, when it is set: docs/screenshots are made so.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("TRAIL_SCREENSHOTS")
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkLabels fails when a visible form control has no accessible name
// (a label, aria-label or aria-labelledby) or an image has no text.
func checkLabels(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	var unlabelled []string
	run(t, ctx, into(&unlabelled, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a, svg[role=img]')).filter(e => {
		if (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')) return false;
		if (e.tagName === 'A' || e.tagName === 'BUTTON') return e.textContent.trim() === '';
		if (e.labels && e.labels.length > 0) return false;
		return true;
	}).map(e => e.outerHTML.slice(0, 120))`)))
	if len(unlabelled) > 0 {
		t.Errorf("%s: controls without an accessible name: %v", page, unlabelled)
	}
	var lang chromedp.AttributeResult
	run(t, ctx, into(&lang, chromedp.AttributeValue(chromedp.CSS("html"), "lang")))
	if lang.Value == "" {
		t.Errorf("%s: no lang on <html>", page)
	}
}

// openFilters unfolds the audit log's filters.
var openFilters = chromedp.Evaluate[chromedp.Void](`document.querySelector('details.more').open = true`)

// follow runs an action that loads a new page (a click on a link, a
// form submitted) and waits until the new page has loaded: a page marker
// set before must be gone.
func follow(t *testing.T, ctx context.Context, action chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`window.trailOldPage = true`), action)
	testwait.ForNil(t, 30*time.Second, "a new page to load", func() error {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.trailOldPage === undefined && document.readyState === 'complete'`))
		if err == nil && !done {
			err = errors.New("the old page is still there")
		}
		return err
	})
}

// waitFile waits for one download matching pattern in dir.
func waitFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	var file string
	testwait.For(t, 30*time.Second, "a download "+pattern, func() bool {
		if matches, _ := filepath.Glob(filepath.Join(dir, pattern)); len(matches) == 1 {
			file = matches[0]
		}
		return file != ""
	})
	return file
}

// into runs an action that returns a value and keeps the value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		*dst = v
		return chromedp.Void{}, err
	}
}

// textInto keeps the text of the first node of sel in dst.
func textInto(dst *string, sel chromedp.CSS) chromedp.Action[chromedp.Void] {
	return into(dst, chromedp.Text(sel))
}

func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	var loc string
	run(t, ctx, into(&loc, chromedp.Location()))
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUI_Browser drives the web UI in headless Chromium on both drivers:
// a link opens a session, each filter changes the rows and the URL,
// paging holds while events arrive, the detail view verifies, an export
// downloads, a stream is created and tested, and used or expired links
// and members are refused.
func TestUI_Browser(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		ctx := newBrowser(t)
		org := "org_acme"
		if err := ts.Orgs.CreateOrganization(context.Background(), &trail.Organization{ID: org, Name: "Acme Corp"}); err != nil {
			t.Fatal(err)
		}
		uiEvents(t, ts, org)
		b := &uiBrowser{ts: ts, ctx: ctx, org: org}

		t.Run("link", b.testLink)

		b.testFilters(t)
		t.Run("filter dates", b.testFilterDates)

		t.Run("paging while events arrive", b.testPagingWhileEventsArrive)

		t.Run("detail", b.testDetail)

		t.Run("export", b.testExport)

		t.Run("stream", b.testStream)

		t.Run("keyboard", b.testKeyboard)

		t.Run("layout", b.testLayout)

		t.Run("what changed", b.testWhatChanged)

		t.Run("dark mode", b.testDarkMode)

		t.Run("axe", b.testAxe)

		t.Run("keys", b.testKeys)

		t.Run("zoom and undo", b.testZoomUndo)

		t.Run("live", b.testLive)

		t.Run("suggest and facets", b.testSuggestAndFacets)

		t.Run("browser zone", b.testBrowserZone)

		t.Run("member", b.testMember)

		t.Run("used and expired links", b.testUsedAndExpiredLinks)
	})
}

// uiBrowser is what TestUI_Browser's subtests share: a server of one
// organization's events and a browser.
type uiBrowser struct {
	ts  *testServer
	ctx context.Context // the browser's
	org string
	// Pages that earlier subtests made, for later ones to check.
	stream, export string // a stream's id, an export's path
}

// testFilters: each filter, typed into its field (or chosen), the URL
// holds it, and the rows are the API's for the same filter.
func (b *uiBrowser) testFilters(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	filters := []struct {
		name, field, value, param string
		api                       url.Values
	}{
		{"event type", "#actions", "user.role_granted", "actions", url.Values{"actions": {"user.role_granted"}}},
		{"event type prefix", "#actions", "user.*", "actions", url.Values{"actions": {"user.*"}}},
		{"actor", "#actor", "user_2", "actor", url.Values{"actor_ids": {"user_2"}}},
		{"actor name", "#actor", "edsger dijkstra", "actor", url.Values{"actor_ids": {"user_2"}}},
		{"target type", "#target-type", "team", "targets", url.Values{"targets": {"team"}}},
		{"target id", "#target", "team_1", "target", url.Values{"target_ids": {"team_1"}}},
		{"target name", "#target", "Team 1", "target", url.Values{"target_ids": {"team_1"}}},
		{"free text", "#q", "TCK-3", "q", url.Values{"q": {"TCK-3"}}},
		{"nothing", "#q", "no-such-word", "q", url.Values{"q": {"no-such-word"}}},
	}
	for _, f := range filters {
		t.Run("filter "+f.name, func(t *testing.T) {
			run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#q`)), openFilters,
				chromedp.SetValue(chromedp.CSS(f.field), f.value))
			follow(t, ctx, chromedp.Submit(chromedp.CSS(f.field)))
			loc := location(t, ctx)
			if loc.Query().Get(f.param) != f.value || loc.Query().Get("range") != "all" {
				t.Fatalf("URL %s does not hold %s=%s", loc, f.param, f.value)
			}
			got, want := rowIDs(t, ctx), ts.apiIDs(t, org, f.api)
			if !slices.Equal(got, want) {
				t.Fatalf("rows %v\nwant %v", got, want)
			}
			if f.name == "nothing" {
				var empty string
				run(t, ctx, textInto(&empty, chromedp.CSS(`.empty`)))
				if len(got) != 0 || !strings.Contains(empty, "No events match") {
					t.Fatalf("empty state: %d rows, %q", len(got), empty)
				}
				return
			}
			if len(want) == 0 || slices.Equal(want, ts.apiIDs(t, org, url.Values{})) {
				t.Fatalf("the filter should select some events, not all: %d", len(want))
			}
			// The bookmarked URL shows the same view in a new visit.
			run(t, ctx, chromedp.Navigate(loc.String()), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
			if again := rowIDs(t, ctx); !slices.Equal(again, got) {
				t.Fatalf("the URL shows other rows: %v", again)
			}
		})
	}
}

func (b *uiBrowser) testLink(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	link := ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs)
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`table.events`)))
	if loc := location(t, ctx); loc.Path != "/ui/" {
		t.Fatalf("the link led to %s", loc)
	}
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	// The session's, and the page's script's: the browser's time zone.
	cookies := slices.DeleteFunc(res.Cookies, func(c *network.Cookie) bool { return c.Name == httpapi.ZoneCookie && c.Value == "UTC" })
	if len(cookies) != 1 || cookies[0].Name != "trail_session" || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict ||
		cookies[0].Path != "/" {
		t.Fatalf("cookies = %+v", cookies)
	}
	if ttl := time.Until(time.Unix(int64(cookies[0].Expires), 0)); ttl < 11*time.Hour || ttl > 12*time.Hour+time.Minute {
		t.Fatalf("the session cookie lasts %v", ttl)
	}
	var who string
	run(t, ctx, textInto(&who, chromedp.CSS(`header .who`)))
	if !strings.Contains(who, "Ada Owner") || !strings.Contains(who, "owner") {
		t.Fatalf("header says %q", who)
	}
	// Newest first, the same first page as the API's.
	if got, want := rowIDs(t, ctx), ts.apiIDs(t, org, url.Values{"range_start": {time.Now().Add(-30 * 24 * time.Hour).Format(time.RFC3339)}}); !slices.Equal(got, want) {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
	// Opening the session is in the organization's own log.
	opened := ts.apiIDs(t, org, url.Values{"actions": {trail.ActionPortalSessionCreated}, "actor_ids": {"user_owner"}})
	if len(opened) != 1 {
		t.Fatalf("%d portal_session.created events", len(opened))
	}
	checkLabels(t, ctx, "audit log")
	screenshot(t, ctx, "audit-log")
}

func (b *uiBrowser) testFilterDates(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	// The default range (30 days) leaves out the events of forty
	// days ago; the preset "All" shows them.
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?actions=user.role_granted"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	recent := rowIDs(t, ctx)
	follow(t, ctx, chromedp.Click(chromedp.Search(`//ul[@class="presets"]//a[text()="All"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`a[aria-current="true"]`)))
	if loc := location(t, ctx); loc.Query().Get("range") != "all" || loc.Query().Get("actions") != "user.role_granted" {
		t.Fatalf("URL after the preset: %s", loc)
	}
	all := rowIDs(t, ctx)
	if len(all) != len(recent)+2 || !slices.Equal(all[:len(recent)], recent) {
		t.Fatalf("all time: %d rows, last 30 days: %d", len(all), len(recent))
	}
	// A custom range: the last 24 hours to 12 hours ago.
	from, to := time.Now().UTC().Add(-24*time.Hour).Truncate(time.Minute), time.Now().UTC().Add(-12*time.Hour).Truncate(time.Minute)
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`#q`)), openFilters, chromedp.WaitVisible(chromedp.CSS(`#from`)),
		chromedp.SetValue(chromedp.CSS(`#from`), from.Format("2006-01-02T15:04")),
		chromedp.SetValue(chromedp.CSS(`#to`), to.Format("2006-01-02T15:04")),
	)
	follow(t, ctx, chromedp.Submit(chromedp.CSS(`#from`)))
	loc := location(t, ctx)
	if loc.Query().Get("from") != from.Format("2006-01-02T15:04") || loc.Query().Get("to") != to.Format("2006-01-02T15:04") {
		t.Fatalf("URL after a custom range: %s", loc)
	}
	want := ts.apiIDs(t, org, url.Values{"range_start": {from.Format(time.RFC3339)}, "range_end": {to.Format(time.RFC3339)}})
	if got := rowIDs(t, ctx); !slices.Equal(got, want) || len(want) < 20 {
		t.Fatalf("rows %v\nwant %v", got, want)
	}
	var total string
	run(t, ctx, textInto(&total, chromedp.CSS(`#hist-total`)))
	if !strings.HasPrefix(total, fmt.Sprintf("%d events", len(want))) {
		t.Fatalf("histogram total %q, want %d events", total, len(want))
	}
	// A bar of the histogram zooms into its period.
	var bars int
	run(t, ctx, into(&bars, chromedp.Evaluate[int](`document.querySelectorAll('.histogram svg a').length`)))
	if bars < 10 {
		t.Fatalf("%d bars", bars)
	}
	screenshot(t, ctx, "audit-log-filtered")
}

func (b *uiBrowser) testPagingWhileEventsArrive(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	first := rowIDs(t, ctx)
	// New events arrive while the first page is read.
	uiEvents(t, ts, org)
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`a[rel="prev"]`)))
	second := rowIDs(t, ctx)
	all := ts.allIDs(t, org)
	i := slices.Index(all, first[0])
	if i < 0 || !slices.Equal(all[i:i+50], first) || !slices.Equal(all[i+50:i+100], second) {
		t.Fatalf("pages are not consecutive: first %v…, second %v…", first[:3], second[:3])
	}
	// Back to newer events: the first page as it was, not the
	// new events.
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="prev"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`a[rel="next"]`)))
	if back := rowIDs(t, ctx); !slices.Equal(back, first) {
		t.Fatalf("the newer page is not the first one: %v", back[:3])
	}
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[text()="Newest"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	if newest := rowIDs(t, ctx); newest[0] != all[0] {
		t.Fatalf("newest page starts with %s, want %s", newest[0], all[0])
	}
}

func (b *uiBrowser) testDetail(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?q=TCK-5&range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	ids := rowIDs(t, ctx)
	id := ids[len(ids)-1]
	follow(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-event-id="`+id+`"] a`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#raw-json`)))
	var state, raw, body string
	run(t, ctx, textInto(&state, chromedp.CSS(`#verify-state`)), textInto(&raw, chromedp.CSS(`#raw-json`)),
		textInto(&body, chromedp.CSS(`main`)))
	if state != "verified" {
		t.Fatalf("verification %q: %s", state, body)
	}
	for _, want := range []string{id, `"ticket": "TCK-5"`, "Mozilla/5.0 ui-test", "quarterly review", "Team ", "203.0.113."} {
		if !strings.Contains(raw+body, want) {
			t.Errorf("the detail lacks %q", want)
		}
	}
	checkLabels(t, ctx, "event")
	screenshot(t, ctx, "event")
	// Back keeps the filters.
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[contains(text(), "Back to the audit log")]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	if loc := location(t, ctx); loc.Query().Get("q") != "TCK-5" {
		t.Fatalf("back to %s", loc)
	}
	b.testInspectInPlace(t)
}

// testInspectInPlace: a row opens as a whole; its page leads to the
// newer and older events of the same list, and Back to the same page of
// the list at the same row.
func (b *uiBrowser) testInspectInPlace(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
	page2 := location(t, ctx)
	ids := rowIDs(t, ctx)
	follow(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-event-id="`+ids[1]+`"] td[data-label="Location"]`)))
	if loc := location(t, ctx); loc.Path != "/ui/events/"+ids[1] {
		t.Fatalf("a click on the row's location led to %s", loc)
	}
	// Newer, then Older: each step is the neighbour in the list.
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="prev"]`)))
	if loc := location(t, ctx); loc.Path != "/ui/events/"+ids[0] || loc.Query().Encode() != page2.Query().Encode() {
		t.Fatalf("newer than %s led to %s; the list has %v", ids[1], loc, ids[:3])
	}
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
	if loc := location(t, ctx); loc.Path != "/ui/events/"+ids[1] {
		t.Fatalf("older than %s led to %s; the list has %v", ids[0], loc, ids[:3])
	}
	follow(t, ctx, chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[contains(text(), "Back to the audit log")]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	loc := location(t, ctx)
	if loc.Query().Encode() != page2.Query().Encode() || loc.Fragment != "ev-"+ids[2] || !slices.Equal(rowIDs(t, ctx), ids) {
		t.Fatalf("back to %s, not to %s at row %s", loc, page2, ids[2])
	}
}

func (b *uiBrowser) testExport(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?actions=user.role_granted&range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)),
		chromedp.SetValue(chromedp.CSS(`#format`), "csv"),
	)
	follow(t, ctx, chromedp.Click(chromedp.Search(`//button[text()="Export"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#download`)))
	b.export = location(t, ctx).Path
	screenshot(t, ctx, "export")
	run(t, ctx, chromedp.Click(chromedp.CSS(`#download`)))
	f, err := os.Open(waitFile(t, dir, "*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := ts.allIDs(t, org, "actions", "user.role_granted")
	if len(rows) != len(want)+1 || len(want) < 50 {
		t.Fatalf("%d rows in the CSV, want %d and a header", len(rows), len(want))
	}
	col := slices.Index(rows[0], "id")
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[col])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the CSV holds other events")
	}
	// NDJSON, gzipped: the file and the checkpoint it was written
	// against verify as trail verify checks them.
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?actions=user.role_granted&range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)),
		chromedp.SetValue(chromedp.CSS(`#format`), "ndjson"), chromedp.Click(chromedp.CSS(`input[name="gzip"]`)))
	follow(t, ctx, chromedp.Click(chromedp.Search(`//button[text()="Export"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#download`)), chromedp.Click(chromedp.CSS(`#download`)),
		chromedp.Click(chromedp.CSS(`#export-checkpoint`)))
	ndjson, checkpoint := waitFile(t, dir, "*.ndjson.gz"), waitFile(t, dir, "*.checkpoint")
	data, err := os.ReadFile(checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := os.Open(ndjson)
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tlog.VerifyOptions{Key: ts.VKey, Checkpoint: data, Subset: true}.Verify(zr)
	if err != nil || res.Lines != len(want) || res.Proven != len(want) {
		t.Fatalf("verify the NDJSON export: %+v, %v", res, err)
	}
	if n := len(ts.apiIDs(t, org, url.Values{"actions": {trail.ActionExportCreated}, "actor_ids": {"user_owner"}})); n != 2 {
		t.Fatalf("%d audit_log_export.created events by the owner", n)
	}
}

func (b *uiBrowser) testStream(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	rcv := receiver.NewWebhook(false, nil)
	t.Cleanup(rcv.Close)
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/settings"), chromedp.WaitVisible(chromedp.CSS(`#streams-h`)))
	screenshot(t, ctx, "settings-empty")
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[text()="New log stream"]`)))
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[text()="GenericHttps"]`)))
	checkLabels(t, ctx, "stream form")
	screenshot(t, ctx, "stream-new")
	// An error is shown at its field, and nothing is created.
	run(t, ctx, chromedp.SetValue(chromedp.CSS(`#f-name`), "SIEM"), chromedp.SetValue(chromedp.CSS(`#f-url`), "not a url"))
	follow(t, ctx, chromedp.Submit(chromedp.CSS(`#f-url`)))
	var fieldErr string
	run(t, ctx, textInto(&fieldErr, chromedp.CSS(`.field.invalid .err`)))
	if fieldErr == "" {
		t.Fatal("no error at the URL field")
	}
	if list, _, _ := ts.Streams.FindStreams(context.Background(), org, trail.ListFilter{Limit: 10}); len(list) != 0 {
		t.Fatalf("a refused form created %d streams", len(list))
	}
	run(t, ctx, chromedp.SetValue(chromedp.CSS(`#f-url`), rcv.URL()+"/trail"), chromedp.SetValue(chromedp.CSS(`#f-format`), "ndjson"))
	follow(t, ctx, chromedp.Submit(chromedp.CSS(`#f-url`)))
	var secret string
	run(t, ctx, textInto(&secret, chromedp.CSS(`#stream-secret`)))
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	follow(t, ctx, chromedp.Click(chromedp.Search(`//a[text()="Done"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#streams-h`)))
	list, _, err := ts.Streams.FindStreams(context.Background(), org, trail.ListFilter{Limit: 10})
	if err != nil || len(list) != 1 || list[0].Name != "SIEM" || list[0].Config.Format != "ndjson" {
		t.Fatalf("streams = %v, %v", list, err)
	}
	b.stream = list[0].ID
	id := list[0].ID
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#stream-`+id+` button[aria-label^="Send a test"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#test-result`)))
	var result string
	run(t, ctx, textInto(&result, chromedp.CSS(`#test-result`)))
	if !strings.Contains(result, "delivered") {
		t.Fatalf("test result %q", result)
	}
	found := false
	for _, ev := range rcv.Events() {
		found = found || ev.Index == -1
	}
	if !found {
		t.Fatal("the receiver got no test event")
	}
	// Pause and resume, with the state shown.
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#stream-`+id+` button[aria-label^="Pause"]`)))
	var state string
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#stream-`+id+` .state.inactive`)), textInto(&state, chromedp.CSS(`#stream-`+id+` .state`)))
	if state != "paused" {
		t.Fatalf("a paused stream reads %q", state)
	}
	screenshot(t, ctx, "settings")
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#stream-`+id+` button[aria-label^="Resume"]`)))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#stream-`+id+` button[aria-label^="Pause"]`)))
	// Edit: a new name, the secret kept.
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#stream-`+id+` a[aria-label^="Edit"]`)))
	run(t, ctx, chromedp.SetValue(chromedp.CSS(`#f-name`), "SIEM (prod)"))
	follow(t, ctx, chromedp.Submit(chromedp.CSS(`#f-name`)))
	st, err := ts.Streams.FindStreamByID(context.Background(), org, id)
	if err != nil || st.Name != "SIEM (prod)" || !slices.Contains(st.SecretFields, "secret") {
		t.Fatalf("after the edit: %+v, %v", st, err)
	}
	var body string
	run(t, ctx, textInto(&body, chromedp.CSS(`main`)))
	for _, want := range []string{"SIEM (prod)", "active", "365 days", "Verifier key", "trail verify"} {
		if !strings.Contains(body, want) {
			t.Errorf("settings lack %q", want)
		}
	}
	checkLabels(t, ctx, "settings")
	// Every change is in the organization's log with the owner as
	// the actor.
	for _, a := range []string{trail.ActionStreamCreated, trail.ActionStreamPaused, trail.ActionStreamResumed, trail.ActionStreamUpdated} {
		if n := len(ts.apiIDs(t, org, url.Values{"actions": {a}, "actor_ids": {"user_owner"}})); n != 1 {
			t.Errorf("%d %s events by the owner", n, a)
		}
	}
}

func (b *uiBrowser) testKeyboard(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	// The first Tab reaches the skip link, which moves the focus
	// to the content; a filter typed and Enter applies it; Tab
	// reaches the rows' links.
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)), chromedp.KeyEvent(kb.Tab))
	var focused string
	run(t, ctx, into(&focused, chromedp.Evaluate[string](`document.activeElement.className + ':' + document.activeElement.textContent`)))
	if focused != "skip:Skip to content" {
		t.Fatalf("the first Tab focuses %q", focused)
	}
	run(t, ctx, chromedp.KeyEvent(kb.Enter))
	run(t, ctx, into(&focused, chromedp.Evaluate[string](`document.activeElement.id`)))
	if focused != "main" {
		t.Fatalf("the skip link focuses %q", focused)
	}
	// The first event is three Tab presses away: past the first skip
	// link, to "Skip to the events", and from there to the first row.
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)),
		chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Tab))
	var first string
	run(t, ctx, into(&focused, chromedp.Evaluate[string](`document.activeElement.closest('tr') ? document.activeElement.closest('tr').dataset.eventId : document.activeElement.outerHTML`)),
		into(&first, chromedp.Evaluate[string](`document.querySelector('tr[data-event-id]').dataset.eventId`)))
	if focused != first {
		t.Fatalf("three Tabs and Enter reach %q, not the first event %s", focused, first)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`details.more summary`)), chromedp.WaitVisible(chromedp.CSS(`#actor`)))
	follow(t, ctx, chromedp.SendKeys(chromedp.CSS(`#actor`), "user_3"+kb.Enter))
	if loc := location(t, ctx); loc.Query().Get("actor") != "user_3" {
		t.Fatalf("Enter in the actor field led to %s", loc)
	}
	var reach bool
	run(t, ctx, into(&reach, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll('tr[data-event-id] a, a[rel], button, input, select')).every(e => e.tabIndex >= 0)`)))
	if !reach {
		t.Fatal("a link or control is out of the Tab order")
	}
}

// testLayout: no page scrolls sideways on a phone, a tablet or a
// desktop; the results are above the fold: on a 1440×900 screen the 10th
// row ends within 900 px, on a 390×844 phone the first row within 844.
func (b *uiBrowser) testLayout(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	defer run(t, ctx, chromedp.EmulateViewport(1280, 1000))
	event := ts.allIDs(t, org)[0]
	pages := []string{"/ui/?range=7d", "/ui/?range=all&q=TCK-3", "/ui/?from=nonsense", "/ui/events/" + event, "/ui/settings", "/ui/streams/new?type=Splunk", "/ui/exports", "/ui/top?range=all"}
	if b.stream != "" {
		pages = append(pages, "/ui/streams/"+b.stream)
	}
	if b.export != "" {
		pages = append(pages, b.export)
	}
	for _, size := range [][2]int64{{390, 844}, {768, 1024}, {1440, 900}} {
		opts := []chromedp.EmulateViewportOption{}
		if size[0] < 500 {
			opts = append(opts, chromedp.EmulateMobile)
		}
		for _, path := range pages {
			run(t, ctx, chromedp.EmulateViewport(size[0], size[1], opts...), chromedp.Navigate(ts.URL()+path), chromedp.WaitVisible(chromedp.CSS(`main`)))
			var wide []string
			run(t, ctx, into(&wide, chromedp.Evaluate[[]string](`document.documentElement.scrollWidth > window.innerWidth + 1 ?
				[String(document.documentElement.scrollWidth)].concat(Array.from(document.querySelectorAll('main *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(-3).map(e => e.outerHTML.slice(0, 100))) : []`)))
			if len(wide) > 0 {
				t.Errorf("%s scrolls sideways at %d px: %v", path, size[0], wide)
			}
			// On a phone a row's cells are stacked under their labels; a
			// cell without a label shows none (no stray ":").
			var stray []string
			run(t, ctx, into(&stray, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('table.events td')).filter(td => /^"?\s*:/.test(getComputedStyle(td, '::before').content)).map(td => td.outerHTML.slice(0, 100))`)))
			if len(stray) > 0 {
				t.Errorf("%s at %d px: cells with a stray label: %v", path, size[0], stray)
			}
		}
		run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
		var bottoms []float64
		run(t, ctx, into(&bottoms, chromedp.Evaluate[[]float64](`Array.from(document.querySelectorAll('tr[data-event-id]')).slice(0, 10).map(r => r.getBoundingClientRect().bottom)`)))
		switch {
		case len(bottoms) < 10:
			t.Fatalf("%d rows", len(bottoms))
		case size == [2]int64{1440, 900} && bottoms[9] > 900:
			t.Errorf("at 1440×900 the 10th row ends at %.0f px", bottoms[9])
		case size == [2]int64{390, 844} && bottoms[0] > 844:
			t.Errorf("at 390×844 the first row ends at %.0f px", bottoms[0])
		}
		t.Logf("%dx%d: first row ends at %.0f px, 10th at %.0f px", size[0], size[1], bottoms[0], bottoms[9])
		switch size[0] {
		case 390:
			screenshot(t, ctx, "audit-log-phone")
		case 1440:
			screenshot(t, ctx, "audit-log")
		}
	}
}

// testDarkMode: a reader whose system is dark gets dark pages.
func (b *uiBrowser) testDarkMode(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	dark := func(on string) {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: on}}}); err != nil {
			t.Fatal(err)
		}
	}
	defer dark("light")
	for _, c := range []struct{ scheme, bg string }{{"light", "rgb(246, 247, 249)"}, {"dark", "rgb(16, 20, 28)"}} {
		dark(c.scheme)
		var bg string
		run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)),
			into(&bg, chromedp.Evaluate[string](`getComputedStyle(document.documentElement).backgroundColor`)))
		if bg != c.bg {
			t.Errorf("%s: the page's background is %s, want %s", c.scheme, bg, c.bg)
		}
	}
	screenshot(t, ctx, "audit-log-dark")
}

// testWhatChanged: an event's before/after metadata is a diff of each
// field on its page and one line in the list.
func (b *uiBrowser) testWhatChanged(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?actions=escalation_path.updated&range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	var line string
	run(t, ctx, textInto(&line, chromedp.CSS(`tr[data-event-id] .diff`)))
	if line != "priority: P2 → P1" {
		t.Fatalf("the row says %q", line)
	}
	follow(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-event-id] a`)))
	var before, after, rest string
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`table.changes`)), textInto(&before, chromedp.CSS(`table.changes tr.changed del`)),
		textInto(&after, chromedp.CSS(`table.changes tr.changed ins`)), textInto(&rest, chromedp.CSS(`#metadata-h`)))
	if before != "P2" || after != "P1" || rest != "Other metadata" {
		t.Fatalf("the event shows %q → %q, then %q", before, after, rest)
	}
	checkLabels(t, ctx, "event with changes")
	screenshot(t, ctx, "event-changes")
}

func (b *uiBrowser) testMember(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	link := ts.portalLink(t, org, trail.RoleMember, trail.IntentAuditLogs)
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	for _, path := range []string{"/ui/", "/ui/settings", "/ui/events/" + ts.allIDs(t, org)[0], "/ui/streams/new"} {
		run(t, ctx, chromedp.Navigate(ts.URL()+path), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		var h1, body string
		run(t, ctx, textInto(&h1, chromedp.CSS(`h1`)), textInto(&body, chromedp.CSS(`body`)))
		if h1 != "You need the Owner or Admin role" {
			t.Fatalf("%s: a member sees %q", path, h1)
		}
		if strings.Contains(body, "user.role_granted") || strings.Contains(body, "Grace Hopper") || strings.Contains(body, "SIEM") {
			t.Fatalf("%s: a member sees data: %s", path, body)
		}
	}
	screenshot(t, ctx, "member")
	if n := len(ts.apiIDs(t, org, url.Values{"actions": {trail.ActionPortalSessionCreated}, "actor_ids": {"user_member"}})); n != 1 {
		t.Fatalf("%d portal_session.created events by the member", n)
	}
}

func (b *uiBrowser) testUsedAndExpiredLinks(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	link := ts.portalLink(t, org, trail.RoleAdmin, trail.IntentLogStreams)
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`#streams-h`)))
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	var text string
	run(t, ctx, textInto(&text, chromedp.CSS(`main`)))
	if !strings.Contains(text, "This link cannot be opened") || !strings.Contains(text, "already used") {
		t.Fatalf("a reused link shows %q", text)
	}
	expired := ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs)
	ts.Clock.Add(int64(6 * time.Minute))
	defer ts.Clock.Add(-int64(6 * time.Minute))
	run(t, ctx, chromedp.Navigate(expired), chromedp.WaitVisible(chromedp.CSS(`h1`)), textInto(&text, chromedp.CSS(`main`)))
	if !strings.Contains(text, "expired") {
		t.Fatalf("an expired link shows %q", text)
	}
	screenshot(t, ctx, "link-refused")
	checkAxe(t, ctx, axeSource(t), "an expired link")
	// Signing out ends the session: the pages ask for a new link.
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/settings"), chromedp.WaitVisible(chromedp.CSS(`#streams-h`)))
	follow(t, ctx, chromedp.Click(chromedp.Search(`//button[text()="Sign out"]`)))
	run(t, ctx, textInto(&text, chromedp.CSS(`h1`)))
	if text != "Signed out" {
		t.Fatalf("signing out shows %q", text)
	}
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`h1`)), textInto(&text, chromedp.CSS(`h1`)))
	if text != "You are signed out" {
		t.Fatalf("after signing out: %q", text)
	}
	checkAxe(t, ctx, axeSource(t), "signed out")
	// A shared view opened signed out says how to get in, and a new link
	// comes back to it.
	view := "/ui/?actions=user.role_granted&range=all"
	run(t, ctx, chromedp.Navigate(ts.URL()+view), chromedp.WaitVisible(chromedp.CSS(`h1`)), textInto(&text, chromedp.CSS(`main`)))
	if !strings.Contains(text, "brings you back here") {
		t.Fatalf("a view opened signed out says %q", text)
	}
	screenshot(t, ctx, "signed-out")
	run(t, ctx, chromedp.Navigate(ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs)), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	if loc := location(t, ctx); loc.RequestURI() != view {
		t.Fatalf("the new link opened %s, not the view %s", loc.RequestURI(), view)
	}
}

// allIDs lists every event id of an organization, newest first, with
// optional filter parameters as name, value pairs.
func (ts *testServer) allIDs(t *testing.T, org string, params ...string) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		q := url.Values{"organization_id": {org}, "limit": {"1000"}}
		for i := 0; i+1 < len(params); i += 2 {
			q.Add(params[i], params[i+1])
		}
		if after != "" {
			q.Set("after", after)
		}
		res := ts.do(t, "GET", "/audit_logs/events?"+q.Encode(), adminSecret, nil)
		body := res.JSON(t)
		for _, e := range body["data"].([]any) {
			ids = append(ids, e.(map[string]any)["id"].(string))
		}
		next, _ := body["list_metadata"].(map[string]any)["after"].(string)
		if next == "" {
			return ids
		}
		after = next
	}
}
