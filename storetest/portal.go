package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

// testPortal: links open once, within five minutes, into a session found
// by its secret for twelve hours; opening is recorded in the
// organization's log with the person as the actor.
func testPortal(t *testing.T, s Services) {
	f := &portalFixture{s: s, org: mustOrg(t, s, "Portal"), other: mustOrg(t, s, "Other"),
		user: trail.PortalUser{ID: "user_42", Email: "ada@example.com", Name: "Ada Lovelace", TimeZone: "America/Los_Angeles", Locale: "en-US"}}
	f.ctx = trail.NewContextWithCaller(context.Background(), &trail.Caller{
		Actor:   trail.Actor{ID: "key_1", Type: "api_key"},
		Context: trail.EventContext{Location: "198.51.100.4", UserAgent: "Mozilla/5.0 portal"},
	})
	if err := s.Portal.CreatePortalLink(f.ctx, &trail.PortalLink{OrganizationID: "org_missing", Role: trail.RoleOwner}); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("link of an unknown organization: %v", err)
	}
	// Each step goes on from the one before it.
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Open", f.testOpen},
		{"OnceOnly", f.testOnceOnly},
		{"ShowUTC", f.testShowUTC},
		{"LinkExpiry", f.testLinkExpiry},
		{"SignOut", f.testSignOut},
		{"SessionExpiry", f.testSessionExpiry},
		{"Race", f.testRace},
	} {
		if !t.Run(step.name, step.run) {
			return
		}
	}
}

// portalFixture is what testPortal's steps share.
type portalFixture struct {
	ctx        context.Context
	s          Services
	org, other *trail.Organization
	user       trail.PortalUser
	l          *trail.PortalLink    // opened by testOpen
	sess       *trail.PortalSession // what it opened into
	expired    *trail.PortalLink    // left to expire
	before     int                  // org's events before the first open
}

func (f *portalFixture) newLink(t *testing.T, orgID, role string) *trail.PortalLink {
	t.Helper()
	l := &trail.PortalLink{OrganizationID: orgID, Intent: trail.IntentAuditLogs, User: f.user, Role: role, ReturnTo: "/ui/?actions=user.%2A"}
	if err := f.s.Portal.CreatePortalLink(f.ctx, l); err != nil {
		t.Fatalf("CreatePortalLink: %v", err)
	}
	if l.ID == "" || len(l.Token) < 40 || l.ExpiresAt.Sub(l.CreatedAt) != trail.PortalLinkTTL {
		t.Fatalf("link = %+v", l)
	}
	return l
}

// testOpen: a link opens into a session, recorded in its organization with the person as the actor.
func (f *portalFixture) testOpen(t *testing.T) {
	ctx, s, org, other, user := f.ctx, f.s, f.org, f.other, f.user
	l := f.newLink(t, org.ID, trail.RoleAdmin)
	before := len(allEvents(t, s, trail.EventFilter{OrganizationID: org.ID}))
	sess, err := s.Portal.OpenPortalLink(ctx, l.Token, "session-secret-1")
	if err != nil {
		t.Fatalf("OpenPortalLink: %v", err)
	}
	if sess.ID != l.ID || sess.OrganizationID != org.ID || sess.User != user || sess.Role != trail.RoleAdmin ||
		sess.Intent != trail.IntentAuditLogs || sess.ExpiresAt.Sub(sess.OpenedAt) != trail.PortalSessionTTL || !sess.CanView() ||
		sess.ReturnTo != l.ReturnTo || sess.ShowUTC {
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
	f.l, f.sess, f.before = l, sess, before
}

// testOnceOnly: a link opens once only, and the second try records nothing.
func (f *portalFixture) testOnceOnly(t *testing.T) {
	ctx, s, org, user, l, sess, before := f.ctx, f.s, f.org, f.user, f.l, f.sess, f.before
	_, err := s.Portal.OpenPortalLink(ctx, l.Token, "session-secret-2")
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
}

// testShowUTC: a session remembers its person's choice of UTC, and only
// its own.
func (f *portalFixture) testShowUTC(t *testing.T) {
	for _, utc := range []bool{true, false, true} {
		if err := f.s.Portal.SetPortalSessionUTC(f.ctx, "session-secret-1", utc); err != nil {
			t.Fatal(err)
		}
		found, err := f.s.Portal.FindPortalSession(f.ctx, "session-secret-1")
		if err != nil || found.ShowUTC != utc || found.User != f.user {
			t.Fatalf("after SetPortalSessionUTC(%v): %+v, %v", utc, found, err)
		}
	}
	other := f.newLink(t, f.org.ID, trail.RoleAdmin)
	sess, err := f.s.Portal.OpenPortalLink(f.ctx, other.Token, "session-secret-utc")
	if err != nil || sess.ShowUTC {
		t.Fatalf("another session: %+v, %v", sess, err)
	}
	if err := f.s.Portal.SetPortalSessionUTC(f.ctx, "session-secret-1", false); err != nil {
		t.Fatal(err)
	}
}

// testLinkExpiry: links last five minutes, sessions longer.
func (f *portalFixture) testLinkExpiry(t *testing.T) {
	ctx, s, org, other := f.ctx, f.s, f.org, f.other
	member := f.newLink(t, other.ID, trail.RoleMember)
	f.expired = f.newLink(t, org.ID, trail.RoleOwner)
	ms, err := s.Portal.OpenPortalLink(ctx, member.Token, "session-secret-member")
	if err != nil || ms.CanView() || ms.OrganizationID != other.ID {
		t.Fatalf("member session = %+v, %v", ms, err)
	}

	s.Advance(trail.PortalLinkTTL + time.Second)
	_, err = s.Portal.OpenPortalLink(ctx, f.expired.Token, "session-secret-4")
	if trail.ErrorCode(err) != trail.ENOTFOUND || !strings.Contains(trail.ErrorMessage(err), "expired") {
		t.Fatalf("expired link: %v", err)
	}
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-1"); err != nil {
		t.Fatalf("session after five minutes: %v", err)
	}
}

