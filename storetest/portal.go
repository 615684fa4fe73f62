package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

// testPortal: links open once, within five minutes, into a session found
// by its secret for twelve hours; opening is recorded in the
// organization's log with the person as the actor.
func testPortal(t *testing.T, s Services) {
	org := mustOrg(t, s, "Portal")
	other := mustOrg(t, s, "Other")
	ctx := trail.NewContextWithCaller(context.Background(), &trail.Caller{
		Actor:   trail.Actor{ID: "key_1", Type: "api_key"},
		Context: trail.EventContext{Location: "198.51.100.4", UserAgent: "Mozilla/5.0 portal"},
	})
	user := trail.PortalUser{ID: "user_42", Email: "ada@example.com", Name: "Ada Lovelace"}
	newLink := func(orgID, role string) *trail.PortalLink {
		t.Helper()
		l := &trail.PortalLink{OrganizationID: orgID, Intent: trail.IntentAuditLogs, User: user, Role: role}
		if err := s.Portal.CreatePortalLink(ctx, l); err != nil {
			t.Fatalf("CreatePortalLink: %v", err)
		}
		if l.ID == "" || len(l.Token) < 40 || l.ExpiresAt.Sub(l.CreatedAt) != trail.PortalLinkTTL {
			t.Fatalf("link = %+v", l)
		}
		return l
	}
	if err := s.Portal.CreatePortalLink(ctx, &trail.PortalLink{OrganizationID: "org_missing", Role: trail.RoleOwner}); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("link of an unknown organization: %v", err)
	}

	l := newLink(org.ID, trail.RoleAdmin)
	before := len(allEvents(t, s, trail.EventFilter{OrganizationID: org.ID}))
	sess, err := s.Portal.OpenPortalLink(ctx, l.Token, "session-secret-1")
	if err != nil {
		t.Fatalf("OpenPortalLink: %v", err)
	}
	if sess.ID != l.ID || sess.OrganizationID != org.ID || sess.User != user || sess.Role != trail.RoleAdmin ||
		sess.Intent != trail.IntentAuditLogs || sess.ExpiresAt.Sub(sess.OpenedAt) != trail.PortalSessionTTL || !sess.CanView() {
		t.Fatalf("session = %+v", sess)
	}
	evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Actions: []string{trail.ActionPortalSessionCreated}})
	if len(evs) != 1 || len(allEvents(t, s, trail.EventFilter{OrganizationID: org.ID})) != before+1 {
		t.Fatalf("%d portal_session.created events", len(evs))
	}
	ev := evs[0]
	if ev.Actor.ID != user.ID || ev.Actor.Type != "user" || ev.Actor.Name != user.Name || ev.Actor.Metadata["email"] != user.Email ||
		ev.Metadata["role"] != "admin" || ev.Metadata["intent"] != "audit_logs" || len(ev.Targets) != 1 ||
		ev.Targets[0].ID != l.ID || ev.Targets[0].Type != "portal_session" || ev.Context.Location != "198.51.100.4" {
		t.Fatalf("portal_session.created = %+v", ev)
	}
	if got := allEvents(t, s, trail.EventFilter{OrganizationID: other.ID, Actions: []string{trail.ActionPortalSessionCreated}}); len(got) != 0 {
		t.Fatalf("recorded in another organization: %d", len(got))
	}

	// Once only, and the second try records nothing.
	_, err = s.Portal.OpenPortalLink(ctx, l.Token, "session-secret-2")
	if trail.ErrorCode(err) != trail.ENOTFOUND || !strings.Contains(trail.ErrorMessage(err), "already used") {
		t.Fatalf("reused link: %v", err)
	}
	if _, err := s.Portal.OpenPortalLink(ctx, "no-such-token", "session-secret-3"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("unknown link: %v", err)
	}
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-2"); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
		t.Fatalf("a refused open made a session: %v", err)
	}
	if got := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID}); len(got) != before+1 {
		t.Fatalf("refused opens recorded events: %d", len(got)-before)
	}

	found, err := s.Portal.FindPortalSession(ctx, "session-secret-1")
	if err != nil || found.ID != sess.ID || found.Role != trail.RoleAdmin || found.User != user || found.OrganizationID != org.ID {
		t.Fatalf("FindPortalSession = %+v, %v", found, err)
	}

	member := newLink(other.ID, trail.RoleMember)
	expired := newLink(org.ID, trail.RoleOwner)
	ms, err := s.Portal.OpenPortalLink(ctx, member.Token, "session-secret-member")
	if err != nil || ms.CanView() || ms.OrganizationID != other.ID {
		t.Fatalf("member session = %+v, %v", ms, err)
	}

	// Links last five minutes, sessions twelve hours.
	s.Advance(trail.PortalLinkTTL + time.Second)
	_, err = s.Portal.OpenPortalLink(ctx, expired.Token, "session-secret-4")
	if trail.ErrorCode(err) != trail.ENOTFOUND || !strings.Contains(trail.ErrorMessage(err), "expired") {
		t.Fatalf("expired link: %v", err)
	}
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-1"); err != nil {
		t.Fatalf("session after five minutes: %v", err)
	}

	// Sign out ends one session only.
	if err := s.Portal.EndPortalSession(ctx, "session-secret-member"); err != nil {
		t.Fatal(err)
	}
	if err := s.Portal.EndPortalSession(ctx, "session-secret-member"); err != nil {
		t.Fatalf("ending an ended session: %v", err)
	}
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-member"); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
		t.Fatalf("ended session: %v", err)
	}
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-1"); err != nil {
		t.Fatalf("other session after a sign out: %v", err)
	}

	s.Advance(trail.PortalSessionTTL)
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-1"); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
		t.Fatalf("session after twelve hours: %v", err)
	}
	// A new link still works (and clears the rows that are over).
	fresh := newLink(org.ID, trail.RoleOwner)
	if _, err := s.Portal.OpenPortalLink(ctx, fresh.Token, "session-secret-5"); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
	if _, err := s.Portal.OpenPortalLink(ctx, l.Token, "session-secret-6"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("a link over and cleared: %v", err)
	}
}

