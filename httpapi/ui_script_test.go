package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
)

// The page's own script (ui/src/trail.js): keys, the browser's zone and
// new events announced. Every page works without it; these check what it
// adds.

// press types one key as a person does: a keydown that carries its text,
// so that a handler that prevents it keeps the text out of the page.
func press(key string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			p := input.DispatchKeyEventParams{Type: typ, Key: key}
			if typ == input.DispatchKeyEventTypeKeyDown {
				p.Text = key
			}
			if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, p); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

// rangeOf reads the from and to of the page's URL, in UTC (the zone of
// the test's session). A bound at midnight is written as a date alone
// (in the minute before midnight, the last 7 days end at midnight), and
// a date alone in to includes its day.
func rangeOf(t *testing.T, ctx context.Context) (from, to time.Time) {
	t.Helper()
	q := location(t, ctx).Query()
	parse := func(name string, dayEnd bool) time.Time {
		v := q.Get(name)
		if d, err := time.Parse(time.DateOnly, v); err == nil {
			if dayEnd {
				d = d.AddDate(0, 0, 1)
			}
			return d
		}
		at, err := time.Parse("2006-01-02T15:04", v)
		if err != nil {
			t.Fatalf("%s: %v (%s)", name, err, q.Encode())
		}
		return at
	}
	return parse("from", false), parse("to", true)
}

// testKeys: / focuses the search box; [ and ] move the range a period
// earlier and later, - doubles it; the same links are on the page.
func (b *uiBrowser) testKeys(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=7d&actions=user.*"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)),
		press("/"))
	var focused string
	run(t, ctx, into(&focused, chromedp.Evaluate[string](`document.activeElement.id`)))
	if focused != "q" {
		t.Fatalf("/ focuses %q, not the search box", focused)
	}
	// Typed into the search box, the keys are text, not commands.
	run(t, ctx, press("["), press("]"))
	var typed string
	run(t, ctx, into(&typed, chromedp.Evaluate[string](`document.getElementById('q').value`)))
	if typed != "[]" {
		t.Fatalf("the search box holds %q", typed)
	}
	var hasLater bool
	run(t, ctx, into(&hasLater, chromedp.Evaluate[bool](`!!document.getElementById('later')`)))
	if hasLater {
		t.Fatal("a range that ends now offers Later")
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	follow(t, ctx, press("["))
	from, to := rangeOf(t, ctx)
	if to.Sub(from) != 7*24*time.Hour || time.Since(to) < 7*24*time.Hour-time.Hour || time.Since(to) > 7*24*time.Hour+time.Hour {
		t.Fatalf("[ after the last 7 days shows %v to %v", from, to)
	}
	if got := location(t, ctx).Query().Get("actions"); got != "user.*" {
		t.Fatalf("[ lost the filter: actions=%q", got)
	}
	want := ts.allIDs(t, b.org, "actions", "user.*", "range_start", from.Format(time.RFC3339), "range_end", to.Format(time.RFC3339))
	if got := rowIDs(t, ctx); !slices.Equal(got, want[:min(len(want), 50)]) {
		t.Fatalf("rows of the earlier week: %v\nwant %v", got, want)
	}
	follow(t, ctx, press("["))
	from2, to2 := rangeOf(t, ctx)
	if !to2.Equal(from) || to2.Sub(from2) != 7*24*time.Hour {
		t.Fatalf("[ twice shows %v to %v", from2, to2)
	}
	follow(t, ctx, press("]"))
	if f, u := rangeOf(t, ctx); !f.Equal(from) || !u.Equal(to) {
		t.Fatalf("] after [ shows %v to %v, want %v to %v", f, u, from, to)
	}
	follow(t, ctx, press("-"))
	// Centred on the range before: by half its length each side, or by
	// whole days (3 before, 4 after) when its ends are midnights.
	if f, u := rangeOf(t, ctx); u.Sub(f) != 14*24*time.Hour || f.After(from) || u.Before(to) || from.Sub(f) < 72*time.Hour || from.Sub(f) > 96*time.Hour {
		t.Fatalf("- after %v to %v shows %v to %v", from, to, f, u)
	}
	// The buttons do the same.
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#later`)))
	if f, u := rangeOf(t, ctx); u.Sub(f) != 14*24*time.Hour {
		t.Fatalf("Later shows %v to %v", f, u)
	}
}

