package httpapi_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
)

// browserClient is a cookie-keeping client that does not follow
// redirects, as a browser session seen from Go.
func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header, string(b)}
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr ...string) page {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header, string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

// TestPortal_GenerateLink: the WorkOS body and Trail's additions, every
// refusal naming its field and storing nothing, permissions and tenants.
func TestPortal_GenerateLink(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_portal")
		other := ts.mustOrg(t, "org_other")
		before := ts.count(t, org)

		// A WorkOS SDK's body: an admin the application does not name.
		res := ts.do(t, "POST", "/portal/generate_link", adminSecret, map[string]any{"organization": org, "intent": "audit_logs",
			"return_url": "https://app.example/settings", "success_url": "https://app.example/done", "it_contact_emails": []string{"it@example.com"}})
		if res.Status != http.StatusCreated {
			t.Fatalf("WorkOS body: %d %s", res.Status, res.Body)
		}
		link := res.JSON(t)["link"].(string)
		if !strings.HasPrefix(link, ts.URL()+"/portal/") || len(link) < len(ts.URL())+40 {
			t.Fatalf("link %q", link)
		}
		c := browserClient(t)
		p := get(t, c, link)
		if p.status != 200 || !strings.Contains(p.body, `content="0;url=/ui/"`) {
			t.Fatalf("opening the link: %d %s", p.status, p.body)
		}
		p = get(t, c, ts.URL()+"/ui/")
		if p.status != 200 || !strings.Contains(p.body, "admin") {
			t.Fatalf("an unnamed admin: %d", p.status)
		}

		for _, tc := range []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"no organization", map[string]any{"intent": "audit_logs"}, 422, "organization"},
			{"organization not a string", map[string]any{"organization": 7}, 422, "organization"},
			{"unknown field", map[string]any{"organization": org, "colour": "red"}, 422, "colour"},
			{"other intent", map[string]any{"organization": org, "intent": "sso"}, 400, "/intent"},
			{"unknown role", map[string]any{"organization": org, "role": "superuser"}, 400, "/role"},
			{"user without id", map[string]any{"organization": org, "user": map[string]any{"email": "a@b.c"}}, 422, "user.id"},
			{"user not an object", map[string]any{"organization": org, "user": "ada"}, 422, "user"},
			{"unknown user field", map[string]any{"organization": org, "user": map[string]any{"id": "u", "phone": "1"}}, 422, "user.phone"},
			{"long name", map[string]any{"organization": org, "user": map[string]any{"id": "u", "name": strings.Repeat("n", 300)}}, 400, "/user/name"},
			{"too many emails", map[string]any{"organization": org, "it_contact_emails": make([]string, 21)}, 400, "/it_contact_emails"},
			{"unknown organization", map[string]any{"organization": "org_nope"}, 404, ""},
			{"not JSON", "{", 422, "body"},
		} {
			res := ts.do(t, "POST", "/portal/generate_link", adminSecret, tc.body)
			if res.Status != tc.status {
				t.Errorf("%s: %d %s", tc.name, res.Status, res.Body)
				continue
			}
			if tc.field != "" && !strings.Contains(string(res.Body), `"`+tc.field+`"`) {
				t.Errorf("%s: the error does not name %s: %s", tc.name, tc.field, res.Body)
			}
		}

		// The portal permission, and only for the key's organization.
		noPortal := ts.mustKey(t, org, trail.PermEventsRead)
		if res := ts.do(t, "POST", "/portal/generate_link", noPortal, map[string]any{"organization": org}); res.Status != 403 {
			t.Fatalf("without the portal permission: %d", res.Status)
		}
		scoped := ts.mustKey(t, org, trail.PermPortal)
		if res := ts.do(t, "POST", "/portal/generate_link", scoped, map[string]any{"organization": other}); res.Status != 404 {
			t.Fatalf("another tenant's organization: %d %s", res.Status, res.Body)
		}
		if res := ts.do(t, "POST", "/portal/generate_link", scoped, map[string]any{"organization": org, "role": "owner",
			"user": map[string]any{"id": "user_1"}}); res.Status != 201 {
			t.Fatalf("a scoped key: %d %s", res.Status, res.Body)
		}
		if res := ts.do(t, "POST", "/portal/generate_link", "", map[string]any{"organization": org}); res.Status != 401 {
			t.Fatalf("without a key: %d", res.Status)
		}
		// Refusals stored nothing: the session opened and the two keys
		// created are all that was recorded.
		if got := ts.count(t, org); got != before+3 {
			t.Fatalf("%d events recorded, want 3 (the session opened, two keys)", got-before)
		}
	})
}

