package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

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
