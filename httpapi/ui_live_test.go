package httpapi_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var pollAttr = regexp.MustCompile(`data-poll="([^"]*)"`)

// TestUI_Live: the audit log page names where its script asks for new
// events; the answer counts only the session's organization's events of
// the page's filter that arrived after the page's newest, refuses a bad
// filter with its reason, and needs a session.
func TestUI_Live(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org, other := ts.mustOrg(t, "org_live"), ts.mustOrg(t, "org_other")
		event := func(org, action string) {
			ev := validEvent()
			ev["action"] = action
			if res := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); res.Status/100 != 2 {
				t.Fatalf("event: %d %s", res.Status, res.Body)
			}
		}
		event(org, "user.role_granted")
		c := browserClient(t)
		get(t, c, ts.portalLink(t, org, "owner", "audit_logs"))
		p := get(t, c, ts.URL()+"/ui/?actions=user.role_granted&range=all")
		m := pollAttr.FindStringSubmatch(p.body)
		if p.status != 200 || m == nil {
			t.Fatalf("no poll address on the page: %d %s", p.status, p.body)
		}
		poll := ts.URL() + html.UnescapeString(m[1])
		if u, _ := url.Parse(poll); u.Path != "/ui/live" || u.Query().Get("before") == "" || u.Query().Get("actions") != "user.role_granted" {
			t.Fatalf("poll address %s", poll)
		}
		count := func(u string) (int, map[string]any) {
			t.Helper()
			r := get(t, c, u)
			var body map[string]any
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("%s: %d %s", u, r.status, r.body)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("live answers are cached: %q", r.header.Get("Cache-Control"))
			}
			return r.status, body
		}
		if st, body := count(poll); st != 200 || body["count"] != 0.0 || body["more"] != false {
			t.Fatalf("before new events: %d %v", st, body)
		}
		event(org, "user.role_granted")
		event(org, "user.role_granted")
		event(org, "api_key.created")     // another type
		event(other, "user.role_granted") // another organization
		if st, body := count(poll); st != 200 || body["count"] != 2.0 {
			t.Fatalf("after two new events of the view: %d %v", st, body)
		}
		// A page past the newest asks nothing; a bad filter is refused.
		if p := get(t, c, ts.URL()+"/ui/?range=all&after=x"); strings.Contains(p.body, "data-poll") {
			t.Error("a page of older events polls")
		}
		if st, body := count(ts.URL() + "/ui/live?from=nonsense"); st != http.StatusBadRequest || !strings.Contains(body["message"].(string), "From") {
			t.Fatalf("bad filter: %d %v", st, body)
		}
		if r := get(t, browserClient(t), poll); r.status != http.StatusUnauthorized {
			t.Fatalf("without a session: %d", r.status)
		}
	})
}

// TestUI_BrowserZone: a session whose link named no zone shows the
// browser's (the script's cookie) when it is a zone; a link's zone wins.
func TestUI_BrowserZone(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_bz")
		c := browserClient(t)
		get(t, c, ts.portalLink(t, org, "owner", "audit_logs"))
		base, _ := url.Parse(ts.URL() + "/ui/")
		for cookie, want := range map[string]string{
			"Europe/Paris":  "Times in Europe/Paris (this browser's zone)",
			"Mars/Olympus":  "Times in UTC",
			"Local":         "Times in UTC",
			"../etc/passwd": "Times in UTC",
		} {
			c.Jar.SetCookies(base, []*http.Cookie{{Name: "trail_zone", Value: cookie, Path: "/ui"}})
			p := get(t, c, ts.URL()+"/ui/?range=all")
			if p.status != 200 || !strings.Contains(p.body, want) {
				t.Errorf("zone cookie %q: %d, want %q in\n%s", cookie, p.status, want, p.body)
			}
			if ask := strings.Contains(p.body, "data-ask-zone"); ask != (want == "Times in UTC") {
				t.Errorf("zone cookie %q: the page asks for the browser's zone: %v", cookie, ask)
			}
		}
		res := ts.do(t, "POST", "/portal/generate_link", adminSecret, map[string]any{"organization": org, "role": "owner",
			"user": map[string]any{"id": "user_la", "time_zone": "America/Los_Angeles"}})
		get(t, c, res.JSON(t)["link"].(string))
		c.Jar.SetCookies(base, []*http.Cookie{{Name: "trail_zone", Value: "Europe/Paris", Path: "/ui"}})
		if p := get(t, c, ts.URL()+"/ui/?range=all"); !strings.Contains(p.body, "Times in America/Los_Angeles") || strings.Contains(p.body, "data-ask-zone") {
			t.Errorf("a link's zone does not win over the browser's:\n%s", p.body)
		}
	})
}

