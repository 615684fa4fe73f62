package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/tlog"
)

// waitExport polls an export until it is no longer pending.
func (ts *testServer) waitExport(t *testing.T, key, id string) map[string]any {
	t.Helper()
	var m map[string]any
	testwait.ForNil(t, 30*time.Second, "the export", func() error {
		r := ts.do(t, "GET", "/audit_logs/exports/"+id, key, nil)
		if r.Status != 200 {
			t.Fatalf("GET export: %d %s", r.Status, r.Body)
		}
		if m = r.JSON(t); m["state"] == "pending" {
			return fmt.Errorf("export still pending: %s", r.Body)
		}
		return nil
	})
	return m
}

// download fetches a link without any API key.
func download(t *testing.T, link string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// exportFile creates an export, waits for it and downloads its file.
func (ts *testServer) exportFile(t *testing.T, key string, body map[string]any) (map[string]any, []byte) {
	t.Helper()
	r := ts.do(t, "POST", "/audit_logs/exports", key, body)
	if r.Status != 201 {
		t.Fatalf("create export: %d %s", r.Status, r.Body)
	}
	created := r.JSON(t)
	if created["state"] != "pending" || created["object"] != "audit_log_export" || !strings.HasPrefix(created["id"].(string), "audit_log_export_") {
		t.Fatalf("created %s", r.Body)
	}
	ex := ts.waitExport(t, key, created["id"].(string))
	if ex["state"] != "ready" {
		t.Fatalf("export ended %v", ex)
	}
	status, hdr, file := download(t, ex["url"].(string))
	name, _ := ex["file_name"].(string)
	if status != 200 || hdr.Get("Content-Disposition") != `attachment; filename="`+name+`"` || !strings.Contains(name, "_audit-log_") || fmt.Sprint(len(file)) != fmt.Sprint(ex["bytes"]) {
		t.Fatalf("download: %d %v, %d bytes of %v", status, hdr, len(file), ex["bytes"])
	}
	return ex, file
}

func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if strings.Join(recs[0], ",") != strings.Join(export.Columns, ",") {
		t.Fatalf("header %q", recs[0])
	}
	return recs[1:]
}

func TestExports(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		fx := newExportsAPI(t, newTestServer(t))
		t.Run("CSV", fx.testCSV)

		t.Run("RangeEdges", fx.testRangeEdges)

		t.Run("Filters", fx.testFilters)

		t.Run("NDJSONVerifies", fx.testNDJSONVerifies)

		t.Run("Gzip", fx.testGzip)

		t.Run("Links", fx.testLinks)

		t.Run("Errors", fx.testErrors)

		t.Run("TenantIsolation", fx.testTenantIsolation)

		t.Run("Expiry", fx.testExpiry)

		t.Run("AuditEventAndIdempotency", fx.testAuditEventAndIdempotency)
	})
}

// exportsAPI is what TestExports' subtests share: an organization of
// events, some hostile, and keys.
type exportsAPI struct {
	ts                      *testServer
	parent                  *testing.T // the test the subtests run in
	org                     string
	key, otherKey, readOnly string
	t0                      time.Time      // the first event's time
	wide                    map[string]any // an export of every event
}