// testCountEvents: the histogram's counts are those of the events that
// match, bucket by bucket, for the filters of the UI.
func testCountEvents(t *testing.T, s Services) {
	counter, ok := s.Events.(trail.EventCounter)
	if !ok {
		t.Skip("this implementation does not count events")
	}
	ctx := context.Background()
	org := mustOrg(t, s, "Counts")
	other := mustOrg(t, s, "Other")
	var ins []*trail.EventInput
	for n := range 120 {
		ins = append(ins, NewEvent(n))
	}
	mustAppend(t, s, org.ID, ins...)
	mustAppend(t, s, other.ID, ins[:50]...)

	start := baseTime.Add(-1000 * time.Second)
	end := baseTime.Add(-880 * time.Second)
	for _, tc := range []struct {
		name   string
		f      trail.EventFilter
		bucket time.Duration
		match  func(in *trail.EventInput) bool
	}{
		{"all", trail.EventFilter{}, 10 * time.Second, func(*trail.EventInput) bool { return true }},
		{"uneven buckets", trail.EventFilter{}, 7 * time.Second, func(*trail.EventInput) bool { return true }},
		{"action", trail.EventFilter{Actions: []string{"alert_route.updated"}}, 10 * time.Second,
			func(in *trail.EventInput) bool { return in.Action == "alert_route.updated" }},
		{"action prefix", trail.EventFilter{Actions: []string{"alert_route.*"}}, 30 * time.Second,
			func(in *trail.EventInput) bool { return strings.HasPrefix(in.Action, "alert_route.") }},
		{"actor", trail.EventFilter{ActorIDs: []string{"user_3"}}, 10 * time.Second,
			func(in *trail.EventInput) bool { return in.Actor.ID == "user_3" }},
		{"target", trail.EventFilter{TargetIDs: []string{"team_1"}, TargetTypes: []string{"team"}}, 10 * time.Second,
			func(in *trail.EventInput) bool { return in.Targets[1].ID == "team_1" }},
		{"words", trail.EventFilter{Query: "w3"}, 20 * time.Second,
			func(in *trail.EventInput) bool { return in.Metadata["word"] == "w3" }},
		{"nothing", trail.EventFilter{ActorIDs: []string{"nobody"}}, 10 * time.Second,
			func(*trail.EventInput) bool { return false }},
	} {
		f := tc.f
		f.OrganizationID = org.ID
		s, e := start.Add(5*time.Second), end
		f.RangeStart, f.RangeEnd = &s, &e
		got, err := counter.CountEvents(ctx, f, tc.bucket)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		n := int((e.Sub(s) + tc.bucket - 1) / tc.bucket)
		want := make([]int64, n)
		for _, in := range ins {
			at := in.OccurredAt
			if !at.Before(s) && at.Before(e) && tc.match(in) {
				want[int(at.Sub(s)/tc.bucket)]++
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d buckets, want %d", tc.name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: counts %v, want %v", tc.name, got, want)
			}
		}
	}
	if _, err := counter.CountEvents(ctx, trail.EventFilter{OrganizationID: org.ID}, time.Second); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("without a period: %v", err)
	}
}
