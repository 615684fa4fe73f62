package httpapi_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/jsonschema"
)

// forged are the headers a client may send to make Trail build links to a
// host of its choosing.
var forged = []string{"Host", "evil.example", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https",
	"Forwarded", "host=evil.example;proto=https", "X-Forwarded-Port", "6666"}

// TestLinks_NeverFromRequestHeaders: portal links and export download
// URLs are built from --public-url or the listen address, whatever Host,
// X-Forwarded-* or Forwarded say (issue 16, point 8).
func TestLinks_NeverFromRequestHeaders(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		for _, tc := range []struct {
			name      string
			publicURL string
		}{
			{"ListenAddress", ""},
			{"PublicURL", "https://trail.example.com/"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ts := newTestServer(t, func(s *httpapi.Server, _ *jsonschema.Validator) { s.PublicURL = tc.publicURL })
				want := strings.TrimSuffix(tc.publicURL, "/")
				if want == "" {
					want = ts.URL()
				}
				org := ts.mustOrg(t, "org_links")
				check := func(what, link string) {
					t.Helper()
					if strings.Contains(link, "evil.example") || strings.Contains(link, "6666") || !strings.HasPrefix(link, want+"/") {
						t.Errorf("%s %q: want a link under %s, never to the request's host", what, link, want)
					}
				}

				res := ts.do(t, "POST", "/portal/generate_link", adminSecret, map[string]any{"organization": org}, forged...)
				if res.Status != http.StatusCreated {
					t.Fatalf("generate_link: %d %s", res.Status, res.Body)
				}
				check("portal link", res.JSON(t)["link"].(string))

				res = ts.do(t, "POST", "/audit_logs/exports", adminSecret, map[string]any{"organization_id": org,
					"range_start": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, forged...)
				if res.Status != http.StatusCreated {
					t.Fatalf("create export: %d %s", res.Status, res.Body)
				}
				id := res.JSON(t)["id"].(string)
				if ex := ts.waitExport(t, adminSecret, id); ex["state"] != "ready" {
					t.Fatalf("export %v", ex)
				}
				res = ts.do(t, "GET", "/audit_logs/exports/"+id, adminSecret, nil, forged...)
				if res.Status != 200 {
					t.Fatalf("GET export: %d %s", res.Status, res.Body)
				}
				link := res.JSON(t)["url"].(string)
				check("export url", link)
				if tc.publicURL == "" {
					if status, _, _ := download(t, link); status != 200 {
						t.Errorf("the listen address's download link: %d", status)
					}
				}
			})
		}
	})
}

// TestMetrics_NeedAnInstanceKey: /metrics names every tenant's log
// streams, so it needs an instance-wide key with the metrics permission
// (issue 16, point 9).
func TestMetrics_NeedAnInstanceKey(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_metrics_keys")
		for _, tc := range []struct {
			name   string
			key    string
			status int
		}{
			{"NoKey", "", 401},
			{"UnknownKey", "sk_unknown_0123456789abcdefghijklmnopqrstu", 401},
			{"WithoutMetrics", ts.mustKey(t, "", trail.PermEventsRead, trail.PermStreams, trail.PermKeys), 403},
			{"Metrics", ts.mustKey(t, "", trail.PermMetrics), 200},
			{"Admin", adminSecret, 200},
			{"OrganizationAdmin", ts.mustKey(t, org, trail.PermAdmin), 403},
			{"OrganizationStreams", ts.mustKey(t, org, trail.PermStreams, trail.PermEventsRead), 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ts.do(t, "GET", "/metrics", tc.key, nil)
				if r.Status != tc.status {
					t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.status)
				}
				isText := strings.Contains(string(r.Body), "# TYPE trail_http_requests_total counter")
				if isText != (tc.status == 200) {
					t.Fatalf("Prometheus text served %v with status %d: %.200s", isText, r.Status, r.Body)
				}
				if tc.status != 200 && r.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("a refusal is a JSON error: %q", r.Header.Get("Content-Type"))
				}
			})
		}
		// An organization's key cannot hold the permission at all, through
		// the API or directly on the database.
		r := ts.do(t, "POST", "/api_keys", adminSecret, map[string]any{"name": "m", "organization_id": org, "permissions": []string{"metrics"}})
		if r.Status != 400 || !strings.Contains(string(r.Body), "instance-wide") {
			t.Fatalf("an organization's key with metrics: %d %s", r.Status, r.Body)
		}
		k := &trail.APIKey{Name: "m", OrganizationID: org, Permissions: []trail.Permission{trail.PermMetrics}}
		if err := ts.Keys.CreateAPIKey(t.Context(), k); trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("an organization's key with metrics on the database: %v", err)
		}
		r = ts.do(t, "POST", "/api_keys", adminSecret, map[string]any{"name": "m", "permissions": []string{"metrics"}})
		if r.Status != 201 {
			t.Fatalf("an instance key with metrics: %d %s", r.Status, r.Body)
		}
		if r := ts.do(t, "GET", "/metrics", r.JSON(t)["secret"].(string), nil); r.Status != 200 {
			t.Fatalf("the new metrics key: %d", r.Status)
		}
	})
}