func newExportsAPI(t *testing.T, ts *testServer) *exportsAPI {
	org := ts.mustOrg(t, "org_exports")
	ts.mustOrg(t, "org_elsewhere")
	key := ts.mustKey(t, org, trail.PermEventsWrite, trail.PermEventsRead, trail.PermExports)
	otherKey := ts.mustKey(t, "org_elsewhere", trail.PermExports)
	readOnly := ts.mustKey(t, org, trail.PermEventsRead)
	// Three events one second apart at t0, t0+1s, t0+2s, hostile ones,
	// one with the largest metadata an event may carry.
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var events []any
	for i := range 3 {
		ev := validEvent()
		ev["occurred_at"] = t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano)
		ev["metadata"] = map[string]any{"step": i}
		events = append(events, ev)
	}
	hostile := validEvent()
	hostile["action"] = "-danger.zone"
	hostile["actor"] = map[string]any{"id": "@admin", "type": "user", "name": "=cmd|' /C calc'!A0"}
	hostile["targets"] = []any{map[string]any{"id": "+33 1 23", "type": "team", "name": "Zoë \"the\" Ünïcødé, 日本 🚀\r\nline"}}
	hostile["context"] = map[string]any{"location": "\t10.0.0.1", "user_agent": "\r<script>"}
	hostile["metadata"] = map[string]any{"formula": "=SUM(A1:A9)", "quote": "a \"b\" c", "nl": "x\ny"}
	events = append(events, hostile)
	huge := validEvent()
	md := map[string]any{}
	for i := range trail.MaxMetadataKeys {
		md[fmt.Sprintf("key_%02d", i)] = strings.Repeat(string(rune('a'+i%26)), trail.MaxMetadataValueChars-1) + "é"
	}
	huge["metadata"] = md
	events = append(events, huge)
	r := ts.do(t, "POST", "/audit_logs/events/batch", key, map[string]any{"organization_id": org, "events": events})
	if r.Status != 200 || strings.Contains(string(r.Body), `"error"`) {
		t.Fatalf("batch: %d %s", r.Status, r.Body)
	}
	wide := map[string]any{"organization_id": org, "range_start": t0.Add(-time.Hour).Format(time.RFC3339), "range_end": time.Now().Add(time.Hour).Format(time.RFC3339)}
	return &exportsAPI{ts: ts, parent: t, org: org, key: key, otherKey: otherKey, readOnly: readOnly, t0: t0, wide: wide}
}

func (fx *exportsAPI) testCSV(t *testing.T) {
	ts, org, key, wide := fx.ts, fx.org, fx.key, fx.wide
	ex, file := ts.exportFile(t, key, wide)
	rows := readCSV(t, file)
	want := trail.EventFilter{OrganizationID: org, Limit: 100, Ascending: true}
	page, err := ts.Events.FindEvents(t.Context(), want)
	if err != nil {
		t.Fatal(err)
	}
	// Every event of the range: the five sent, organization.created,
	// api_key.created and the export's own audit_log_export.created,
	// which it waits for.
	inRange := page.Events
	if last := inRange[len(inRange)-1]; last.Action != trail.ActionExportCreated || last.Targets[0].ID != ex["id"] {
		t.Fatalf("the last event is %+v, not the export's creation", last)
	}
	if len(rows) != len(inRange) || fmt.Sprint(ex["rows"]) != fmt.Sprint(len(rows)) {
		t.Fatalf("%d rows, %d events, export says %v", len(rows), len(inRange), ex["rows"])
	}
	for i, ev := range inRange {
		if rows[i][0] != ev.ID || rows[i][1] != fmt.Sprint(ev.Index) || rows[i][4] != export.EscapeCell(ev.Action) {
			t.Fatalf("row %d %q for event %+v", i, rows[i], ev)
		}
		if ev.Action == "-danger.zone" {
			got := rows[i]
			if got[4] != "'-danger.zone" || got[7] != "'@admin" || got[8] != "'=cmd|' /C calc'!A0" || got[10] != "'+33 1 23" ||
				got[11] != "Zoë \"the\" Ünïcødé, 日本 🚀\nline" /* a CSV reader reads a quoted CRLF as LF */ || got[12] != "'\t10.0.0.1" || got[13] != "'\r<script>" {
				t.Fatalf("hostile row %q", got)
			}
			var md map[string]string
			if err := json.Unmarshal([]byte(got[14]), &md); err != nil || md["formula"] != "=SUM(A1:A9)" || md["quote"] != `a "b" c` || md["nl"] != "x\ny" {
				t.Fatalf("metadata cell %q: %v", got[14], err)
			}
		}
		if len(ev.Metadata) == trail.MaxMetadataKeys {
			var md map[string]string
			if err := json.Unmarshal([]byte(rows[i][14]), &md); err != nil || len(md) != trail.MaxMetadataKeys || md["key_07"] != ev.Metadata["key_07"] {
				t.Fatalf("huge metadata cell of %d bytes: %v", len(rows[i][14]), err)
			}
		}
	}
	if ex["format"] != "csv" || ex["tree_size"] == nil || !strings.Contains(ex["checkpoint"].(string), "trail.test/"+org) {
		t.Fatalf("ready export %v", ex)
	}
}