// TestPortal_Session: the cookie, the pages' headers, CSRF, the API's
// refusal of the cookie, the member's refusal, sign out and expiry.
func TestPortal_Session(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_session")
		c := browserClient(t)

		// No session: every page asks for a link, and shows no data.
		if p := get(t, c, ts.URL()+"/ui/"); p.status != 401 || !strings.Contains(p.body, "You are signed out") {
			t.Fatalf("without a session: %d", p.status)
		}
		link := ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs)
		res, err := c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		var cookie *http.Cookie
		for _, ck := range res.Cookies() {
			if ck.Name == httpapi.SessionCookie {
				cookie = ck
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge != 12*3600 || cookie.Path != "/" {
			t.Fatalf("session cookie %+v", cookie)
		}
		if res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("the link page's Referrer-Policy %q", res.Header.Get("Referrer-Policy"))
		}
		// A used link is refused, and opens no second session.
		if p := get(t, browserClient(t), link); p.status != http.StatusGone || !strings.Contains(p.body, "already used") {
			t.Fatalf("a used link: %d", p.status)
		}

		p := get(t, c, ts.URL()+"/ui/")
		if p.status != 200 {
			t.Fatalf("/ui/: %d", p.status)
		}
		for name, want := range map[string]string{"Content-Security-Policy": httpapi.ContentSecurityPolicy, "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"} {
			if got := p.header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		// Its only script is Trail's own file, under /ui/assets/.
		scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(p.body, -1)
		if strings.Contains(p.body, "style=") || len(scripts) != 1 || !regexp.MustCompile(`^<script src="/ui/assets/trail\.[0-9a-f]{12}\.js" defer>$`).MatchString(scripts[0]) ||
			strings.Count(p.body, "</script>") != 1 || !strings.Contains(p.body, scripts[0]+"</script>") {
			t.Errorf("a page has an inline script or style: %q", scripts)
		}
		for _, m := range regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(p.body, -1) {
			if !strings.HasPrefix(m[1], "#") && (!strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//")) {
				t.Errorf("the page links outside: %q", m[1])
			}
		}
		// Hashed assets are immutable.
		asset := regexp.MustCompile(`/ui/assets/style\.[0-9a-f]{12}\.css`).FindString(p.body)
		if a := get(t, c, ts.URL()+asset); asset == "" || a.status != 200 || a.header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			a.header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Fatalf("asset %q: %d %v", asset, a.status, a.header)
		}
		if a := get(t, c, ts.URL()+"/ui/assets/nope.css"); a.status != 404 {
			t.Fatalf("unknown asset: %d", a.status)
		}

		// The cookie is no API key.
		req, _ := http.NewRequest("GET", ts.URL()+"/audit_logs/events?organization_id="+org, nil)
		req.AddCookie(&http.Cookie{Name: httpapi.SessionCookie, Value: cookie.Value})
		apiRes, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		apiRes.Body.Close()
		if apiRes.StatusCode != 401 {
			t.Fatalf("the API with the session cookie: %d", apiRes.StatusCode)
		}

		// CSRF: a form without the token, with another session's, or from
		// another origin is refused and changes nothing.
		csrf := csrfField.FindStringSubmatch(p.body)
		if csrf == nil {
			t.Fatal("no CSRF token in the page")
		}
		before := ts.count(t, org)
		form := url.Values{"format": {"csv"}, "range": {"all"}}
		if r := post(t, c, ts.URL()+"/ui/exports", form); r.status != 403 || !strings.Contains(r.body, "Request refused") {
			t.Fatalf("without a token: %d", r.status)
		}
		form.Set("csrf", strings.Repeat("0", 64))
		if r := post(t, c, ts.URL()+"/ui/exports", form); r.status != 403 {
			t.Fatalf("with a wrong token: %d", r.status)
		}
		form.Set("csrf", csrf[1])
		if r := post(t, c, ts.URL()+"/ui/exports", form, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); r.status != 403 {
			t.Fatalf("from another site: %d", r.status)
		}
		if got := ts.count(t, org); got != before {
			t.Fatalf("refused forms recorded %d events", got-before)
		}
		r := post(t, c, ts.URL()+"/ui/exports", form)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/exports/") {
			t.Fatalf("an export with the token: %d %s", r.status, r.body)
		}
		if p := get(t, c, ts.URL()+r.header.Get("Location")); p.status != 200 || !strings.Contains(p.body, "Export") {
			t.Fatalf("the export page: %d", p.status)
		}

		portalSessionTenants(t, ts, c, csrf[1])
		portalSessionMember(t, ts, org)

		// Sessions last twelve hours.
		ts.Clock.Add(int64(12*time.Hour + time.Minute))
		if p := get(t, c, ts.URL()+"/ui/"); p.status != 401 {
			t.Fatalf("after twelve hours: %d", p.status)
		}
	})
}