// TestUI_SignedOutComesBack: a view opened without a session says how to
// get in, and the next link opened in that browser (one without a
// return_to) comes back to the view, once; nothing else is a way back.
func TestUI_SignedOutComesBack(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_back")
		c := browserClient(t)
		view := "/ui/?actions=user.role_granted&range=7d"
		p := get(t, c, ts.URL()+view)
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "brings you back here") {
			t.Fatalf("signed out: %d %s", p.status, p.body)
		}
		cookie := p.header.Get("Set-Cookie")
		for _, want := range []string{"trail_return=", "Path=/portal/", "HttpOnly", "SameSite=Lax", "Max-Age=3600"} {
			if !strings.Contains(cookie, want) {
				t.Errorf("the return cookie %q lacks %s", cookie, want)
			}
		}
		// The page's script asking for new events is not a view to come back to.
		if r := get(t, browserClient(t), ts.URL()+"/ui/live?range=7d"); r.status != http.StatusUnauthorized || r.header.Get("Set-Cookie") != "" {
			t.Errorf("/ui/live signed out: %d, %q", r.status, r.header.Get("Set-Cookie"))
		}
		opening := func(c *http.Client, body map[string]any) string {
			t.Helper()
			body["organization"], body["role"] = org, "admin"
			body["user"] = map[string]any{"id": "user_back"}
			res := ts.do(t, "POST", "/portal/generate_link", adminSecret, body)
			p := get(t, c, res.JSON(t)["link"].(string))
			m := regexp.MustCompile(`content="0;url=([^"]*)"`).FindStringSubmatch(p.body)
			if p.status != 200 || m == nil {
				t.Fatalf("open: %d %s", p.status, p.body)
			}
			return html.UnescapeString(m[1])
		}
		if next := opening(c, map[string]any{}); next != view {
			t.Fatalf("the new link opens %q, want %q", next, view)
		}
		if p := get(t, c, ts.URL()+view); p.status != 200 {
			t.Fatalf("the view after the new link: %d", p.status)
		}
		if next := opening(c, map[string]any{}); next != "/ui/" {
			t.Fatalf("the way back is used twice: %q", next)
		}
		// A link's own return_to wins.
		get(t, browserClient(t), ts.URL()+view)
		c2 := browserClient(t)
		get(t, c2, ts.URL()+view)
		if next := opening(c2, map[string]any{"return_to": "/ui/settings"}); next != "/ui/settings" {
			t.Fatalf("with return_to: %q", next)
		}
		// A return cookie that is not a UI path (planted, or altered) is
		// no redirect.
		c3 := browserClient(t)
		base, _ := url.Parse(ts.URL() + "/portal/")
		for _, bad := range []string{"https%3A%2F%2Fevil.example%2Fui%2F", "%2F%2Fevil.example", "%2Fui%2F..%2Fportal", "%2Fhealthz"} {
			c3.Jar.SetCookies(base, []*http.Cookie{{Name: "trail_return", Value: bad, Path: "/portal/"}})
			if next := opening(c3, map[string]any{}); next != "/ui/" {
				t.Errorf("return cookie %q leads to %q", bad, next)
			}
		}
	})
}
