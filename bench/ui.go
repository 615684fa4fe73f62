package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/demo"
)

// page is a page of the ui scenario: a name and a function that returns a
// new path each time.
type page struct {
	name string
	path func() string
	// status is the page's answer when it is not 200 OK: a redirect.
	status int
}

// uiPages returns the pages of the ui scenario, drawing their filters from
// rng over the pre-loaded period and their events from ids.
func uiPages(rng *rand.Rand, catalog []demo.CatalogEntry, p preloadedDB, events int, ids []string) []page {
	return []page{
		{"log: last 30 days (default)", func() string { return "/ui/" }, 0},
		{"log: last 24 hours", func() string { return "/ui/?range=24h" }, 0},
		{"log: last 7 days", func() string { return "/ui/?range=7d" }, 0},
		{"log: all time", func() string { return "/ui/?range=all" }, 0},
		{"log: action, 30 days", func() string { return "/ui/?actions=" + catalog[rng.IntN(len(catalog))].Action }, 0},
		{"log: action prefix, 30 days", func() string {
			a := catalog[rng.IntN(len(catalog))].Action
			return "/ui/?actions=" + a[:strings.IndexByte(a, '.')] + ".*"
		}, 0},
		{"log: actor, 30 days", func() string { return fmt.Sprintf("/ui/?actor_ids=user_%04d", rng.IntN(2000)) }, 0},
		{"log: target, all time", func() string {
			e := catalog[rng.IntN(len(catalog))]
			return fmt.Sprintf("/ui/?range=all&target_ids=%s_%05d", e.TargetTypes[0], rng.IntN(50000))
		}, 0},
		{"log: word, 30 days", func() string { return fmt.Sprintf("/ui/?q=INC-%d", rng.IntN(100000)) }, 0},
		{"log: custom day", func() string {
			s := p.base.Add(time.Duration(rng.Int64N(int64(p.span - 24*time.Hour)))).Truncate(time.Minute)
			return "/ui/?from=" + s.Format("2006-01-02T15:04") + "&to=" + s.Add(24*time.Hour).Format("2006-01-02T15:04")
		}, 0},
		{"log: an older page", func() string {
			return "/ui/?range=all&after=" + httpapi.EncodeEventCursor(1+rng.Int64N(int64(events-1)))
		}, 0},
		{"log: actor= (ID probe), 30 days", func() string { return fmt.Sprintf("/ui/?actor=user_%04d", rng.IntN(2000)) }, 0},
		{"top counts, 30 days", func() string { return "/ui/facets" }, 0},
		{"top counts, action, 30 days", func() string { return "/ui/facets?actions=" + catalog[rng.IntN(len(catalog))].Action }, 0},
		{"exports list", func() string { return "/ui/exports" }, 0},
		{"event detail (verified)", func() string { return "/ui/events/" + ids[rng.IntN(len(ids))] }, 0},
		// A click on "Older event": the step is found then, and redirects.
		{"event: step to older", func() string { return "/ui/events/" + ids[rng.IntN(len(ids))] + "/older" }, http.StatusSeeOther},
		{"settings", func() string { return "/ui/settings" }, 0},
	}
}

var eventID = regexp.MustCompile(`"id":"([0-9A-Z]{26})"`)

