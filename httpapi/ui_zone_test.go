package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestUI_TimeZone: a link names its person's zone, locale and the page it
// opens on; the pages show times and read dates in that zone; the switch
// to UTC is remembered by the session; tz= fixes the zone of a shared
// view; bad values are refused, naming their field, and a return_to that
// leaves /ui/ is no redirect at all.
func TestUI_TimeZone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_zone")
		// Monday 30 November 2026, 23:30 in Los Angeles: 1 December in UTC.
		ev := validEvent()
		ev["occurred_at"] = "2026-12-01T07:30:00Z"
		ev["action"] = "escalation_path.updated"
		if res := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); res.Status != 201 && res.Status != 200 {
			t.Fatalf("event: %d %s", res.Status, res.Body)
		}
		user := func(extra map[string]any) map[string]any {
			u := map[string]any{"id": "user_ada", "name": "Ada Lovelace"}
			for k, v := range extra {
				u[k] = v
			}
			return u
		}
		for _, tc := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"unknown zone", map[string]any{"user": user(map[string]any{"time_zone": "Mars/Olympus"})}, "/user/time_zone"},
			{"server's zone", map[string]any{"user": user(map[string]any{"time_zone": "Local"})}, "/user/time_zone"},
			{"zone not a string", map[string]any{"user": user(map[string]any{"time_zone": -8})}, "user.time_zone"},
			{"bad locale", map[string]any{"user": user(map[string]any{"locale": "english please"})}, "/user/locale"},
			{"another site", map[string]any{"return_to": "https://evil.example/ui/"}, "/return_to"},
			{"scheme-relative", map[string]any{"return_to": "//evil.example/ui/"}, "/return_to"},
			{"not the UI", map[string]any{"return_to": "/audit_logs/events"}, "/return_to"},
			{"dot segments", map[string]any{"return_to": "/ui/../portal/x"}, "/return_to"},
			{"encoded dots", map[string]any{"return_to": "/ui/%2E%2E/healthz"}, "/return_to"},
			{"backslash", map[string]any{"return_to": "/ui/\\evil.example"}, "/return_to"},
			{"control character", map[string]any{"return_to": "/ui/\r\nLocation: x"}, "/return_to"},
		} {
			body := map[string]any{"organization": org}
			for k, v := range tc.body {
				body[k] = v
			}
			res := ts.do(t, "POST", "/portal/generate_link", adminSecret, body)
			if res.Status/100 != 4 || !strings.Contains(string(res.Body), `"`+tc.field+`"`) {
				t.Errorf("%s: %d %s", tc.name, res.Status, res.Body)
			}
		}

		view := "/ui/?from=2026-11-30&to=2026-11-30"
		res := ts.do(t, "POST", "/portal/generate_link", adminSecret, map[string]any{"organization": org, "role": "admin",
			"return_to": view, "user": user(map[string]any{"time_zone": "America/Los_Angeles", "locale": "en-US"})})
		if res.Status != http.StatusCreated {
			t.Fatalf("generate_link: %d %s", res.Status, res.Body)
		}
		c := browserClient(t)
		p := get(t, c, res.JSON(t)["link"].(string))
		if p.status != 200 || !strings.Contains(p.body, `href="/ui/?from=2026-11-30&amp;to=2026-11-30"`) {
			t.Fatalf("the link does not open on its return_to: %d %s", p.status, p.body)
		}
		// Monday the 30th in Los Angeles holds the event, with its offset.
		p = get(t, c, ts.URL()+view)
		if p.status != 200 || !strings.Contains(p.body, "2026-11-30 23:30:00 −08:00") || !strings.Contains(p.body, "Times in America/Los_Angeles") {
			t.Fatalf("in Los Angeles: %d %s", p.status, p.body)
		}
		csrf := csrfField.FindStringSubmatch(p.body)[1]

		// Switched to UTC, the same view is the 30th in UTC: no event.
		r := post(t, c, ts.URL()+"/ui/zone", url.Values{"csrf": {csrf}, "utc": {"1"}, "back": {view}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != view {
			t.Fatalf("switch: %d %q", r.status, r.header.Get("Location"))
		}
		p = get(t, c, ts.URL()+view)
		if !strings.Contains(p.body, "No events match") || !strings.Contains(p.body, "Show in America/Los_Angeles") {
			t.Fatalf("in UTC: %s", p.body)
		}
		// The session remembers it, on the next page too.
		p = get(t, c, ts.URL()+"/ui/?range=all")
		if !strings.Contains(p.body, "2026-12-01 07:30:00 UTC") {
			t.Fatalf("UTC not remembered: %s", p.body)
		}
		// A shared view with tz= shows its zone whatever the session chose.
		p = get(t, c, ts.URL()+view+"&tz=America/Los_Angeles")
		if !strings.Contains(p.body, "2026-11-30 23:30:00 −08:00") || !strings.Contains(p.body, "set by this link") {
			t.Fatalf("tz=: %s", p.body)
		}
		if p = get(t, c, ts.URL()+"/ui/?tz=Mars/Olympus"); p.status != 400 || !strings.Contains(p.body, "Time zone (tz)") {
			t.Fatalf("tz=Mars/Olympus: %d %s", p.status, p.body)
		}
		// Back to the person's zone; a back address off the UI goes home.
		r = post(t, c, ts.URL()+"/ui/zone", url.Values{"csrf": {csrf}, "utc": {"0"}, "back": {"https://evil.example/"}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
			t.Fatalf("switch back: %d %q", r.status, r.header.Get("Location"))
		}
		if p = get(t, c, ts.URL()+view); !strings.Contains(p.body, "2026-11-30 23:30:00 −08:00") {
			t.Fatalf("back in Los Angeles: %s", p.body)
		}
		// An export of a shared view reads its dates in the view's zone.
		for zone, start := range map[string]string{"": "2026-11-30T08:00:00Z", "Europe/Paris": "2026-11-29T23:00:00Z"} {
			form := url.Values{"csrf": {csrf}, "format": {"csv"}, "from": {"2026-11-30"}, "to": {"2026-11-30"}}
			if zone != "" {
				form.Set("tz", zone)
			}
			r = post(t, c, ts.URL()+"/ui/exports", form)
			loc, _ := url.Parse(r.header.Get("Location"))
			if r.status != http.StatusSeeOther || !strings.HasPrefix(loc.Path, "/ui/exports/") {
				t.Fatalf("export: %d %s", r.status, r.body)
			}
			ex := ts.do(t, "GET", "/audit_logs/exports/"+strings.TrimPrefix(loc.Path, "/ui/exports/"), adminSecret, nil).JSON(t)
			if ex["range_start"] != start {
				t.Errorf("export in %q starts at %v, want %s", zone, ex["range_start"], start)
			}
		}
		if r = post(t, c, ts.URL()+"/ui/zone", url.Values{"utc": {"1"}}); r.status != http.StatusForbidden {
			t.Fatalf("switch without the form's token: %d", r.status)
		}
	})
}
