package httpapi_test

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/internal/testwait"
)

// internals are what a tenant must never read in a stream's errors: the
// resolver, Go's error text, an IP address of Trail's network.
var internals = regexp.MustCompile(`lookup|:53\b|dial|tcp|x509|\d+\.\d+\.\d+\.\d+|::|no such host|connect:`)

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
	}
}