// ui measures the web UI's pages (SPEC §9) on the query scenario's
// organization: the audit log with each filter and date range (the event
// list and the histogram, whose times the page reports in its
// Server-Timing header), an older page, an event's detail with its
// verification, and the settings.
func (r *runner) ui(ctx context.Context, driver string) error {
	const org = queryOrg
	p, cleanup, err := r.preloadedServer(ctx, driver)
	defer cleanup()
	if err != nil {
		return err
	}
	srv := p.srv
	browser, err := r.portalSession(srv, org)
	if err != nil {
		return err
	}
	catalog, err := demo.Catalog()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	// Some event ids for the detail page, from random days.
	var ids []string
	for len(ids) < 200 {
		s := p.base.Add(time.Duration(rng.Int64N(int64(p.span - time.Hour))))
		q := url.Values{"organization_id": {org}, "limit": {"20"}, "range_start": {s.Format(time.RFC3339)}}
		code, b, err := r.do("GET", srv.url+"/audit_logs/events?"+q.Encode(), nil)
		if err != nil || code != 200 {
			return fmt.Errorf("events: %d %.200s %v", code, b, err)
		}
		for _, m := range eventID.FindAllSubmatch(b, -1) {
			ids = append(ids, string(m[1]))
		}
	}
	n, warmup := max(r.c.Queries/3, 10), min(r.c.Warmup, 20)
	fmt.Fprintf(r.out, "ui (%s): pages of the web UI, %d events in one organization, %d requests a page after %d untimed\n", p.target.label(), r.c.QueryEvents, n, warmup)
	for _, pg := range uiPages(rng, catalog, p, r.c.QueryEvents, ids) {
		if err := r.uiPage(browser, srv, pg, n, warmup); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.out, "  server peak RSS %.0f MiB\n\n", srv.peakRSS())
	return nil
}

// portalSession opens a session of org's owner, as a browser opens one
// from a portal link, and returns a client that holds its cookie.
func (r *runner) portalSession(srv *server, org string) (*http.Client, error) {
	code, b, err := r.do("POST", srv.url+"/portal/generate_link", []byte(`{"organization":"`+org+`","role":"owner","user":{"id":"user_bench","name":"Bench"}}`))
	if err != nil || code != http.StatusCreated {
		return nil, fmt.Errorf("portal link: %d %s %v", code, b, err)
	}
	var link struct{ Link string }
	if err := json.Unmarshal(b, &link); err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if _, _, err := uiGet(browser, link.Link, http.StatusOK); err != nil {
		return nil, err
	}
	return browser, nil
}

// uiPage loads a page warmup times untimed, then n times timed, and
// reports the times: the whole request, and the list's and histogram's
// from the Server-Timing header.
func (r *runner) uiPage(browser *http.Client, srv *server, p page, n, warmup int) error {
	for i := 0; i < warmup; i++ {
		if _, _, err := uiGet(browser, srv.url+p.path(), p.status); err != nil {
			return err
		}
	}
	var total, list, hist latencies
	var noChart int
	for i := 0; i < n; i++ {
		t0 := time.Now()
		timing, body, err := uiGet(browser, srv.url+p.path(), p.status)
		total.add(time.Since(t0))
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if d, ok := timing["list"]; ok {
			list.add(d)
			hist.add(timing["histogram"])
		}
		if strings.Contains(body, "Too many events to chart") {
			noChart++
		}
	}
	line := fmt.Sprintf("  %-28s p50 %-10s p95 %-10s p99 %-10s", p.name, ms(total.pct(.5)), ms(total.pct(.95)), ms(total.pct(.99)))
	if list.count() > 0 {
		line += fmt.Sprintf(" (list p95 %s, histogram p95 %s", ms(list.pct(.95)), ms(hist.pct(.95)))
		if noChart > 0 {
			line += fmt.Sprintf(", %d of %d too large to chart", noChart, n)
		}
		line += ")"
	}
	fmt.Fprintln(r.out, line)
	return nil
}

var serverTiming = regexp.MustCompile(`(\w+);dur=([0-9.]+)`)

// uiGet loads a page and returns its Server-Timing durations and body.
func uiGet(c *http.Client, u string, status int) (map[string]time.Duration, string, error) {
	res, err := c.Get(u)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, "", err
	}
	if want := max(status, http.StatusOK); res.StatusCode != want {
		return nil, "", fmt.Errorf("GET %s: %d, not %d: %.300s", u, res.StatusCode, want, b)
	}
	return parseServerTiming(res.Header.Get("Server-Timing")), string(b), nil
}

// parseServerTiming reads the durations of a Server-Timing header
// ("list;dur=12.5, histogram;dur=3").
func parseServerTiming(h string) map[string]time.Duration {
	timing := map[string]time.Duration{}
	for _, m := range serverTiming.FindAllStringSubmatch(h, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		timing[m[1]] = time.Duration(v * float64(time.Millisecond))
	}
	return timing
}