// TestAuthorization_SchemeCaseInsensitive: RFC 9110 makes the scheme
// case-insensitive and allows one or more spaces after it (issue 16,
// point 10a).
func TestAuthorization_SchemeCaseInsensitive(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		for _, tc := range []struct {
			header string
			status int
		}{
			{"Bearer " + adminSecret, 200},
			{"bearer " + adminSecret, 200},
			{"BEARER " + adminSecret, 200},
			{"bEaReR " + adminSecret, 200},
			{"Bearer   " + adminSecret, 200},
			{"Bearer", 401},
			{"Bearer ", 401},
			{"Bearer" + adminSecret, 401},
			{"Basic " + adminSecret, 401},
			{"Bearers " + adminSecret, 401},
			{adminSecret, 401},
			{"Bearer\t" + adminSecret, 401},
		} {
			r := ts.do(t, "GET", "/api_keys/me", "", nil, "Authorization", tc.header)
			if r.Status != tc.status {
				t.Errorf("Authorization: %q: %d %s, want %d", strings.Replace(tc.header, adminSecret, "sk_…", 1), r.Status, r.Body, tc.status)
			}
		}
	})
}

// TestExports_CSVGuardsBlankThenFormula: a cell whose first non-blank
// character starts a formula is guarded in a real export (issue 16, point
// 10d).
func TestExports_CSVGuardsBlankThenFormula(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_csv_guard")
		ev := validEvent()
		ev["actor"] = map[string]any{"id": "  @SUM(A1)", "type": "user", "name": " =1+1"}
		ev["targets"] = []any{map[string]any{"id": "\u00a0+1", "type": "team", "name": "a=b"}}
		ev["context"] = map[string]any{"location": "\u200b=HYPERLINK(\"http://x\")", "user_agent": "\t=cmd"}
		if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); r.Status != 200 {
			t.Fatalf("event: %d %s", r.Status, r.Body)
		}
		_, file := ts.exportFile(t, adminSecret, map[string]any{"organization_id": org, "actions": []string{"alert_route.updated"},
			"range_start": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		rows := readCSV(t, file)
		if len(rows) != 1 {
			t.Fatalf("%d rows:\n%s", len(rows), file)
		}
		col := map[string]int{}
		for i, c := range export.Columns {
			col[c] = i
		}
		for name, want := range map[string]string{
			"actor_id": "'  @SUM(A1)", "actor_name": "' =1+1", "target_ids": "'\u00a0+1", "target_names": "a=b",
			"location": "'\u200b=HYPERLINK(\"http://x\")", "user_agent": "'\t=cmd",
		} {
			if got := rows[0][col[name]]; got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	})
}

