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
