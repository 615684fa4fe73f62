package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/httpapi"
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
