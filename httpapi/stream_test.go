package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/jsonschema"
)

// actions returns the actions of an organization's log, oldest first.
func (ts *testServer) actions(t *testing.T, orgID string) []string {
	t.Helper()
	page, err := ts.Events.FindEvents(context.Background(), trail.EventFilter{OrganizationID: orgID, Ascending: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range page.Events {
		out = append(out, ev.Action)
	}
	return out
}

// TestStreams_API: the whole management API of SPEC §10 on both drivers,
// against a webhook receiver that verifies signatures with the Standard
// Webhooks reference library.
func TestStreams_API(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_streams")
		other := ts.mustOrg(t, "org_other")
		// The secret is known once the stream exists, and the stream may
		// deliver before that: until then the receiver refuses (and the
		// stream retries).
		var verify atomic.Pointer[standardwebhooks.Webhook]
		rcv := receiver.NewWebhook(false, func(b []byte, h http.Header) error {
			wh := verify.Load()
			if wh == nil {
				return errors.New("no secret yet")
			}
			return wh.Verify(b, h)
		})
		defer rcv.Close()

		// Create: the generated secret is shown once, then masked.
		r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "SIEM hook",
			"config": map[string]any{"url": rcv.URL() + "/in", "headers": map[string]string{"Authorization": "Bearer siem-token"}}})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		st := r.JSON(t)
		cfg := st["config"].(map[string]any)
		secret, _ := cfg["secret"].(string)
		if !strings.HasPrefix(secret, "whsec_") || st["state"] != "active" || st["object"] != "log_stream" || cfg["format"] != "json" ||
			cfg["headers"].(map[string]any)["Authorization"] != trail.MaskedSecret {
			t.Fatalf("created %s", r.Body)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		verify.Store(wh)
		id := st["id"].(string)
		got := ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil)
		if got.Status != 200 || strings.Contains(string(got.Body), secret) || strings.Contains(string(got.Body), "siem-token") ||
			got.JSON(t)["config"].(map[string]any)["secret"] != trail.MaskedSecret {
			t.Fatalf("get: %d %s", got.Status, got.Body)
		}
		streamSealedAtRest(t, ts, rcv, org, id, secret)

		// Events flow, signed; the stream's own creation first.
		for i := 0; i < 3; i++ {
			if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()}); r.Status != 200 {
				t.Fatalf("event: %d %s", r.Status, r.Body)
			}
		}
		testwait.For(t, 30*time.Second, "4 events", func() bool { return len(rcv.Events()) >= 4 })
		if d, _ := receiver.Indexes(rcv.Events()); len(d) != 4 {
			t.Fatalf("delivered %v", d)
		}
		testwait.For(t, 30*time.Second, "lag 0", func() bool {
			j := ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil).JSON(t)
			return j["lag"] == 0.0 && j["delivered"] == 4.0 && j["last_synced_at"] != nil
		})

		// Test: one event now, not in the log.
		before := ts.count(t, org)
		tr := ts.do(t, "POST", "/audit_logs/streams/"+id+"/test", adminSecret, nil)
		if tr.Status != 200 || tr.JSON(t)["success"] != true {
			t.Fatalf("test: %d %s", tr.Status, tr.Body)
		}
		testwait.For(t, 30*time.Second, "the test event", func() bool {
			evs := rcv.Events()
			return len(evs) > 0 && evs[len(evs)-1].ID == tr.JSON(t)["event_id"]
		})
		if ts.count(t, org) != before {
			t.Fatal("the test event went into the log")
		}

		// Update: the name and format change, the masked secret stays.
		// Counted before the update: its own event may arrive before the
		// response does.
		n := len(rcv.Events())
		u := ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, map[string]any{"name": "Renamed", "config": map[string]any{"format": "ndjson", "secret": trail.MaskedSecret}})
		if u.Status != 200 || u.JSON(t)["name"] != "Renamed" || u.JSON(t)["config"].(map[string]any)["format"] != "ndjson" {
			t.Fatalf("update: %d %s", u.Status, u.Body)
		}
		ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()})
		testwait.For(t, 30*time.Second, "delivery after the update (the same secret verifies)", func() bool { return len(rcv.Events()) >= n+2 })

		// Pause, resume, replay.
		if p := ts.do(t, "POST", "/audit_logs/streams/"+id+"/pause", adminSecret, nil); p.Status != 200 || p.JSON(t)["state"] != "inactive" {
			t.Fatalf("pause: %d %s", p.Status, p.Body)
		}
		cfgResp := ts.do(t, "GET", "/organizations/"+org+"/audit_log_configuration", adminSecret, nil).JSON(t)
		if ls := cfgResp["log_stream"].(map[string]any); ls["id"] != id || ls["type"] != "GenericHttps" || ls["state"] != "inactive" || cfgResp["retention_period_in_days"] == nil {
			t.Fatalf("audit_log_configuration %v", cfgResp)
		}
		if p := ts.do(t, "POST", "/audit_logs/streams/"+id+"/resume", adminSecret, nil); p.Status != 200 || p.JSON(t)["state"] != "active" {
			t.Fatalf("resume: %d %s", p.Status, p.Body)
		}
		n = len(rcv.Events())
		rp := ts.do(t, "POST", "/audit_logs/streams/"+id+"/replay", adminSecret, map[string]any{"from_index": 0})
		if rp.Status != 200 || rp.JSON(t)["cursor"] != 0.0 {
			t.Fatalf("replay: %d %s", rp.Status, rp.Body)
		}
		testwait.For(t, 30*time.Second, "the replay", func() bool {
			evs := rcv.Events()
			return len(evs) > n && slices.ContainsFunc(evs[n:], func(e receiver.Event) bool { return e.Index == 0 })
		})
		rt := ts.do(t, "POST", "/audit_logs/streams/"+id+"/replay", adminSecret, map[string]any{"from_time": time.Now().Add(time.Hour).Format(time.RFC3339)})
		if rt.Status != 200 {
			t.Fatalf("replay from a time: %d %s", rt.Status, rt.Body)
		}

		streamChangesAndTenants(t, ts, rcv, org, other, id)
		streamDelete(t, ts, org, id)
	})
}