func (fx *exportsAPI) testRangeEdges(t *testing.T) {
	ts, org, key, t0 := fx.ts, fx.org, fx.key, fx.t0
	// range_start inclusive, range_end exclusive.
	_, file := ts.exportFile(t, key, map[string]any{"organization_id": org,
		"range_start": t0.Add(time.Second).Format(time.RFC3339), "range_end": t0.Add(2 * time.Second).Format(time.RFC3339)})
	rows := readCSV(t, file)
	if len(rows) != 1 || !strings.Contains(rows[0][14], `"step":1`) {
		t.Fatalf("rows %q", rows)
	}
}

func (fx *exportsAPI) testFilters(t *testing.T) {
	ts, key, wide := fx.ts, fx.key, fx.wide
	for _, c := range []struct {
		filter map[string]any
		want   int
	}{
		{map[string]any{"actions": []string{"alert_route.updated"}}, 4},
		{map[string]any{"actions": []string{"-danger.*"}}, 1},
		{map[string]any{"actor_names": []string{"Ada Lovelace"}}, 4},
		{map[string]any{"actors": []string{"Ada Lovelace"}}, 4}, // deprecated name of actor_names
		{map[string]any{"actor_ids": []string{"@admin"}}, 1},
		{map[string]any{"targets": []string{"team"}}, 1},
		{map[string]any{"target_ids": []string{"route_1"}}, 4},
		{map[string]any{"q": "Critical"}, 5}, // and the export's own audit event, whose metadata holds q
		{map[string]any{"actions": []string{"nothing.matches"}}, 0},
	} {
		body := map[string]any{}
		for k, v := range wide {
			body[k] = v
		}
		for k, v := range c.filter {
			body[k] = v
		}
		ex, file := ts.exportFile(t, key, body)
		if rows := readCSV(t, file); len(rows) != c.want {
			t.Errorf("filter %v: %d rows, want %d (%v)", c.filter, len(rows), c.want, ex)
		}
	}
}

func (fx *exportsAPI) testNDJSONVerifies(t *testing.T) {
	ts, org, key := fx.ts, fx.org, fx.key
	body := map[string]any{"format": "ndjson", "organization_id": org, "range_start": "1970-01-01T00:00:00Z", "range_end": "2200-01-01T00:00:00Z"}
	ex, file := ts.exportFile(t, key, body)
	res, err := tlog.Verify(bytes.NewReader(file), []byte(ex["checkpoint"].(string)), ts.VKey)
	if err != nil || !res.Tree || res.Proven != res.Lines || fmt.Sprint(res.Lines) != fmt.Sprint(ex["rows"]) {
		t.Fatalf("verify: %+v %v", res, err)
	}
	body["actor_ids"] = []string{"@admin"}
	ex, file = ts.exportFile(t, key, body)
	res, err = tlog.VerifyOptions{Key: ts.VKey, Checkpoint: []byte(ex["checkpoint"].(string)), Subset: true}.Verify(bytes.NewReader(file))
	if err != nil || res.Lines != 1 || res.Proven != 1 {
		t.Fatalf("verify subset: %+v %v", res, err)
	}
	// A changed byte is caught.
	bad := bytes.Replace(file, []byte("@admin"), []byte("@admim"), 1)
	if _, err := (tlog.VerifyOptions{Key: ts.VKey, Checkpoint: []byte(ex["checkpoint"].(string)), Subset: true}).Verify(bytes.NewReader(bad)); err == nil {
		t.Fatal("a changed line verified")
	}
}

func (fx *exportsAPI) testGzip(t *testing.T) {
	ts, key, wide := fx.ts, fx.key, fx.wide
	body := map[string]any{"gzip": true}
	for k, v := range wide {
		body[k] = v
	}
	ex, file := ts.exportFile(t, key, body)
	zr, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if rows := readCSV(t, plain); fmt.Sprint(len(rows)) != fmt.Sprint(ex["rows"]) || !strings.HasSuffix(ex["file_name"].(string), ".csv.gz") {
		t.Fatalf("%d rows, %v", len(rows), ex)
	}
}