// testZoomUndo: a histogram bar zooms into its period, and Undo zoom
// (or u) comes back to the range before.
func (b *uiBrowser) testZoomUndo(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=7d&actions=user.*"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	before := rowIDs(t, ctx)
	var undo bool
	run(t, ctx, into(&undo, chromedp.Evaluate[bool](`!!document.getElementById('undo-zoom')`)))
	if undo {
		t.Fatal("a page that was not zoomed into offers Undo zoom")
	}
	var bar string
	run(t, ctx, into(&bar, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('.histogram svg a')).pop().getAttribute('href')`)))
	follow(t, ctx, chromedp.Navigate(ts.URL()+bar))
	from, to := rangeOf(t, ctx)
	if to.Sub(from) > 24*time.Hour {
		t.Fatalf("a bar of the last 7 days zooms into %v to %v", from, to)
	}
	// Zoom into a bar of the zoomed view, then undo twice.
	run(t, ctx, into(&bar, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('.histogram svg a')).pop().getAttribute('href')`)))
	follow(t, ctx, chromedp.Navigate(ts.URL()+bar))
	follow(t, ctx, press("u"))
	if f, u := rangeOf(t, ctx); !f.Equal(from) || !u.Equal(to) {
		t.Fatalf("u shows %v to %v, want %v to %v", f, u, from, to)
	}
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#undo-zoom`)))
	q := location(t, ctx).Query()
	if q.Get("range") != "7d" || q.Get("from") != "" || q.Get("undo") != "" || q.Get("actions") != "user.*" {
		t.Fatalf("Undo zoom twice leads to %s", q.Encode())
	}
	if got := rowIDs(t, ctx); !slices.Equal(got, before) {
		t.Fatalf("after the undo, rows %v\nwant %v", got, before)
	}
}

// testLive: events that arrive while the page is open are announced above
// the list within seconds, without moving the rows, and shown on request.
func (b *uiBrowser) testLive(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?actions=user.role_granted"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	top := func() float64 {
		var y float64
		run(t, ctx, into(&y, chromedp.Evaluate[float64](`document.querySelector('tr[data-event-id]').getBoundingClientRect().top`)))
		return y
	}
	y0, rows0 := top(), rowIDs(t, ctx)
	var text string
	run(t, ctx, textInto(&text, chromedp.CSS(`#live`)))
	if strings.TrimSpace(text) != "" {
		t.Fatalf("before any new event the banner says %q", text)
	}
	var ids []string
	for i := range 3 {
		res := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": map[string]any{
			"action": "user.role_granted", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano), "version": 1,
			"actor":   map[string]any{"id": "user_live", "type": "user", "name": "Live Lovelace"},
			"targets": []map[string]any{{"id": fmt.Sprintf("team_live_%d", i), "type": "team"}},
			"context": map[string]any{"location": "203.0.113.7"}}})
		if res.Status != 201 && res.Status != 200 {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		// Events of another type are not this view's.
		ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": map[string]any{
			"action": "api_key.created", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano), "version": 1,
			"actor": map[string]any{"id": "user_live", "type": "user"}, "targets": []map[string]any{{"id": "k", "type": "api_key"}},
			"context": map[string]any{"location": "203.0.113.7"}}})
	}
	ids = ts.apiIDs(t, org, url.Values{"actions": {"user.role_granted"}, "actor_ids": {"user_live"}})
	start := time.Now()
	testwait.For(t, 20*time.Second, "the banner to announce 3 new events", func() bool {
		chromedp.Run(ctx, textInto(&text, chromedp.CSS(`#live`)))
		return strings.HasPrefix(text, "3 new events")
	})
	t.Logf("announced %v after the last event was acknowledged", time.Since(start).Round(100*time.Millisecond))
	if y := top(); y != y0 {
		t.Errorf("the banner moved the first row from %.0f to %.0f px", y0, y)
	}
	if got := rowIDs(t, ctx); !slices.Equal(got, rows0) {
		t.Fatal("the rows changed before the reader asked")
	}
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#live-show`)))
	if got := rowIDs(t, ctx); len(ids) != 3 || !slices.Equal(got[:3], ids) || got[3] != rows0[0] {
		t.Fatalf("after Show, rows start %v, want %v then %s", got[:4], ids, rows0[0])
	}
}