// testSignOut: sign out ends one session only.
func (f *portalFixture) testSignOut(t *testing.T) {
	ctx, s := f.ctx, f.s
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
}

// testSessionExpiry: sessions last twelve hours; a new link still works after, and clears the rows that are over.
func (f *portalFixture) testSessionExpiry(t *testing.T) {
	ctx, s, org, expired := f.ctx, f.s, f.org, f.expired
	s.Advance(trail.PortalSessionTTL)
	if _, err := s.Portal.FindPortalSession(ctx, "session-secret-1"); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
		t.Fatalf("session after twelve hours: %v", err)
	}
	// A new link still works, and clears the rows that are over: the
	// expired link is then unknown rather than expired.
	fresh := f.newLink(t, org.ID, trail.RoleOwner)
	if _, err := s.Portal.OpenPortalLink(ctx, fresh.Token, "session-secret-5"); err != nil {
		t.Fatalf("fresh link: %v", err)
	}
	if _, err := s.Portal.OpenPortalLink(ctx, expired.Token, "session-secret-6"); trail.ErrorCode(err) != trail.ENOTFOUND ||
		!strings.Contains(trail.ErrorMessage(err), "not valid") {
		t.Fatalf("a link over and cleared: %v", err)
	}
}

// testRace: eight browsers open one link at once: one session, one event.
func (f *portalFixture) testRace(t *testing.T) {
	ctx, s, other := f.ctx, f.s, f.other
	race := f.newLink(t, other.ID, trail.RoleOwner)
	before := len(allEvents(t, s, trail.EventFilter{OrganizationID: other.ID}))
	var wg sync.WaitGroup
	var opened atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Portal.OpenPortalLink(ctx, race.Token, fmt.Sprintf("race-%d", i))
			if err == nil {
				opened.Add(1)
			} else if trail.ErrorCode(err) != trail.ENOTFOUND {
				t.Errorf("racing open: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d racing opens succeeded, want 1", n)
	}
	if got := len(allEvents(t, s, trail.EventFilter{OrganizationID: other.ID})); got != before+1 {
		t.Fatalf("racing opens recorded %d events", got-before)
	}
}

// wantCounts groups the events FindEvents returns for f's filters and
// period into CountEvents' buckets: the reference the counts must equal.
func wantCounts(t *testing.T, s Services, f trail.EventFilter, bucket time.Duration) []int64 {
	t.Helper()
	n, err := trail.Buckets(f, bucket)
	if err != nil {
		t.Fatal(err)
	}
	w := int64(bucket)
	b0 := f.RangeStart.UnixNano() / w
	want := make([]int64, n)
	f.Limit = 1000
	for _, ev := range allEvents(t, s, f) {
		want[ev.OccurredAt.UnixNano()/w-b0]++
	}
	return want
}

