package httpapi_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// TestUI_SavedViews: an owner or admin names the view on screen for all
// the organization's admins; it keeps only what the page's URL would;
// saving and deleting are recorded; another organization's view is not
// found, and a member can do neither.
func TestUI_SavedViews(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	org := ts.mustOrg(t, "org_views")
	other := ts.mustOrg(t, "org_views_other")
	uiEvents(t, ts, org)
	admin, admin2, stranger := browserClient(t), browserClient(t), browserClient(t)
	get(t, admin, ts.portalLink(t, org, trail.RoleAdmin, trail.IntentAuditLogs))
	get(t, admin2, ts.portalLink(t, org, trail.RoleOwner, trail.IntentAuditLogs))
	get(t, stranger, ts.portalLink(t, other, trail.RoleOwner, trail.IntentAuditLogs))
	p := get(t, admin, ts.URL()+"/ui/?actions=user.role_granted&range=7d&undo=range%3Dall")
	csrf := csrfField.FindStringSubmatch(p.body)[1]
	if !strings.Contains(p.body, `name="query" value="actions=user.role_granted&amp;range=7d"`) {
		t.Fatalf("the page does not offer to save its view without its page:\n%s", p.body)
	}
	// Without the token nothing is saved.
	if r := post(t, admin, ts.URL()+"/ui/views", url.Values{"name": {"Grants"}, "query": {"actions=user.role_granted&range=7d"}}); r.status != 403 {
		t.Fatalf("without a token: %d", r.status)
	}
	r := post(t, admin, ts.URL()+"/ui/views", url.Values{"csrf": {csrf}, "name": {"Grants this week"}, "query": {"actions=user.role_granted&range=7d&undo=range%3Dall&evil=1&after=AAAA"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/?actions=user.role_granted&range=7d" {
		t.Fatalf("save: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	// Every admin of the organization sees it; the page it opens says so.
	p = get(t, admin2, ts.URL()+"/ui/?actions=user.role_granted&range=7d")
	if !strings.Contains(p.body, `<a href="/ui/?actions=user.role_granted&amp;range=7d" aria-current="true">Grants this week</a>`) ||
		!strings.Contains(p.body, "<title>Grants this week · ") || !strings.Contains(p.body, "This is the view “Grants this week”") {
		t.Fatalf("the other admin's page:\n%s", p.body)
	}
	if p := get(t, stranger, ts.URL()+"/ui/"); strings.Contains(p.body, "Grants this week") || !strings.Contains(p.body, "No saved views yet") {
		t.Fatal("another organization sees the view")
	}
	// A name taken (any case), or none, is refused and says why.
	for name, want := range map[string]string{"grants THIS week": "exists", "": "name is required"} {
		if r := post(t, admin, ts.URL()+"/ui/views", url.Values{"csrf": {csrf}, "name": {name}, "query": {"range=all"}}); r.status/100 != 4 || !strings.Contains(r.body, want) {
			t.Errorf("save %q: %d %s", name, r.status, r.body)
		}
	}
	id := regexp.MustCompile(`action="/ui/views/([^/"]+)/delete"`).FindStringSubmatch(p.body)[1]
	// Another organization's owner cannot delete it: not found.
	scsrf := csrfField.FindStringSubmatch(get(t, stranger, ts.URL()+"/ui/").body)[1]
	if r := post(t, stranger, ts.URL()+"/ui/views/"+id+"/delete", url.Values{"csrf": {scsrf}}); r.status != 404 {
		t.Fatalf("another organization's delete: %d", r.status)
	}
	r = post(t, admin2, ts.URL()+"/ui/views/"+id+"/delete", url.Values{"csrf": {csrfField.FindStringSubmatch(p.body)[1]}, "back": {"https://evil.example/"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		t.Fatalf("delete: %d %q", r.status, r.header.Get("Location"))
	}
	if p := get(t, admin, ts.URL()+"/ui/"); strings.Contains(p.body, "Delete the view Grants this week") || !strings.Contains(p.body, "No saved views yet") {
		t.Fatal("the view is still listed")
	}
	for _, action := range []string{trail.ActionViewCreated, trail.ActionViewDeleted} {
		if ids := ts.apiIDs(t, org, url.Values{"actions": {action}}); len(ids) != 1 {
			t.Errorf("%s recorded %d times", action, len(ids))
		}
	}
	// A member may not save views.
	m := browserClient(t)
	get(t, m, ts.portalLink(t, org, trail.RoleMember, trail.IntentAuditLogs))
	if r := post(t, m, ts.URL()+"/ui/views", url.Values{"csrf": {scsrf}, "name": {"x"}, "query": {"range=all"}}); r.status != 403 {
		t.Errorf("a member: %d", r.status)
	}
}