// testBrowserZone: a session whose link named no zone shows times in the
// browser's, and its switch to UTC works as for a link's zone.
func (b *uiBrowser) testBrowserZone(t *testing.T) {
	ts, ctx, org := b.ts, b.ctx, b.org
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: ""})
		chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "trail_zone", URL: ts.URL() + "/ui/"})
	}()
	link := ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs)
	run(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`#events-h`)))
	var zone string
	// Chromium's ICU names India's zone by its older IANA name.
	var name string
	run(t, ctx, into(&name, chromedp.Evaluate[string](`Intl.DateTimeFormat().resolvedOptions().timeZone`)))
	if name != "Asia/Kolkata" && name != "Asia/Calcutta" {
		t.Fatalf("the browser's zone is %q", name)
	}
	testwait.For(t, 20*time.Second, "the page to show the browser's zone", func() bool {
		chromedp.Run(ctx, textInto(&zone, chromedp.CSS(`header .zone`)))
		return strings.Contains(zone, "Times in "+name)
	})
	var head string
	run(t, ctx, textInto(&head, chromedp.CSS(`table.events thead th`)))
	if !strings.Contains(head, "+05:30") {
		t.Fatalf("the Occurred column says %q", head)
	}
	follow(t, ctx, chromedp.Click(chromedp.Search(`//button[text()="Show in UTC"]`)))
	run(t, ctx, textInto(&zone, chromedp.CSS(`header .zone`)))
	if !strings.Contains(zone, "Times in UTC") || !strings.Contains(zone, "Show in "+name) {
		t.Fatalf("after Show in UTC the header says %q", zone)
	}
}

// testSuggestAndFacets: the Actor and Target fields suggest the
// organization's own actors and targets once used; opening the top
// actors, event types and target types counts them in place, and each is
// a link that narrows the view.
func (b *uiBrowser) testSuggestAndFacets(t *testing.T) {
	ts, ctx := b.ts, b.ctx
	run(t, ctx, chromedp.Navigate(ts.URL()+"/ui/?range=all"), chromedp.WaitVisible(chromedp.CSS(`#events-h`)), openFilters,
		chromedp.Focus(chromedp.CSS(`#actor`)))
	for _, list := range []string{"actor-list", "target-list"} {
		if list == "target-list" {
			run(t, ctx, chromedp.Focus(chromedp.CSS(`#target`)))
		}
		var options []string
		testwait.ForNil(t, 10*time.Second, "suggestions in "+list, func() error {
			run(t, ctx, into(&options, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#`+list+` option')).map(o => o.value + ' (' + o.label + ')')`)))
			if len(options) == 0 {
				return fmt.Errorf("none")
			}
			return nil
		})
		want := map[string]string{"actor-list": "Grace Hopper (user · user_0)", "target-list": "Team 1 (team · team_1)"}[list]
		if !slices.Contains(options, want) {
			t.Errorf("%s: %v lack %q", list, options, want)
		}
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`#facets summary`)), chromedp.WaitVisible(chromedp.CSS(`#facets ol.facets a`)))
	run(t, ctx, chromedp.Click(chromedp.CSS(`#views summary`)), chromedp.WaitVisible(chromedp.CSS(`#view-name`)))
	checkAxe(t, ctx, axeSource(t), "/ui/?range=all with the counts and the saved views open")
	var wide bool
	run(t, ctx, into(&wide, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)))
	if wide {
		t.Error("the saved views make the page scroll sideways")
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`#views summary`)))
	var first string
	run(t, ctx, textInto(&first, chromedp.CSS(`#facets ol.facets a`)))
	follow(t, ctx, chromedp.Click(chromedp.CSS(`#facets ol.facets a`)))
	loc := location(t, ctx)
	if loc.Query().Get("actor") == "" || loc.Query().Get("range") != "all" {
		t.Fatalf("the top actor %q led to %s", first, loc)
	}
	want := ts.apiIDs(t, b.org, url.Values{"actor_ids": {loc.Query().Get("actor")}})
	if got := rowIDs(t, ctx); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("rows of %s: %v, want %v", first, got, want)
	}
}