func checkCounts(t *testing.T, s Services, name string, f trail.EventFilter, bucket time.Duration) int64 {
	t.Helper()
	got, err := s.Events.(trail.EventCounter).CountEvents(context.Background(), f, bucket)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	want := wantCounts(t, s, f, bucket)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: counts\n%v\nwant\n%v", name, got, want)
	}
	var total int64
	for _, c := range got {
		total += c
	}
	return total
}

// testCountEvents: the histogram's counts are those of the events that
// FindEvents returns, bucket by bucket, for the filters of the UI, in
// minutes (counted from the events) and in hours and days (summed from
// hourly counts kept as events are appended, with the partial first and
// last hours counted from the events).
func testCountEvents(t *testing.T, s Services) {
	if _, ok := s.Events.(trail.EventCounter); !ok {
		t.Skip("this implementation does not count events")
	}
	org := mustOrg(t, s, "Counts")
	other := mustOrg(t, s, "Other")
	// 400 events over the 39 hours after baseTime - 40 h, 3 to 9 minutes
	// apart, and the same in another organization.
	var ins []*trail.EventInput
	at := baseTime.Add(-40 * time.Hour)
	for n := range 400 {
		in := NewEvent(n)
		at = at.Add(time.Duration(17+n*7%37) * time.Minute / 6)
		in.OccurredAt = at
		ins = append(ins, in)
	}
	for i := 0; i < len(ins); i += 100 {
		mustAppend(t, s, org.ID, ins[i:i+100]...)
	}
	mustAppend(t, s, other.ID, ins[:150]...)

	for _, period := range []struct {
		name       string
		start, end time.Time
	}{
		{"whole hours", baseTime.Add(-41 * time.Hour), baseTime},
		{"ragged", baseTime.Add(-39*time.Hour - 17*time.Minute - 3*time.Second), baseTime.Add(-2*time.Hour - 41*time.Minute)},
		{"within an hour", baseTime.Add(-20*time.Hour - 50*time.Minute), baseTime.Add(-20*time.Hour - 5*time.Minute)},
	} {
		for _, tc := range []struct {
			name   string
			f      trail.EventFilter
			bucket time.Duration
		}{
			{"all by 5 minutes", trail.EventFilter{}, 5 * time.Minute},
			{"all by 29 seconds", trail.EventFilter{}, 29 * time.Second},
			{"all by hour", trail.EventFilter{}, time.Hour},
			{"all by 3 hours", trail.EventFilter{}, 3 * time.Hour},
			{"all by day", trail.EventFilter{}, 24 * time.Hour},
			{"action by hour", trail.EventFilter{Actions: []string{"alert_route.updated"}}, time.Hour},
			{"actions by 6 hours", trail.EventFilter{Actions: []string{"alert_route.*", "user.role_granted"}}, 6 * time.Hour},
			{"action by 15 minutes", trail.EventFilter{Actions: []string{"escalation_path.updated"}}, 15 * time.Minute},
			{"actor by hour", trail.EventFilter{ActorIDs: []string{"user_3"}}, time.Hour},
			{"actor name and action", trail.EventFilter{ActorNames: []string{"Person 2"}, Actions: []string{"alert_route.*"}}, time.Hour},
			{"actor type", trail.EventFilter{ActorTypes: []string{"api_key"}}, 3 * time.Hour},
			{"target id", trail.EventFilter{TargetIDs: []string{"team_1", "route_4"}}, time.Hour},
			{"target type and id", trail.EventFilter{TargetIDs: []string{"team_1"}, TargetTypes: []string{"team"}}, 6 * time.Hour},
			{"target type", trail.EventFilter{TargetTypes: []string{"alert_route"}}, time.Hour},
			{"words", trail.EventFilter{Query: "w3"}, time.Hour},
			{"words and action", trail.EventFilter{Query: "w3", Actions: []string{"user.role_granted"}}, 20 * time.Minute},
			{"nothing", trail.EventFilter{ActorIDs: []string{"nobody"}}, time.Hour},
		} {
			f := tc.f
			f.OrganizationID = org.ID
			f.RangeStart, f.RangeEnd = ptr(period.start), ptr(period.end)
			total := checkCounts(t, s, period.name+", "+tc.name, f, tc.bucket)
			if tc.name == "all by hour" && period.name == "whole hours" && total != 400 {
				t.Fatalf("%d events counted in all, want 400", total)
			}
		}
	}
	if _, err := s.Events.(trail.EventCounter).CountEvents(context.Background(), trail.EventFilter{OrganizationID: org.ID}, time.Second); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("without a period: %v", err)
	}
}