func (fx *exportsAPI) testLinks(t *testing.T) {
	ts, key, wide := fx.ts, fx.key, fx.wide
	ex, _ := ts.exportFile(t, key, wide)
	link := ex["url"].(string)
	u, _ := url.Parse(link)
	q := u.Query()
	altered := func(name, value string) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set(name, value)
		c := *u
		c.RawQuery = v.Encode()
		return c.String()
	}
	sig := q.Get("signature")
	flipped := string(rune(sig[0]^1)) + sig[1:]
	for name, l := range map[string]string{
		"signature": altered("signature", flipped),
		"expires":   altered("expires", fmt.Sprint(time.Now().Add(time.Hour).Unix())),
		"no sig":    altered("signature", ""),
		"other id":  strings.Replace(link, ex["id"].(string), otherID(ex["id"].(string)), 1),
	} {
		if status, _, body := download(t, l); status != 403 && status != 404 {
			t.Errorf("%s altered: %d %s", name, status, body)
		}
	}
	// Eleven minutes later the link has expired; a new GET gives a
	// new one that works.
	ts.Clock.Store(int64(11 * time.Minute))
	defer ts.Clock.Store(0)
	if status, _, body := download(t, link); status != 403 || !strings.Contains(string(body), "expired") {
		t.Fatalf("expired link: %d %s", status, body)
	}
	again := ts.waitExport(t, key, ex["id"].(string))
	if again["url"] == link {
		t.Fatal("the link was not regenerated")
	}
	if status, _, _ := download(t, again["url"].(string)); status != 200 {
		t.Fatalf("new link: %d", status)
	}
}

func (fx *exportsAPI) testErrors(t *testing.T) {
	ts, org, key, otherKey, readOnly, wide := fx.ts, fx.org, fx.key, fx.otherKey, fx.readOnly, fx.wide
	with := func(kv ...any) map[string]any {
		b := map[string]any{}
		for k, v := range wide {
			b[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(b, kv[i].(string))
			} else {
				b[kv[i].(string)] = kv[i+1]
			}
		}
		return b
	}
	before := ts.count(t, org)
	for _, c := range []struct {
		name   string
		key    string
		body   any
		status int
		code   string
		field  string
	}{
		{"NoOrganization", key, with("organization_id", nil), 422, "", "organization_id"},
		{"NoRangeStart", key, with("range_start", nil), 422, "", "range_start"},
		{"BadRangeStart", key, with("range_start", "yesterday"), 400, "invalid_audit_log_export_range_date", "/range_start"},
		{"EndBeforeStart", key, with("range_start", "2026-01-02T00:00:00Z", "range_end", "2026-01-01T00:00:00Z"), 400, "invalid_audit_log_export_range_date", "/range_end"},
		{"EmptyRange", key, with("range_start", "2026-01-01T00:00:00Z", "range_end", "2026-01-01T00:00:00Z"), 400, "invalid_audit_log_export_range_date", "/range_end"},
		{"BadAction", key, with("actions", []string{"no spaces"}), 400, "invalid", "/actions"},
		{"ActionsNotList", key, with("actions", "alert_route.updated"), 422, "", "actions"},
		{"BadFormat", key, with("format", "xlsx"), 400, "invalid", "/format"},
		{"BadGzip", key, with("gzip", "yes"), 422, "", "gzip"},
		{"UnknownField", key, with("action", []string{"x"}), 422, "", "action"},
		{"NotJSON", key, "{", 422, "", "body"},
		{"OtherTenant", otherKey, wide, 404, "not_found", ""},
		{"UnknownOrganization", key, with("organization_id", "org_nope"), 404, "not_found", ""},
		{"NoPermission", readOnly, wide, 403, "forbidden", ""},
		{"NoKey", "", wide, 401, "unauthorized", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.do(t, "POST", "/audit_logs/exports", c.key, c.body)
			if r.Status != c.status {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			m := r.JSON(t)
			if c.code != "" && m["code"] != c.code {
				t.Fatalf("code %v: %s", m["code"], r.Body)
			}
			if c.field != "" && !strings.Contains(string(r.Body), `"`+c.field+`"`) {
				t.Fatalf("the error does not name %s: %s", c.field, r.Body)
			}
		})
	}
	if after := ts.count(t, org); after != before {
		t.Fatalf("refused exports changed the log: %d → %d events", before, after)
	}
}

