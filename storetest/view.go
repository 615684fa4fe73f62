package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// testSavedViews: an organization's views are its own, by name; a bad
// name or query, a name taken (any case) and a view past the limit are
// refused and store nothing; saving and deleting are recorded in the
// organization's log with the caller as actor.
func testSavedViews(t *testing.T, s Services) {
	org, other := mustOrg(t, s, "Views"), mustOrg(t, s, "Others")
	ctx := trail.NewContextWithCaller(context.Background(), &trail.Caller{Actor: trail.Actor{ID: "user_ada", Type: "user", Name: "Ada"}})
	save := func(orgID, name, query string) (*trail.SavedView, error) {
		v := &trail.SavedView{OrganizationID: orgID, Name: name, Query: query, CreatedBy: "user_ada"}
		return v, s.Portal.SaveView(ctx, v)
	}
	b, err := save(org.ID, "  Role changes ", "actions=user.role_%2A&range=7d")
	if err != nil || !strings.HasPrefix(b.ID, "audit_log_view_") || b.Name != "Role changes" {
		t.Fatalf("save: %+v %v", b, err)
	}
	ev := lastEvent(t, s, org.ID)
	if ev.Action != trail.ActionViewCreated || ev.Actor.ID != "user_ada" || ev.Targets[0].ID != b.ID || ev.Targets[0].Name != "Role changes" || ev.Metadata["query"] != b.Query {
		t.Fatalf("recorded %+v", ev)
	}
	a, err := save(org.ID, "alerts", "q=alert")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := save(other.ID, "Mine", "range=all"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, query, code string }{
		{"", "range=all", trail.EINVALID},
		{strings.Repeat("x", 101), "range=all", trail.EINVALID},
		{"tab\tname", "range=all", trail.EINVALID},
		{"Evil", "a=%zz", trail.EINVALID},
		{"Evil", "a=\\evil", trail.EINVALID},
		{"Evil", strings.Repeat("a", 2049), trail.EINVALID},
		{"ROLE CHANGES", "range=all", trail.ECONFLICT},
	} {
		if _, err := save(org.ID, bad.name, bad.query); trail.ErrorCode(err) != bad.code {
			t.Errorf("save %q %q: %v, want %s", bad.name, bad.query, err, bad.code)
		}
	}
	if _, err := save("org_missing", "x", "range=all"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Errorf("an unknown organization: %v", err)
	}
	views, err := s.Portal.FindViews(ctx, org.ID)
	if err != nil || len(views) != 2 || views[0].ID != a.ID || views[1].ID != b.ID || views[1].CreatedBy != "user_ada" || views[1].CreatedAt.IsZero() {
		t.Fatalf("views: %+v %v", views, err)
	}
	if err := s.Portal.DeleteView(ctx, other.ID, a.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("another organization's view: %v", err)
	}
	if err := s.Portal.DeleteView(ctx, org.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if ev := lastEvent(t, s, org.ID); ev.Action != trail.ActionViewDeleted || ev.Targets[0].ID != a.ID || ev.Targets[0].Name != "alerts" {
		t.Fatalf("recorded %+v", ev)
	}
	if err := s.Portal.DeleteView(ctx, org.ID, a.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("deleted twice: %v", err)
	}
	for i := len(views) - 1; i < trail.MaxSavedViews; i++ {
		if _, err := save(org.ID, "view "+strings.Repeat("i", i+1), "range=all"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := save(org.ID, "one too many", "range=all"); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("past the limit: %v", err)
	}
	if views, _ := s.Portal.FindViews(ctx, org.ID); len(views) != trail.MaxSavedViews {
		t.Fatalf("%d views", len(views))
	}
}