// TestStreams_UpdatedListsOnlyRealChanges: log_stream.updated lists what
// really changed; a secret sent back masked keeps the stored one and is
// no change, a PATCH that changes nothing records nothing, and a new
// secret is listed by name only (issue 16, point 10b).
func TestStreams_UpdatedListsOnlyRealChanges(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_stream_changes")
		var verify atomic.Pointer[standardwebhooks.Webhook]
		rcv := receiver.NewWebhook(false, func(b []byte, h http.Header) error {
			if wh := verify.Load(); wh != nil {
				return wh.Verify(b, h)
			}
			return errors.New("no secret yet")
		})
		defer rcv.Close()
		r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "hook",
			"config": map[string]any{"url": rcv.URL(), "headers": map[string]string{"Authorization": "Bearer siem-token", "X-Team": "sec"}}})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		secret := r.JSON(t)["config"].(map[string]any)["secret"].(string)
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		verify.Store(wh)
		// The stream as GET reads it, sent back whole.
		asRead := ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil).JSON(t)
		readBack := map[string]any{"name": asRead["name"], "config": asRead["config"]}
		updates := func() []map[string]any {
			t.Helper()
			r := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&actions=log_stream.updated&limit=100", adminSecret, nil)
			if r.Status != 200 {
				t.Fatalf("events: %d %s", r.Status, r.Body)
			}
			var out []map[string]any
			for _, e := range r.JSON(t)["data"].([]any) {
				out = append(out, e.(map[string]any))
			}
			return out
		}
		delivers := func(what string) {
			t.Helper()
			if r := ts.do(t, "POST", "/audit_logs/streams/"+id+"/test", adminSecret, nil); r.Status != 200 || r.JSON(t)["success"] != true {
				t.Fatalf("%s: the receiver no longer verifies the stream's signature: %d %s", what, r.Status, r.Body)
			}
		}
		generation := func() int64 {
			st, err := ts.Streams.FindStreamByID(t.Context(), org, id)
			if err != nil {
				t.Fatal(err)
			}
			return st.Generation
		}

		t.Run("NothingChanged", func(t *testing.T) {
			g := generation()
			for _, body := range []map[string]any{readBack, {"config": map[string]any{"secret": trail.MaskedSecret}}, {}} {
				r := ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, body)
				if r.Status != 200 || r.JSON(t)["name"] != "hook" {
					t.Fatalf("PATCH %v: %d %s", body, r.Status, r.Body)
				}
			}
			if u := updates(); len(u) != 0 {
				t.Fatalf("a PATCH that changed nothing recorded %v", u)
			}
			if g2 := generation(); g2 != g {
				t.Fatalf("a PATCH that changed nothing touched the stream: generation %d → %d", g, g2)
			}
			delivers("the masked secret sent back")
		})
		t.Run("MaskedSecretWithARealChange", func(t *testing.T) {
			body := map[string]any{"name": "renamed", "config": map[string]any{"url": rcv.URL(), "format": "json", "secret": trail.MaskedSecret,
				"headers": map[string]string{"Authorization": trail.MaskedSecret, "X-Team": trail.MaskedSecret}}}
			if r := ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, body); r.Status != 200 {
				t.Fatalf("PATCH: %d %s", r.Status, r.Body)
			}
			u := updates()
			if len(u) != 1 || u[0]["metadata"].(map[string]any)["changed"] != "name" {
				t.Fatalf("want one log_stream.updated listing name only: %v", u)
			}
			delivers("the masked secret sent back with a new name")
		})
		t.Run("NewSecret", func(t *testing.T) {
			fresh := trail.NewWebhookSecret()
			body := map[string]any{"config": map[string]any{"secret": fresh, "headers": map[string]string{"Authorization": trail.MaskedSecret, "X-Team": "ops"}}}
			if r := ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, body); r.Status != 200 {
				t.Fatalf("PATCH: %d %s", r.Status, r.Body)
			}
			u := updates()
			if len(u) != 2 || u[0]["metadata"].(map[string]any)["changed"] != "headers,secret" {
				t.Fatalf("want a second log_stream.updated listing headers,secret: %v", u)
			}
			r := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&limit=100", adminSecret, nil)
			for _, leaked := range []string{fresh, fresh[6:], secret[6:], "siem-token", "ops"} {
				if strings.Contains(string(r.Body), leaked) {
					t.Fatalf("the log holds a secret value %q", leaked)
				}
			}
			wh, err := standardwebhooks.NewWebhook(fresh)
			if err != nil {
				t.Fatal(err)
			}
			verify.Store(wh)
			delivers("the new secret")
		})
	})
}