func (fx *exportsAPI) testTenantIsolation(t *testing.T) {
	ts, key, otherKey, wide := fx.ts, fx.key, fx.otherKey, fx.wide
	r := ts.do(t, "POST", "/audit_logs/exports", key, wide)
	id := r.JSON(t)["id"].(string)
	if r := ts.do(t, "GET", "/audit_logs/exports/"+id, otherKey, nil); r.Status != 404 ||
		r.JSON(t)["message"] != "Audit Log Export not found: '"+id+"'." {
		t.Fatalf("another tenant's export: %d %s", r.Status, r.Body)
	}
	if r := ts.do(t, "GET", "/audit_logs/exports/audit_log_export_nope", key, nil); r.Status != 404 {
		t.Fatalf("unknown export: %d %s", r.Status, r.Body)
	}
	if r := ts.do(t, "GET", "/audit_logs/exports/"+id, adminSecret, nil); r.Status != 200 {
		t.Fatalf("instance key: %d %s", r.Status, r.Body)
	}
	ts.waitExport(t, key, id)
}

func (fx *exportsAPI) testExpiry(t *testing.T) {
	ts, parent, key, wide := fx.ts, fx.parent, fx.key, fx.wide
	// A worker whose files live 300 ms: the export reads as expired
	// and its link no longer serves it.
	ts.ExportWorker.Stop()
	w := &export.Worker{Exports: ts.Exports, Source: export.Source{Events: ts.Events, Logs: ts.Logs}, Logger: ts.Logger,
		PollInterval: 20 * time.Millisecond, TTL: 300 * time.Millisecond, ExpireEvery: 50 * time.Millisecond}
	w.Start(context.Background())
	ts.ExportCreated = w.Wake
	defer func() {
		// Back to a worker with the default TTL for the next subtests.
		w.Stop()
		n := &export.Worker{Exports: ts.Exports, Source: export.Source{Events: ts.Events, Logs: ts.Logs}, Logger: ts.Logger, PollInterval: 20 * time.Millisecond}
		n.Start(context.Background())
		parent.Cleanup(n.Stop)
		ts.ExportWorker, ts.ExportCreated = n, n.Wake
	}()
	ex, _ := ts.exportFile(t, key, wide)
	var got map[string]any
	testwait.Poll(30*time.Second, func() error {
		if got = ts.do(t, "GET", "/audit_logs/exports/"+ex["id"].(string), key, nil).JSON(t); got["state"] != "expired" {
			return errors.New("not expired")
		}
		return nil
	})
	if got["state"] != "expired" || got["url"] != nil {
		t.Fatalf("after the TTL: %v", got)
	}
	if status, _, body := download(t, ex["url"].(string)); status != 404 {
		t.Fatalf("link of an expired export: %d %s", status, body)
	}
}

func (fx *exportsAPI) testAuditEventAndIdempotency(t *testing.T) {
	ts, org, key, wide := fx.ts, fx.org, fx.key, fx.wide
	r1 := ts.do(t, "POST", "/audit_logs/exports", key, wide, "Idempotency-Key", "exp-1")
	r2 := ts.do(t, "POST", "/audit_logs/exports", key, wide, "Idempotency-Key", "exp-1")
	id := r1.JSON(t)["id"].(string)
	if r1.Status != 201 || r2.Status != 201 || r2.JSON(t)["id"] != id {
		t.Fatalf("retried create: %s / %s", r1.Body, r2.Body)
	}
	page, err := ts.Events.FindEvents(t.Context(), trail.EventFilter{OrganizationID: org, Actions: []string{trail.ActionExportCreated}, TargetIDs: []string{id}})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("audit events of the export: %v %v", page, err)
	}
	ev := page.Events[0]
	if ev.Actor.Type != "api_key" || ev.Context.Location != "127.0.0.1" || ev.Metadata["format"] != "csv" || ev.Targets[0].Type != "audit_log_export" {
		t.Fatalf("audit event %+v", ev)
	}
	ts.waitExport(t, key, id)
}

// otherID returns id with its last character changed.
func otherID(id string) string {
	last := "0"
	if strings.HasSuffix(id, "0") {
		last = "1"
	}
	return id[:len(id)-1] + last
}
