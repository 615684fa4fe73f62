package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// TestUI_EventSteps: "Newer event" and "Older event" lead, when clicked,
// to the event's neighbours in the list it was opened from (its filters),
// keeping the list's filters and page; at the list's ends the same event
// is shown again, saying so; another organization's event is not found;
// a bad filter is an error, not a step.
func TestUI_EventSteps(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_steps")
	other := ts.mustOrg(t, "org_steps_other")
	uiEvents(t, ts, org)
	uiEvents(t, ts, other)
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))

	// A filtered list of one page, and the whole log, of more than one.
	list := "range=all&actions=user.role_granted"
	first := get(t, c, ts.URL()+"/ui/?"+list)
	ids := uiRowIDs(first.body)
	all := get(t, c, ts.URL()+"/ui/?range=all")
	allIDs := uiRowIDs(all.body)
	older := get(t, c, ts.URL()+"/ui/?range=all&after="+url.QueryEscape(lastOlderCursor(t, all.body)))
	next := uiRowIDs(older.body)
	if first.status != 200 || len(ids) < 3 || strings.Contains(first.body, `rel="next"`) || older.status != 200 || len(next) == 0 {
		t.Fatalf("list: %d with %d rows, older page %d with %d rows", first.status, len(ids), older.status, len(next))
	}
	step := func(id, dir, query string) *url.URL {
		t.Helper()
		p := get(t, c, ts.URL()+"/ui/events/"+id+"/"+dir+"?"+query)
		if p.status != http.StatusSeeOther {
			t.Fatalf("%s of %s: %d %s", dir, id, p.status, p.body)
		}
		loc, err := url.Parse(p.header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	want, _ := url.ParseQuery(list)
	for _, tc := range []struct{ from, dir, to string }{
		{ids[1], "newer", ids[0]}, {ids[1], "older", ids[2]}, {ids[0], "older", ids[1]},
	} {
		loc := step(tc.from, tc.dir, list)
		if loc.Path != "/ui/events/"+tc.to || loc.Query().Encode() != want.Encode() {
			t.Errorf("%s of %s: %s, want /ui/events/%s?%s", tc.dir, tc.from, loc, tc.to, want.Encode())
		}
	}
	// The filter chooses the neighbours: in the whole log, the filtered
	// list's first two events are not next to each other.
	if loc := step(ids[0], "older", "range=all"); loc.Path == "/ui/events/"+ids[1] {
		t.Errorf("older than %s in the whole log: %s, the filtered list's neighbour", ids[0], loc)
	}
	// Across the list's pages, keeping the page: the first page's last
	// row's older event is the second page's first row.
	if loc := step(allIDs[len(allIDs)-1], "older", "range=all"); loc.Path != "/ui/events/"+next[0] || loc.Query().Encode() != "range=all" {
		t.Errorf("older than the first page's last row: %s, want /ui/events/%s?range=all", loc, next[0])
	}
	// The ends: the same event, saying so, with no link past it.
	for _, tc := range []struct{ id, dir, label, rel string }{
		{ids[0], "newer", "Newest of the list", `rel="prev"`},
		{ids[len(ids)-1], "older", "Oldest of the list", `rel="next"`},
	} {
		loc := step(tc.id, tc.dir, list)
		if loc.Path != "/ui/events/"+tc.id || loc.Query().Get("end") != tc.dir {
			t.Errorf("%s of %s, the list's end: %s", tc.dir, tc.id, loc)
			continue
		}
		p := get(t, c, ts.URL()+loc.String())
		if p.status != 200 || !strings.Contains(p.body, tc.label) || strings.Contains(p.body, tc.rel) {
			t.Errorf("%s: %d, want %q and no %s link", loc, p.status, tc.label, tc.rel)
		}
		// The other direction is still offered.
		if other := map[string]string{`rel="prev"`: `rel="next"`, `rel="next"`: `rel="prev"`}[tc.rel]; !strings.Contains(p.body, other) {
			t.Errorf("%s: no %s link", loc, other)
		}
	}
	// Another organization's event is not found here, in either direction.
	theirs := func() string {
		c2 := browserClient(t)
		get(t, c2, ts.portalLink(t, other, trail.RoleAdmin, trail.IntentAuditLogs))
		return uiRowIDs(get(t, c2, ts.URL()+"/ui/?range=all").body)[0]
	}()
	for _, dir := range []string{"newer", "older"} {
		if p := get(t, c, ts.URL()+"/ui/events/"+theirs+"/"+dir+"?range=all"); p.status != http.StatusNotFound {
			t.Errorf("another organization's event, %s: %d", dir, p.status)
		}
	}
	if p := get(t, c, ts.URL()+"/ui/events/"+ids[1]+"/newer?range=all&from=yesterday-ish"); p.status != http.StatusBadRequest {
		t.Errorf("a bad filter: %d %s", p.status, p.header.Get("Location"))
	}
}

// lastOlderCursor is the "Older events" link's cursor on a page of the list.
func lastOlderCursor(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `rel="next"`)
	j := strings.LastIndex(body[:max(i, 0)], `href="`)
	if i < 0 || j < 0 {
		t.Fatal("no Older events link")
	}
	href := strings.ReplaceAll(body[j+len(`href="`):strings.Index(body[j+len(`href="`):], `"`)+j+len(`href="`)], "&amp;", "&")
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("after")
}
