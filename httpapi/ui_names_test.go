package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/jsonschema"
)

// uiRowIDs are the events a page of the list shows, in order.
func uiRowIDs(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<tr data-event-id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// TestUI_ActorTargetNames: the Actor and Target fields take a name (any
// case, every actor that bears it) or an ID; actor_ids and target_ids
// keep working; a target no event names is an error on its field; and
// nothing of another organization is found or suggested.
func TestUI_ActorTargetNames(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_names")
	other := ts.mustOrg(t, "org_names_other")
	uiEvents(t, ts, org)
	now := time.Now().UTC()
	for _, e := range []struct{ org, actor, name string }{{org, "user_a", "Sam Lee"}, {org, "user_b", "sam lee"}, {other, "user_m", "Mallory Evil"}} {
		ev := map[string]any{"action": "user.signed_in", "occurred_at": now.Add(-time.Minute).Format(time.RFC3339Nano),
			"actor":   map[string]any{"id": e.actor, "type": "user", "name": e.name},
			"targets": []map[string]any{{"id": "secret_" + e.actor, "type": "vault", "name": "Vault of " + e.name}},
			"context": map[string]any{"location": "203.0.113.1"}}
		if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": e.org, "event": ev}); r.Status != 201 && r.Status != 200 {
			t.Fatalf("ingest: %d %s", r.Status, r.Body)
		}
	}
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))
	api := func(q string) []string {
		return ts.apiIDs(t, org, mustQuery(t, q))
	}
	for _, tc := range []struct{ page, api string }{
		{"actor=user_2", "actor_ids=user_2"},
		{"actor=EDSGER+DIJKSTRA", "actor_ids=user_2"},
		{"actor=Sam+Lee", "actor_ids=user_a,user_b"},
		{"actor_ids=user_1", "actor_ids=user_1"},
		{"target=team_1", "target_ids=team_1"},
		{"target=team+1", "target_ids=team_1"},
		{"target=Vault+of+Sam+Lee", "target_ids=secret_user_a,secret_user_b"},
		{"target=secret_user_a", "target_ids=secret_user_a"},
		{"actor=Grace+Hopper&target=Team+2&actions=user.role_granted", "actor_ids=user_0&target_ids=team_2&actions=user.role_granted"},
	} {
		p := get(t, c, ts.URL()+"/ui/?range=all&"+tc.page)
		want := api(tc.api)
		if got := uiRowIDs(p.body); p.status != 200 || len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: %d, rows %v, want those of %s: %v", tc.page, p.status, got, tc.api, want)
		}
	}
	// Another organization's actors and targets are nobody here.
	for _, q := range []string{"actor=user_m", "actor=Mallory+Evil"} {
		if p := get(t, c, ts.URL()+"/ui/?range=all&"+q); p.status != 200 || len(uiRowIDs(p.body)) != 0 {
			t.Errorf("%s: %d, %d rows", q, p.status, len(uiRowIDs(p.body)))
		}
	}
	for _, q := range []string{"target=secret_user_m", "target=Nobody+At+All"} {
		p := get(t, c, ts.URL()+"/ui/?range=all&"+q)
		if p.status != 400 || !strings.Contains(p.body, `id="target" aria-invalid="true"`) || !strings.Contains(p.body, "names a target") {
			t.Errorf("%s: %d, the Target field is not marked:\n%s", q, p.status, p.body)
		}
	}
	// A row's actor and target link filter by their IDs, which the fields
	// show; the chips name what is filtered.
	p := get(t, c, ts.URL()+"/ui/?range=all&actor=user_a")
	if !strings.Contains(p.body, `href="/ui/?actor=user_a&amp;range=all"`) || !strings.Contains(p.body, `name="actor" value="user_a"`) || !strings.Contains(p.body, "Actor: user_a") {
		t.Errorf("actor links or field:\n%s", p.body)
	}
	if p := get(t, c, ts.URL()+"/ui/?range=all&actor_ids=user_1"); !strings.Contains(p.body, `<input type="hidden" name="actor_ids" value="user_1">`) || !strings.Contains(p.body, "Actor ID: user_1") {
		t.Errorf("an actor_ids view does not keep it in the form:\n%s", p.body)
	}
	// An export of a named view exports the events of the actors named.
	csrf := csrfField.FindStringSubmatch(p.body)[1]
	r := post(t, c, ts.URL()+"/ui/exports", url.Values{"csrf": {csrf}, "format": {"csv"}, "range": {"all"}, "actor": {"sam lee"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	ex := ts.do(t, "GET", "/audit_logs/exports/"+strings.TrimPrefix(strings.Split(r.header.Get("Location"), "?")[0], "/ui/exports/"), adminSecret, nil).JSON(t)
	if ids, _ := ex["actor_ids"].([]any); len(ids) != 2 || ids[0] != "user_a" && ids[0] != "user_b" {
		t.Errorf("the export's actors: %v", ex["actor_ids"])
	}
	// Suggestions are the organization's own.
	var sug struct {
		Values []struct{ Value, Label string }
	}
	r = get(t, c, ts.URL()+"/ui/suggest?field=actor")
	if err := json.Unmarshal([]byte(r.body), &sug); err != nil || r.status != 200 {
		t.Fatalf("suggest: %d %s", r.status, r.body)
	}
	var values []string
	for _, v := range sug.Values {
		values = append(values, v.Value+" ("+v.Label+")")
	}
	for _, want := range []string{"Grace Hopper (user · user_0)", "Sam Lee (user · user_a)", "sam lee (user · user_b)"} {
		if !slices.Contains(values, want) {
			t.Errorf("suggestions %v lack %q", values, want)
		}
	}
	if r := get(t, c, ts.URL()+"/ui/suggest?field=target"); !strings.Contains(r.body, `"Team 1"`) || strings.Contains(r.body, "Mallory") || strings.Contains(r.body, "user_m") {
		t.Errorf("target suggestions: %s", r.body)
	}
	if r := get(t, c, ts.URL()+"/ui/suggest?field=password"); r.status != 400 {
		t.Errorf("a bad field: %d", r.status)
	}
}

// TestUI_Facets: the top actors, event types and target types of a view
// are counted from its events, each a link that narrows the view; a view
// larger than the facet limit shows lower bounds ("N+"); the same counts
// are a page of their own without the script.
func TestUI_Facets(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite", func(s *httpapi.Server, _ *jsonschema.Validator) { s.FacetLimit = 100 })
	org := ts.mustOrg(t, "org_facets")
	uiEvents(t, ts, org)
	c := browserClient(t)
	get(t, c, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))
	page := get(t, c, ts.URL()+"/ui/?range=all&actions=escalation_path.updated")
	if !strings.Contains(page.body, `data-src="/ui/facets?actions=escalation_path.updated&amp;range=all"`) || !strings.Contains(page.body, `href="/ui/top?actions=escalation_path.updated&amp;range=all"`) {
		t.Fatalf("no facets on the page:\n%s", page.body)
	}
	// 28 escalation_path.updated events (i%5 == 2): actors i%4, 7 each.
	frag := get(t, c, ts.URL()+"/ui/facets?actions=escalation_path.updated&range=all")
	if frag.status != 200 || strings.Contains(frag.body, "<html") || !strings.Contains(frag.body, "Counted from all 28 events") {
		t.Fatalf("fragment: %d %s", frag.status, frag.body)
	}
	items := regexp.MustCompile(`<li><a href="([^"]+)"[^>]*>([^<]+)</a> <span class="n">([^<]+)</span></li>`).FindAllStringSubmatch(frag.body, -1)
	got := map[string]string{}
	for _, m := range items {
		got[m[2]] = m[3] + " " + strings.ReplaceAll(m[1], "&amp;", "&")
	}
	for label, want := range map[string]string{
		"Grace Hopper":            "7 /ui/?actions=escalation_path.updated&actor=user_0&range=all",
		"escalation_path.updated": "28 /ui/?actions=escalation_path.updated&range=all",
		"team":                    "28 /ui/?actions=escalation_path.updated&range=all&targets=team",
		"user":                    "28 /ui/?actions=escalation_path.updated&range=all&targets=user",
	} {
		if got[label] != want {
			t.Errorf("%s: %q, want %q", label, got[label], want)
		}
	}
	// 140 events, counted up to 100: lower bounds.
	frag = get(t, c, ts.URL()+"/ui/facets?range=all")
	if !strings.Contains(frag.body, "Counted from the newest 100 events") || !regexp.MustCompile(`<span class="n">\d+\+</span>`).MatchString(frag.body) {
		t.Errorf("a large view: %s", frag.body)
	}
	if p := get(t, c, ts.URL()+"/ui/top?range=all"); p.status != 200 || !strings.Contains(p.body, "<h1>Top actors, event types and target types</h1>") || !strings.Contains(p.body, "Grace Hopper") {
		t.Errorf("the counts' page: %d", p.status)
	}
	if p := get(t, c, ts.URL()+"/ui/facets?from=nonsense"); p.status != http.StatusBadRequest {
		t.Errorf("a bad filter: %d", p.status)
	}
}

func mustQuery(t *testing.T, q string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
