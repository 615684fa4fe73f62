package httpapi_test

import (
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/internal/testwait"
)

// internals are what a tenant must never read in a stream's errors: the
// resolver, Go's error text, an IP address of Trail's network.
// A resolver's port after a host name or an IPv6 address ("dns:53",
// "[::1]:53"), not a time whose seconds are 53 ("21:51:53 UTC", in the
// Last error column): the test failed on such a minute.
var internals = regexp.MustCompile(`lookup|[A-Za-z\]]:53\b|dial|tcp|x509|\d+\.\d+\.\d+\.\d+|::|no such host|connect:`)

// TestStreams_ErrorsHideInternals: a stream's test result and its
// last_error, read through the API, name the kind of failure (DNS,
// refused, TLS) and nothing of the network behind it.
func TestStreams_ErrorsHideInternals(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_errors")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	untrusted.StartTLS()
	defer untrusted.Close()
	browser := browserClient(t)
	get(t, browser, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentLogStreams))
	for _, c := range []struct {
		url, want string
	}{
		{"https://nonexistent.invalid/hook", delivery.MsgDNS},
		{"https://" + closed + "/hook", delivery.MsgRefused},
		{untrusted.URL + "/hook", delivery.MsgTLSUntrusted},
	} {
		r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "e",
			"config": map[string]any{"url": c.url}})
		if r.Status != 201 {
			t.Fatalf("create %s: %d %s", c.url, r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		tr := ts.do(t, "POST", "/audit_logs/streams/"+id+"/test", adminSecret, nil).JSON(t)
		if tr["success"] != false || tr["error"] != c.want {
			t.Errorf("test of %s: %v, want the error %q", c.url, tr, c.want)
		}
		if m := internals.FindString(tr["error"].(string)); m != "" {
			t.Errorf("test of %s: %q shows %q", c.url, tr["error"], m)
		}
		var st map[string]any
		testwait.For(t, 30*time.Second, "the stream's last_error", func() bool {
			st = ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil).JSON(t)
			return st["last_error"] != ""
		})
		if st["last_error"] != c.want {
			t.Errorf("last_error of %s: %q, want %q", c.url, st["last_error"], c.want)
		}
		if m := internals.FindString(st["last_error"].(string)); m != "" {
			t.Errorf("last_error of %s: %q shows %q", c.url, st["last_error"], m)
		}
		// The web UI's Test button and Last error column say the same.
		p := get(t, browser, ts.URL()+"/ui/settings")
		csrf := csrfField.FindStringSubmatch(p.body)[1]
		res := post(t, browser, ts.URL()+"/ui/streams/"+id+"/test", url.Values{"csrf": {csrf}})
		row := regexp.MustCompile(`(?s)<tr id="stream-` + id + `">.*?</tr>`).FindString(p.body)
		result := regexp.MustCompile(`(?s)<div class="notice bad" role="alert" id="test-result">.*?</div>`).FindString(res.body)
		for _, part := range []string{row, result} {
			if !strings.Contains(part, html.EscapeString(c.want)) || internals.FindString(part) != "" {
				t.Errorf("the UI of %s shows %q, or not %q: %s", c.url, internals.FindString(part), c.want, part)
			}
		}
	}
}