// TestRateLimit_PerOrganization: sibling keys of one organization, each
// under its own limit, share the organization's budget; instance-wide
// keys draw from the budget of the organization the query or path
// names; another organization is unaffected (issue 16, point 10c).
func TestRateLimit_PerOrganization(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t, func(s *httpapi.Server, _ *jsonschema.Validator) { s.RateLimit, s.OrgRateLimit = 5, 8 })
		org, other := ts.mustOrg(t, "org_budget"), ts.mustOrg(t, "org_budget_other")
		a := ts.mustKey(t, org, trail.PermEventsRead, trail.PermKeys)
		// A sibling minted by a: its own per-key budget, not its own
		// organization budget.
		r := ts.do(t, "POST", "/api_keys", a, map[string]any{"name": "sibling", "permissions": []string{"events:read"}})
		if r.Status != 201 {
			t.Fatalf("mint a sibling: %d %s", r.Status, r.Body)
		}
		b := r.JSON(t)["secret"].(string)
		list := "/audit_logs/events?organization_id=" + org + "&limit=1"
		// a has spent 1 of the organization's 8; 4 more from a, 3 from b.
		for i := range 4 {
			if r := ts.do(t, "GET", list, a, nil); r.Status != 200 {
				t.Fatalf("a's request %d: %d %s", i+2, r.Status, r.Body)
			}
		}
		for i := range 3 {
			if r := ts.do(t, "GET", list, b, nil); r.Status != 200 {
				t.Fatalf("b's request %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		// b is under its own limit (3 of 5) but the organization is not.
		r = ts.do(t, "GET", list, b, nil)
		if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.JSON(t)["code"] != trail.ERATELIMITED {
			t.Fatalf("over the organization's budget: %d %v %s", r.Status, r.Header, r.Body)
		}
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		// An instance-wide key acting on the organization shares its
		// budget; acting on none, or on another, it does not.
		wide := ts.mustKey(t, "", trail.PermEventsRead, trail.PermOrganizations)
		if r := ts.do(t, "GET", list, wide, nil); r.Status != 429 {
			t.Fatalf("an instance key naming the organization in the query: %d", r.Status)
		}
		if r := ts.do(t, "GET", "/organizations/"+org, wide, nil); r.Status != 429 {
			t.Fatalf("an instance key naming the organization in the path: %d", r.Status)
		}
		if r := ts.do(t, "GET", "/organizations?limit=1", wide, nil); r.Status != 200 {
			t.Fatalf("an instance key naming no organization: %d %s", r.Status, r.Body)
		}
		// Another organization is unaffected.
		c := ts.mustKey(t, other, trail.PermEventsRead)
		if r := ts.do(t, "GET", "/audit_logs/events?organization_id="+other+"&limit=1", c, nil); r.Status != 200 {
			t.Fatalf("another organization's key: %d %s", r.Status, r.Body)
		}
		if r := ts.do(t, "GET", "/audit_logs/events?organization_id="+other+"&limit=1", wide, nil); r.Status != 200 {
			t.Fatalf("an instance key on another organization: %d %s", r.Status, r.Body)
		}
	})
}

// TestRateLimit_RefusedRequestCostsNothing: a request the organization's
// budget refuses takes no token from the key's own budget.
func TestRateLimit_RefusedRequestCostsNothing(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite", func(s *httpapi.Server, _ *jsonschema.Validator) { s.RateLimit, s.OrgRateLimit = 3, 2 })
	org, other := ts.mustOrg(t, "org_cost"), ts.mustOrg(t, "org_cost_other")
	wide := ts.mustKey(t, "", trail.PermEventsRead)
	for i, want := range []int{200, 200, 429, 429, 429} {
		if r := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&limit=1", wide, nil); r.Status != want {
			t.Fatalf("request %d on %s: %d, want %d", i+1, org, r.Status, want)
		}
	}
	// 2 of the key's 3 spent: one more, on another organization.
	if r := ts.do(t, "GET", "/audit_logs/events?organization_id="+other+"&limit=1", wide, nil); r.Status != 200 {
		t.Fatalf("the key's last token: %d %s", r.Status, r.Body)
	}
	if r := ts.do(t, "GET", "/audit_logs/events?organization_id="+other+"&limit=1", wide, nil); r.Status != 429 {
		t.Fatalf("past the key's own budget: %d", r.Status)
	}
}