// streamSealedAtRest: neither of a stream's secrets is in what the database holds.
func streamSealedAtRest(t *testing.T, ts *testServer, rcv *receiver.Webhook, org, id, secret string) {
	// Sealed at rest: neither secret is in what the database holds.
	stored, err := ts.Streams.FindStreamByID(context.Background(), org, id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.Sealed), "siem-token") || strings.Contains(string(stored.Sealed), secret[6:]) ||
		stored.Config.URL != rcv.URL()+"/in" || len(stored.Sealed) < 60 {
		t.Fatalf("stored secrets are not sealed: %q", stored.Sealed)
	}
}

// streamDelete: a deleted stream is gone, and its deletion recorded.
func streamDelete(t *testing.T, ts *testServer, org, id string) {
	// Delete.
	if d := ts.do(t, "DELETE", "/audit_logs/streams/"+id, adminSecret, nil); d.Status != 204 {
		t.Fatalf("delete: %d %s", d.Status, d.Body)
	}
	if g := ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil); g.Status != 404 {
		t.Fatalf("deleted: %d", g.Status)
	}
	if a := ts.actions(t, org); a[len(a)-1] != trail.ActionStreamDeleted {
		t.Fatalf("last action %s", a[len(a)-1])
	}
}

// streamChangesAndTenants: every change of a stream is in its organization's log, in order; another organization's key sees a 404 and no streams permission is a 403.
func streamChangesAndTenants(t *testing.T, ts *testServer, rcv *receiver.Webhook, org, other, id string) {
	// Every change is in the organization's log, in order.
	want := []string{trail.ActionStreamCreated, trail.ActionStreamUpdated, trail.ActionStreamPaused, trail.ActionStreamResumed, trail.ActionStreamReplayed, trail.ActionStreamReplayed}
	var own []string
	for _, a := range ts.actions(t, org) {
		if strings.HasPrefix(a, "log_stream.") {
			own = append(own, a)
		}
	}
	if !slices.Equal(own, want) {
		t.Fatalf("own events %v, want %v", own, want)
	}

	// Tenants: another organization's key sees a 404; no streams
	// permission is a 403.
	otherKey := ts.mustKey(t, other, trail.PermStreams, trail.PermOrganizations)
	for _, c := range []struct{ method, path string }{{"GET", "/audit_logs/streams/" + id}, {"PATCH", "/audit_logs/streams/" + id},
		{"DELETE", "/audit_logs/streams/" + id}, {"POST", "/audit_logs/streams/" + id + "/pause"}, {"POST", "/audit_logs/streams/" + id + "/test"},
		{"GET", "/audit_logs/streams?organization_id=" + org}, {"GET", "/organizations/" + org + "/audit_log_configuration"}} {
		if r := ts.do(t, c.method, c.path, otherKey, map[string]any{}); r.Status != 404 {
			t.Errorf("%s %s with another tenant's key: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	if l := ts.do(t, "GET", "/audit_logs/streams", otherKey, nil).JSON(t); len(l["data"].([]any)) != 0 {
		t.Fatalf("another tenant lists %v", l)
	}
	if r := ts.do(t, "POST", "/audit_logs/streams", otherKey, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x",
		"config": map[string]any{"url": rcv.URL()}}); r.Status != 404 {
		t.Fatalf("create for another tenant: %d", r.Status)
	}
	readOnly := ts.mustKey(t, org, trail.PermEventsRead)
	if r := ts.do(t, "GET", "/audit_logs/streams/"+id, readOnly, nil); r.Status != 403 {
		t.Fatalf("without the streams permission: %d", r.Status)
	}
}

// errorFields returns the fields an error names: instancePath of a 400,
// field of a 422.
func errorFields(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	errs, _ := body["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		for _, k := range []string{"instancePath", "field"} {
			if p, ok := m[k].(string); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestStreams_Errors: bad requests get a clear error naming the field and
// store nothing.
func TestStreams_Errors(t *testing.T) {
	t.Parallel()
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_errors")
		dd := func(cfg map[string]any) map[string]any {
			return map[string]any{"organization_id": org, "type": "Datadog", "name": "dd", "config": cfg}
		}
		for _, c := range []struct {
			name   string
			body   any
			status int
			path   string
		}{
			{"no name", map[string]any{"organization_id": org, "type": "Datadog", "config": map[string]any{}}, 422, "name"},
			{"no config", map[string]any{"organization_id": org, "type": "Datadog", "name": "x"}, 422, "config"},
			{"unknown field", map[string]any{"organization_id": org, "type": "Datadog", "name": "x", "config": map[string]any{}, "color": "red"}, 422, "color"},
			{"unknown type", map[string]any{"organization_id": org, "type": "Kafka", "name": "x", "config": map[string]any{}}, 400, "/type"},
			{"unknown config field", dd(map[string]any{"site": "datadoghq.com", "api_key": "k", "bucket": "b"}), 422, "config.bucket"},
			{"config not a string", dd(map[string]any{"site": 5, "api_key": "k"}), 422, "config.site"},
			{"unknown site", dd(map[string]any{"site": "example.com", "api_key": "k"}), 400, "/config/site"},
			{"no api key", dd(map[string]any{"site": "datadoghq.com"}), 400, "/config/api_key"},
			{"splunk without url", map[string]any{"organization_id": org, "type": "Splunk", "name": "x", "config": map[string]any{"token": "t"}}, 400, "/config/url"},
			{"splunk ack not bool", map[string]any{"organization_id": org, "type": "Splunk", "name": "x", "config": map[string]any{"url": "https://splunk.example.com", "token": "t", "ack": "yes"}}, 422, "config.ack"},
			{"s3 bad bucket", map[string]any{"organization_id": org, "type": "S3", "name": "x", "config": map[string]any{"bucket": "Bad_Bucket!", "region": "us-east-1", "access_key_id": "a", "secret_access_key": "s"}}, 400, "/config/bucket"},
			{"s3 no secret", map[string]any{"organization_id": org, "type": "S3", "name": "x", "config": map[string]any{"bucket": "b-1", "region": "us-east-1", "access_key_id": "a"}}, 400, "/config/secret_access_key"},
			{"https bad url", map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x", "config": map[string]any{"url": "ftp://x"}}, 400, "/config/url"},
			{"https bad secret", map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x", "config": map[string]any{"url": "https://example.com", "secret": "hunter2"}}, 400, "/config/secret"},
			{"https reserved header", map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x", "config": map[string]any{"url": "https://example.com", "headers": map[string]string{"webhook-signature": "x"}}}, 400, "/config/headers/webhook-signature"},
			{"https bad format", map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x", "config": map[string]any{"url": "https://example.com", "format": "xml"}}, 400, "/config/format"},
		} {
			r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, c.body)
			if r.Status != c.status || !slices.Contains(errorFields(t, r.JSON(t)), c.path) {
				t.Errorf("%s: %d %s, want %d naming %s", c.name, r.Status, r.Body, c.status, c.path)
			}
		}
		if l := ts.do(t, "GET", "/audit_logs/streams?organization_id="+org, adminSecret, nil).JSON(t); len(l["data"].([]any)) != 0 {
			t.Fatalf("refused streams were stored: %s", l)
		}
		if a := ts.actions(t, org); slices.Contains(a, trail.ActionStreamCreated) {
			t.Fatalf("refused streams were recorded: %v", a)
		}
		// An update that breaks the config is refused and changes nothing.
		r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, dd(map[string]any{"site": "datadoghq.com", "api_key": "k"}))
		id := r.JSON(t)["id"].(string)
		for _, c := range []struct {
			body   any
			status int
			path   string
		}{
			{map[string]any{"type": "Splunk"}, 422, "type"},
			{map[string]any{"config": map[string]any{"site": "nowhere"}}, 400, "/config/site"},
			{map[string]any{"config": map[string]any{"api_key": nil}}, 400, "/config/api_key"},
		} {
			u := ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, c.body)
			if u.Status != c.status || !slices.Contains(errorFields(t, u.JSON(t)), c.path) {
				t.Errorf("update %v: %d %s", c.body, u.Status, u.Body)
			}
		}
		if g := ts.do(t, "GET", "/audit_logs/streams/"+id, adminSecret, nil).JSON(t); g["config"].(map[string]any)["site"] != "datadoghq.com" {
			t.Fatalf("a refused update changed the stream: %v", g)
		}
		for _, body := range []any{map[string]any{}, map[string]any{"from_index": 1, "from_time": "2026-01-01T00:00:00Z"}, map[string]any{"from_index": -1}, map[string]any{"from_index": 1 << 40}} {
			if r := ts.do(t, "POST", "/audit_logs/streams/"+id+"/replay", adminSecret, body); r.Status/100 != 4 || len(errorFields(t, r.JSON(t))) == 0 {
				t.Errorf("replay %v: %d %s", body, r.Status, r.Body)
			}
		}
		// A test to a destination that refuses: success false, the answer.
		rcv := receiver.NewDatadog(false, "right")
		defer rcv.Close()
		ts.do(t, "PATCH", "/audit_logs/streams/"+id, adminSecret, map[string]any{"config": map[string]any{"url": rcv.URL(), "api_key": "wrong"}})
		tr := ts.do(t, "POST", "/audit_logs/streams/"+id+"/test", adminSecret, nil).JSON(t)
		if tr["success"] != false || !strings.Contains(fmt.Sprint(tr["error"]), "HTTP 403") || tr["permanent"] != true {
			t.Fatalf("test to a refusing destination: %v", tr)
		}
	})
}

// TestStreams_PrivateDestinations: without --allow-private-destinations a
// stream may not point at loopback or private addresses, nor use plain
// http.
func TestStreams_PrivateDestinations(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite", func(s *httpapi.Server, _ *jsonschema.Validator) {
		s.AllowPlainHTTP = false
		s.CheckDestination = func(host string) error { return delivery.CheckHost(host, false) }
	})
	org := ts.mustOrg(t, "org_private")
	for _, c := range []struct {
		typ  string
		cfg  map[string]any
		path string
	}{
		{"GenericHttps", map[string]any{"url": "https://127.0.0.1:8443/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://169.254.169.254/latest"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://localhost/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "http://siem.example.com/hook"}, "/config/url"},
		{"Splunk", map[string]any{"url": "https://10.0.0.5:8088", "token": "t"}, "/config/url"},
		// Zoned, mapped and numeric forms of loopback and metadata addresses.
		{"GenericHttps", map[string]any{"url": "https://[::1%25lo]:41999/"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://[fe80::1%25eth0]/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://[fd00:ec2::254]/latest"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://[::ffff:127.0.0.1]/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://[::]/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://2130706433/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://0x7f.1/hook"}, "/config/url"},
		{"GenericHttps", map[string]any{"url": "https://localhost./hook"}, "/config/url"},
		{"Datadog", map[string]any{"site": "datadoghq.com", "api_key": "k", "url": "https://[::1%25lo]:8443"}, "/config/url"},
		{"S3", map[string]any{"bucket": "b-1", "region": "us-east-1", "access_key_id": "a", "secret_access_key": "s", "endpoint": "https://[::1%25lo]:9000"}, "/config/endpoint"},
		{"S3", map[string]any{"bucket": "b-1", "region": "us-east-1", "access_key_id": "a", "secret_access_key": "s", "endpoint": "https://192.168.1.20:9000"}, "/config/endpoint"},
	} {
		r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": c.typ, "name": "x", "config": c.cfg})
		if r.Status != 400 || !slices.Contains(errorFields(t, r.JSON(t)), c.path) {
			t.Errorf("%s %v: %d %s", c.typ, c.cfg, r.Status, r.Body)
		}
	}
	r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "x",
		"config": map[string]any{"url": "https://siem.example.com/hook"}})
	if r.Status != 201 {
		t.Fatalf("a public destination: %d %s", r.Status, r.Body)
	}
	// Nor may an update point it at a zoned loopback address.
	u := ts.do(t, "PATCH", "/audit_logs/streams/"+r.JSON(t)["id"].(string), adminSecret, map[string]any{"config": map[string]any{"url": "https://[::1%25lo]:41999/"}})
	if u.Status != 400 || !slices.Contains(errorFields(t, u.JSON(t)), "/config/url") {
		t.Errorf("update to a zoned loopback address: %d %s", u.Status, u.Body)
	}
}

// TestStreams_Metrics: deliveries, failures and lag show in /metrics.
func TestStreams_Metrics(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_metrics")
	rcv := receiver.NewWebhook(false, nil)
	defer rcv.Close()
	rcv.Fail(1, receiver.Fault{Status: 503})
	r := ts.do(t, "POST", "/audit_logs/streams", adminSecret, map[string]any{"organization_id": org, "type": "GenericHttps", "name": "m",
		"config": map[string]any{"url": rcv.URL()}})
	id := r.JSON(t)["id"].(string)
	ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()})
	testwait.For(t, 30*time.Second, "2 events", func() bool { return len(rcv.Events()) >= 2 })
	var m string
	testwait.For(t, 30*time.Second, "the metrics", func() bool {
		m = string(ts.do(t, "GET", "/metrics", adminSecret, nil).Body)
		return strings.Contains(m, `trail_stream_delivered_events_total{stream="`+id+`",type="GenericHttps"} 2`) &&
			strings.Contains(m, `trail_stream_lag_events{stream="`+id+`",type="GenericHttps"} 0`)
	})
	for _, want := range []string{`trail_stream_failures_total{state="error",stream="` + id + `",type="GenericHttps"} 1`,
		`trail_stream_retries_total{stream="` + id + `",type="GenericHttps"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A deleted stream's series go when its delivery stops.
	if r := ts.do(t, "DELETE", "/audit_logs/streams/"+id, adminSecret, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	testwait.For(t, 30*time.Second, "the deleted stream's series dropped", func() bool {
		m = string(ts.do(t, "GET", "/metrics", adminSecret, nil).Body)
		return !strings.Contains(m, `stream="`+id+`"`)
	})
}