// portalSessionMember: a member gets a clear refusal with no data, on every page, and signs out at once.
func portalSessionMember(t *testing.T, ts *testServer, org string) {
	// A member: a clear refusal with no data, on every page.
	m := browserClient(t)
	get(t, m, ts.portalLink(t, org, trail.RoleMember, trail.IntentAuditLogs))
	for _, path := range []string{"/ui/", "/ui/settings", "/ui/log.key", "/ui/checkpoint.txt", "/ui/streams/new"} {
		if p := get(t, m, ts.URL()+path); p.status != 403 || !strings.Contains(p.body, "You need the Owner or Admin role") {
			t.Fatalf("member on %s: %d", path, p.status)
		}
	}
	mcsrf := csrfField.FindStringSubmatch(get(t, m, ts.URL()+"/ui/").body)
	if r := post(t, m, ts.URL()+"/ui/exports", url.Values{"csrf": {mcsrf[1]}, "format": {"csv"}}); r.status != 403 ||
		!strings.Contains(r.body, "You need the Owner or Admin role") {
		t.Fatalf("a member's export: %d", r.status)
	}
	// Sign out ends the session at once.
	if r := post(t, m, ts.URL()+"/ui/logout", url.Values{"csrf": {mcsrf[1]}}); r.status != 200 || !strings.Contains(r.body, "Signed out") {
		t.Fatalf("sign out: %d", r.status)
	}
	if p := get(t, m, ts.URL()+"/ui/"); p.status != 401 {
		t.Fatalf("after sign out: %d", p.status)
	}
}

// portalSessionTenants: another organization's event or stream is not found by a session.
func portalSessionTenants(t *testing.T, ts *testServer, c *http.Client, csrf string) {
	// Another organization's event or stream is not found.
	other := ts.mustOrg(t, "org_else")
	if res := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": other, "event": validEvent()}); res.Status != 200 {
		t.Fatalf("event: %d %s", res.Status, res.Body)
	}
	ids := ts.allIDs(t, other)
	if p := get(t, c, ts.URL()+"/ui/events/"+ids[0]); p.status != 404 || strings.Contains(p.body, "org_else") {
		t.Fatalf("another tenant's event: %d", p.status)
	}
	ex := ts.do(t, "POST", "/audit_logs/exports", adminSecret, map[string]any{"organization_id": other,
		"range_start": "2020-01-01T00:00:00Z", "range_end": "2030-01-01T00:00:00Z"})
	st := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": other, "type": "GenericHttps",
		"name": "theirs", "config": map[string]any{"url": "https://siem.example.com/x"}})
	if ex.Status != 201 || st.Status != 201 {
		t.Fatalf("export %d, stream %d", ex.Status, st.Status)
	}
	exID, stID := ex.JSON(t)["id"].(string), st.JSON(t)["id"].(string)
	for _, path := range []string{"/ui/exports/" + exID, "/ui/exports/" + exID + "/checkpoint.txt", "/ui/streams/" + stID} {
		if p := get(t, c, ts.URL()+path); p.status != 404 || strings.Contains(p.body, "theirs") {
			t.Fatalf("another tenant's %s: %d", path, p.status)
		}
	}
	for _, op := range []string{"pause", "delete", "test"} {
		if r := post(t, c, ts.URL()+"/ui/streams/"+stID+"/"+op, url.Values{"csrf": {csrf}}); r.status != 404 {
			t.Fatalf("%s another tenant's stream: %d", op, r.status)
		}
	}
	if r := post(t, c, ts.URL()+"/ui/streams/"+stID, url.Values{"csrf": {csrf}, "name": {"mine"}}); r.status != 404 {
		t.Fatalf("edit another tenant's stream: %d", r.status)
	}
	// (Its worker may have tried it and put it in error: any state
	// but paused, and its name.)
	if got := ts.do(t, "GET", "/audit_logs/streams/"+stID, adminSecret, nil).JSON(t); got["state"] == "inactive" || got["name"] != "theirs" {
		t.Fatalf("another tenant's stream changed: %v", got)
	}
}

