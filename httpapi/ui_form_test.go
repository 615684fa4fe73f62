package httpapi_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// TestUI_StreamFormErrors: the stream form marks its required fields, and
// a refused form says in whole sentences, at the top, which fields need a
// change, each a link to its field, which carries the same sentence and
// is tied to it for a screen reader.
func TestUI_StreamFormErrors(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_form")
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleOwner, trail.IntentLogStreams))
	p := get(t, c, ts.URL()+"/ui/streams/new?type=S3")
	for _, field := range []string{"name", "bucket", "region", "access_key_id", "secret_access_key"} {
		if !regexp.MustCompile(`<label for="f-` + field + `">[^<]*<span aria-hidden="true">\*</span></label>`).MatchString(p.body) {
			t.Errorf("required field %s is not marked:\n%s", field, p.body)
		}
	}
	if regexp.MustCompile(`<label for="f-prefix">[^<]*<span`).MatchString(p.body) || !strings.Contains(p.body, "Fields marked") {
		t.Errorf("optional field marked, or no word on the marks")
	}
	csrf := csrfField.FindStringSubmatch(p.body)[1]
	r := post(t, c, ts.URL()+"/ui/streams", url.Values{"csrf": {csrf}, "type": {"Splunk"}, "name": {""}, "url": {"https://splunk.example.com"}})
	if r.status != 400 {
		t.Fatalf("status %d", r.status)
	}
	want := map[string]string{"f-name": "Name is required.", "f-token": "HEC token is required for Splunk streams."}
	summary := regexp.MustCompile(`(?s)<div class="notice bad" role="alert" id="form-errors">(.*?)</div>`).FindStringSubmatch(r.body)
	if summary == nil || !strings.Contains(summary[1], "2 fields need a change") {
		t.Fatalf("no summary:\n%s", r.body)
	}
	links := regexp.MustCompile(`<li><a href="#([^"]+)">([^<]+)</a></li>`).FindAllStringSubmatch(summary[1], -1)
	if len(links) != len(want) {
		t.Fatalf("summary links %q, want %v", links, want)
	}
	for _, l := range links {
		id, text := l[1], l[2]
		if want[id] != text {
			t.Errorf("summary: %s says %q, want %q", id, text, want[id])
		}
		if !regexp.MustCompile(`id="`+id+`"[^>]*aria-invalid="true" aria-describedby="`+id+`-err"`).MatchString(r.body) ||
			!strings.Contains(r.body, `<div class="err" id="`+id+`-err">`+text+`</div>`) {
			t.Errorf("field %s is not marked with its sentence:\n%s", id, r.body)
		}
	}
	if strings.Contains(r.body, `id="f-url" aria-invalid`) || strings.Contains(r.body, "must be 1 to") {
		t.Errorf("a good field is marked, or an old fragment remains")
	}
}

// TestUI_Exports: the exports page lists the organization's recent
// exports, newest first, with their state, each a link to its page; the
// file is named by the organization and the period.
func TestUI_Exports(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_exports")
	other := ts.mustOrg(t, "org_exports_other")
	uiEvents(t, ts, org)
	key := ts.mustKey(t, org, trail.PermExports)
	otherKey := ts.mustKey(t, other, trail.PermExports)
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))
	p := get(t, c, ts.URL()+"/ui/exports")
	if p.status != 200 || !strings.Contains(p.body, "No exports yet") || !strings.Contains(p.body, `href="/ui/exports" aria-current="page"`) {
		t.Fatalf("no exports: %d %s", p.status, p.body)
	}
	csrf := csrfField.FindStringSubmatch(p.body)[1]
	hidden := ts.do(t, "POST", "/audit_logs/exports", otherKey, map[string]any{"organization_id": other,
		"range_start": "2026-01-01T00:00:00Z", "range_end": "2026-02-01T00:00:00Z"}).JSON(t)["id"].(string)
	var ids []string
	for _, form := range []url.Values{
		{"csrf": {csrf}, "format": {"csv"}, "from": {"2026-11-01"}, "to": {"2026-11-30"}},
		{"csrf": {csrf}, "format": {"ndjson"}, "range": {"all"}, "actions": {"user.role_granted"}},
	} {
		r := post(t, c, ts.URL()+"/ui/exports", form)
		if r.status != 303 {
			t.Fatalf("export: %d %s", r.status, r.body)
		}
		loc, _ := url.Parse(r.header.Get("Location"))
		ids = append(ids, strings.TrimPrefix(loc.Path, "/ui/exports/"))
	}
	first := ts.waitExport(t, key, ids[0])
	if first["file_name"] != "org-org-exports_audit-log_2026-11-01_to_2026-11-30.csv" {
		t.Errorf("file name %v", first["file_name"])
	}
	ts.waitExport(t, key, ids[1])
	p = get(t, c, ts.URL()+"/ui/exports")
	rows := regexp.MustCompile(`<tr id="export-([^"]+)">`).FindAllStringSubmatch(p.body, -1)
	if len(rows) != 2 || rows[0][1] != ids[1] || rows[1][1] != ids[0] || strings.Contains(p.body, hidden) {
		t.Fatalf("listed %q, want %v newest first and not %s:\n%s", rows, ids, hidden, p.body)
	}
	for _, want := range []string{`href="/ui/exports/` + ids[0] + `"`, `<span class="state ready">ready</span>`, "user.role_granted", "NDJSON", "all events"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the list lacks %q", want)
		}
	}
	if p := get(t, c, ts.URL()+"/ui/exports/"+ids[0]); !strings.Contains(p.body, "Download org-org-exports_audit-log_2026-11-01_to_2026-11-30.csv") {
		t.Errorf("the export page does not name its file:\n%s", p.body)
	}
	if p := get(t, c, ts.URL()+"/ui/exports/"+hidden); p.status != 404 {
		t.Errorf("another organization's export: %d", p.status)
	}
}