// TestUI_Pages: bad filters are a clear 400 on the page, unknown pages
// and resources a 404, and a form's empty fields leave the URL.
func TestUI_Pages(t *testing.T) {
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_pages")
	uiEvents(t, ts, org)
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/ui/?range=all", 200, "Grace Hopper"},
		{"/ui/?range=bogus", 400, "unknown preset"},
		{"/ui/?from=yesterday", 400, "is not a date (YYYY-MM-DD)"},
		{"/ui/?to=2300-01-01", 400, "from 1970 to 2261"},
		{"/ui/?from=1969-12-31T23:00", 400, "from 1970 to 2261"},
		{"/ui/?from=2026-01-02T00:00&to=2026-01-01T00:00", 400, "Until must be after From"},
		{"/ui/?actions=Not+An+Action!", 400, "Event type"},
		{"/ui/?after=garbage&range=all", 400, "Page"},
		{"/ui/events/nope", 404, "Not found"},
		{"/ui/exports/nope", 404, "Not found"},
		{"/ui/streams/nope", 404, "Not found"},
		{"/ui/nowhere", 404, "Page not found"},
		{"/ui/streams/new?type=Splunk", 200, "HEC token"},
		{"/ui/settings", 200, "Verifier key"},
	} {
		p := get(t, c, ts.URL()+tc.path)
		if p.status != tc.status || !strings.Contains(p.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.path, p.status, tc.status, tc.want)
		}
	}
	// A bad filter's page marks its field, and offers no export and no
	// presets that would lead to the same error.
	for path, field := range map[string]string{"/ui/?from=yesterday": "from", "/ui/?from=2026-01-02&to=2026-01-01": "to", "/ui/?actions=Not+An+Action!": "actions"} {
		p := get(t, c, ts.URL()+path)
		if !strings.Contains(p.body, `id="`+field+`" aria-invalid="true" aria-errormessage="page-error"`) || !strings.Contains(p.body, `id="page-error"`) ||
			strings.Contains(p.body, `action="/ui/exports"`) || strings.Contains(p.body, `class="presets"`) || strings.Count(p.body, `aria-invalid`) != 1 {
			t.Errorf("%s: the error is not tied to %s, or export and presets are offered:\n%s", path, field, p.body)
		}
	}
	// The page's title names the view.
	if p := get(t, c, ts.URL()+"/ui/?actions=user.role_granted&range=7d"); !strings.Contains(p.body, "<title>Event type: user.role_granted · Last 7 days · Audit log · Trail</title>") {
		t.Errorf("title: %s", p.body[:300])
	}
	// Empty form fields are dropped: the URL to share is the short one.
	p := get(t, c, ts.URL()+"/ui/?q=&actions=user.role_granted&actor_ids=&targets=&target_ids=&from=&to=&range=30d")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/?actions=user.role_granted" {
		t.Fatalf("redirect %d to %q", p.status, p.header.Get("Location"))
	}
}
