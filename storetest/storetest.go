// Package storetest is the conformance suite that every Trail storage
// driver runs. It uses only the root service interfaces, so a driver
// passes it without the suite knowing anything of its database.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Services { ... })
//	}
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

// Services are the driver's implementations on one fresh, empty database.
type Services struct {
	Events        trail.EventService
	Organizations trail.OrganizationService
	Schemas       trail.SchemaService
	APIKeys       trail.APIKeyService
	Idempotency   trail.IdempotencyService // optional: drivers have it, the HTTP client does not
	Logs          trail.LogStore           // optional, as Idempotency
	Exports       trail.ExportService      // optional, as Idempotency
	Streams       trail.StreamService      // optional, as Idempotency
	Portal        trail.PortalService      // optional, as Idempotency
	// Advance, if set, moves the services' clock on by d (links expire).
	Advance func(d time.Duration)
}

// Run runs the whole suite. newServices must return services on a fresh
// database for each call and clean it up with t.Cleanup.
func Run(t *testing.T, newServices func(t *testing.T) Services) {
	t.Run("Organizations", func(t *testing.T) { t.Parallel(); testOrganizations(t, newServices(t)) })
	t.Run("AppendEvents", func(t *testing.T) { t.Parallel(); testAppend(t, newServices(t)) })
	t.Run("Idempotency", func(t *testing.T) { t.Parallel(); testIdempotency(t, newServices(t)) })
	t.Run("ConcurrentAppend", func(t *testing.T) { t.Parallel(); testConcurrentAppend(t, newServices(t)) })
	t.Run("FindEvents", func(t *testing.T) { t.Parallel(); testFindEvents(t, newServices(t)) })
	t.Run("Cursors", func(t *testing.T) { t.Parallel(); testCursors(t, newServices(t)) })
	t.Run("Schemas", func(t *testing.T) { t.Parallel(); testSchemas(t, newServices(t)) })
	t.Run("APIKeys", func(t *testing.T) { t.Parallel(); testAPIKeys(t, newServices(t)) })
	t.Run("RepeatedTargets", func(t *testing.T) { t.Parallel(); testRepeatedTargets(t, newServices(t)) })
	t.Run("LargeEvent", func(t *testing.T) { t.Parallel(); testLargeEvent(t, newServices(t)) })
	t.Run("QueryWords", func(t *testing.T) { t.Parallel(); testQueryWords(t, newServices(t)) })
	withLogs := func(name string, test func(*testing.T, Services)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newServices(t)
			if s.Logs == nil {
				t.Skip("this implementation has no log store")
			}
			test(t, s)
		})
	}
	withLogs("TransparencyLog", testTransparencyLog)
	withLogs("Purge", testPurge)
	withLogs("PurgeEvidence", testPurgeEvidence)
	withLogs("PurgeKeep", testPurgeKeep)
	withLogs("Exports", func(t *testing.T, s Services) {
		if s.Exports == nil {
			t.Skip("this implementation has no export service")
		}
		testExports(t, s)
	})
	t.Run("Streams", func(t *testing.T) {
		t.Parallel()
		s := newServices(t)
		if s.Streams == nil {
			t.Skip("this implementation has no stream service")
		}
		testStreams(t, s)
	})
	t.Run("Portal", func(t *testing.T) {
		t.Parallel()
		s := newServices(t)
		if s.Portal == nil || s.Advance == nil {
			t.Skip("this implementation has no portal service")
		}
		testPortal(t, s)
	})
	t.Run("SavedViews", func(t *testing.T) {
		t.Parallel()
		s := newServices(t)
		if s.Portal == nil {
			t.Skip("this implementation has no portal service")
		}
		testSavedViews(t, s)
	})
	t.Run("CountEvents", func(t *testing.T) { t.Parallel(); testCountEvents(t, newServices(t)) })
	t.Run("StreamDelivery", func(t *testing.T) {
		t.Parallel()
		s := newServices(t)
		if s.Streams == nil {
			t.Skip("this implementation has no stream service")
		}
		testStreamDelivery(t, s)
	})
	t.Run("StoredResponses", func(t *testing.T) {
		t.Parallel()
		s := newServices(t)
		if s.Idempotency == nil {
			t.Skip("this implementation keeps no responses")
		}
		testStoredResponses(t, s)
	})
}

// baseTime anchors test events: an hour boundary in the recent past, so
// that equal n give identical events.
var baseTime = time.Now().UTC().Truncate(time.Hour)

// NewEvent returns a valid event for tests, varied by n; equal n give
// identical events.
func NewEvent(n int) *trail.EventInput {
	return &trail.EventInput{
		Action:     []string{"alert_route.updated", "alert_route.created", "escalation_path.updated", "user.role_granted"}[n%4],
		OccurredAt: baseTime.Add(-time.Duration(1000-n%1000) * time.Second),
		Actor:      trail.Actor{ID: fmt.Sprintf("user_%d", n%7), Type: []string{"user", "api_key"}[n%2], Name: fmt.Sprintf("Person %d", n%7)},
		Targets: []trail.Target{
			{ID: fmt.Sprintf("route_%d", n%5), Type: "alert_route", Name: "Critical alerts"},
			{ID: fmt.Sprintf("team_%d", n%3), Type: "team"},
		},
		Context:  trail.EventContext{Location: "203.0.113.7", UserAgent: "Mozilla/5.0 storetest"},
		Metadata: trail.Metadata{"n": json.Number(fmt.Sprint(n)), "word": fmt.Sprintf("w%d", n%11), "ok": n%2 == 0},
	}
}

func mustOrg(t *testing.T, s Services, name string) *trail.Organization {
	t.Helper()
	org := &trail.Organization{Name: name}
	if err := s.Organizations.CreateOrganization(context.Background(), org); err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	return org
}

func mustAppend(t *testing.T, s Services, orgID string, ins ...*trail.EventInput) []trail.AppendResult {
	t.Helper()
	res, err := s.Events.AppendEvents(context.Background(), orgID, ins)
	if err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	if len(res) != len(ins) {
		t.Fatalf("AppendEvents: %d results for %d events", len(res), len(ins))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("AppendEvents[%d]: %v", i, r.Err)
		}
	}
	return res
}

// allEvents walks every page of a filter and returns the events.
func allEvents(t *testing.T, s Services, f trail.EventFilter) []*trail.Event {
	t.Helper()
	var out []*trail.Event
	for {
		page, err := s.Events.FindEvents(context.Background(), f)
		if err != nil {
			t.Fatalf("FindEvents: %v", err)
		}
		out = append(out, page.Events...)
		if !page.HasMore {
			return out
		}
		last := page.Events[len(page.Events)-1].Index
		f.After = &last
	}
}

func testOrganizations(t *testing.T, s Services) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		org := mustOrg(t, s, "Acme")
		if len(org.ID) != 30 || org.ID[:4] != "org_" {
			t.Fatalf("id %q is not org_<ULID>", org.ID)
		}
		got, err := s.Organizations.FindOrganizationByID(ctx, org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Acme" || got.RetentionDays != trail.DefaultRetentionDays || got.CreatedAt.IsZero() {
			t.Fatalf("got %+v", got)
		}
		// organization.created is the first event of its own log.
		page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 || page.Events[0].Action != trail.ActionOrganizationCreated || page.Events[0].Index != 0 {
			t.Fatalf("own events: %+v", page.Events)
		}
		if page.Events[0].Targets[0].ID != org.ID {
			t.Fatalf("target %+v", page.Events[0].Targets)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.Organizations.FindOrganizationByID(ctx, "org_nope")
		if trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("err = %v", err)
		}
		if _, err := s.Organizations.UpdateRetention(ctx, "org_nope", 30); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("UpdateRetention err = %v", err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		if err := s.Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_dup", Name: "a"}); err != nil {
			t.Fatal(err)
		}
		err := s.Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_dup", Name: "b"})
		if trail.ErrorCode(err) != trail.ECONFLICT {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		var ids []string
		for i := 0; i < 5; i++ {
			ids = append(ids, mustOrg(t, s, fmt.Sprint("list", i)).ID)
		}
		var seen []string
		f := trail.ListFilter{Limit: 2, Ascending: true}
		for {
			orgs, more, err := s.Organizations.FindOrganizations(ctx, ids, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range orgs {
				seen = append(seen, o.ID)
			}
			if !more {
				break
			}
			f.After = orgs[len(orgs)-1].ID
		}
		if !slices.Equal(seen, ids) {
			t.Fatalf("paged %v, want %v", seen, ids)
		}
		orgs, _, err := s.Organizations.FindOrganizations(ctx, ids, trail.ListFilter{Limit: 10, Before: ids[3], Ascending: true})
		if err != nil || len(orgs) != 3 || orgs[0].ID != ids[0] || orgs[2].ID != ids[2] {
			t.Fatalf("before page = %v, %v", orgs, err)
		}
	})
	t.Run("Retention", func(t *testing.T) {
		org := mustOrg(t, s, "Retained")
		if _, err := s.Organizations.UpdateRetention(ctx, org.ID, 0); trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("0 days: %v", err)
		}
		if _, err := s.Organizations.UpdateRetention(ctx, org.ID, 3651); trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("3651 days: %v", err)
		}
		got, err := s.Organizations.UpdateRetention(ctx, org.ID, 30)
		if err != nil || got.RetentionDays != 30 {
			t.Fatalf("UpdateRetention = %+v, %v", got, err)
		}
		evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Actions: []string{trail.ActionRetentionUpdated}})
		if len(evs) != 1 || fmt.Sprint(evs[0].Metadata["retention_period_in_days"]) != "30" {
			t.Fatalf("retention events %+v", evs)
		}
	})
}

func testAppend(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Append")
	t.Run("OK", func(t *testing.T) {
		in := NewEvent(1)
		res := mustAppend(t, s, org.ID, in)
		if res[0].Index != 1 || len(res[0].ID) != 26 || res[0].Duplicate {
			t.Fatalf("result %+v", res[0])
		}
		got, err := s.Events.FindEventByID(ctx, org.ID, res[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Index != 1 || got.OrganizationID != org.ID || got.Action != in.Action || got.Version != 1 ||
			!got.OccurredAt.Equal(in.OccurredAt) || got.ReceivedAt.IsZero() || got.Actor.Name != in.Actor.Name ||
			len(got.Targets) != 2 || got.Targets[0].Name != "Critical alerts" || got.Context.UserAgent != in.Context.UserAgent {
			t.Fatalf("stored %+v", got)
		}
		if got.Metadata["n"] != json.Number("1") || got.Metadata["ok"] != false || got.Metadata["word"] != "w1" {
			t.Fatalf("metadata %#v", got.Metadata)
		}
	})
	t.Run("ConsecutiveIndexes", func(t *testing.T) {
		var ins []*trail.EventInput
		for i := 0; i < 300; i++ {
			ins = append(ins, NewEvent(1000+i))
		}
		res := mustAppend(t, s, org.ID, ins...)
		for i := range res {
			if res[i].Index != res[0].Index+int64(i) {
				t.Fatalf("index %d = %d after %d", i, res[i].Index, res[0].Index)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.Events.AppendEvents(ctx, "org_missing", []*trail.EventInput{NewEvent(2)})
		if trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OtherOrganizationIsNotFound", func(t *testing.T) {
		other := mustOrg(t, s, "Other")
		res := mustAppend(t, s, other.ID, NewEvent(3))
		if _, err := s.Events.FindEventByID(ctx, org.ID, res[0].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("cross-tenant read: %v", err)
		}
		if res[0].Index != 1 {
			t.Fatalf("each organization has its own index: %d", res[0].Index)
		}
	})
}

func testIdempotency(t *testing.T, s Services) {
	org := mustOrg(t, s, "Idem")
	ev := func(key string) *trail.EventInput { e := NewEvent(5); e.IdempotencyKey = key; return e }
	first := mustAppend(t, s, org.ID, ev("k1"))[0]
	t.Run("SameKeySameEvent", func(t *testing.T) {
		again := mustAppend(t, s, org.ID, ev("k1"))[0]
		if again.ID != first.ID || again.Index != first.Index || !again.Duplicate {
			t.Fatalf("retry = %+v, first %+v", again, first)
		}
	})
	t.Run("SameKeyOtherEvent", func(t *testing.T) {
		e := ev("k1")
		e.Action = "other.action"
		r := mustAppend(t, s, org.ID, e)[0]
		if r.ID == first.ID || r.Duplicate {
			t.Fatalf("a different event under the same key must be new: %+v", r)
		}
	})
	t.Run("NoKeyIdentical", func(t *testing.T) {
		a := mustAppend(t, s, org.ID, NewEvent(77))[0]
		b := mustAppend(t, s, org.ID, NewEvent(77))[0]
		if a.ID != b.ID || !b.Duplicate {
			t.Fatalf("identical events without key: %+v %+v", a, b)
		}
	})
	t.Run("WithinOneCall", func(t *testing.T) {
		res := mustAppend(t, s, org.ID, ev("k9"), ev("k9"), ev("k10"))
		if res[0].ID != res[1].ID || !res[1].Duplicate || res[2].ID == res[0].ID || res[2].Index != res[0].Index+1 {
			t.Fatalf("results %+v", res)
		}
	})
	t.Run("OtherOrganization", func(t *testing.T) {
		other := mustOrg(t, s, "Idem2")
		r := mustAppend(t, s, other.ID, ev("k1"))[0]
		if r.Duplicate || r.ID == first.ID {
			t.Fatalf("keys are per organization: %+v", r)
		}
	})
	t.Run("NothingStoredTwice", func(t *testing.T) {
		evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Limit: 1000})
		for i, e := range evs {
			if e.Index != int64(len(evs)-1-i) {
				t.Fatalf("index gap at %d: %d", i, e.Index)
			}
		}
		if len(evs) != 1+1+1+2+1 { // organization.created, k1, other.action, identical, k9, k10
			t.Fatalf("%d events stored", len(evs))
		}
	})
	// A commit larger than most (trail import's chunks of 5,000, written
	// in several statements of each kind) keeps every event once, in
	// order, and its keys.
	t.Run("LargeCommit", func(t *testing.T) {
		evs := make([]*trail.EventInput, 2500)
		for i := range evs {
			evs[i] = ev(fmt.Sprintf("large-%d", i))
		}
		res := mustAppend(t, s, org.ID, evs...)
		for i, r := range res {
			if r.Duplicate || r.Index != res[0].Index+int64(i) {
				t.Fatalf("event %d of a large commit: %+v (first %+v)", i, r, res[0])
			}
		}
		again := mustAppend(t, s, org.ID, evs...)
		for i, r := range again {
			if !r.Duplicate || r.ID != res[i].ID {
				t.Fatalf("event %d of a large commit sent again: %+v, first %+v", i, r, res[i])
			}
		}
	})
	// Imports (trail import): a durable entry outlives the window, an
	// ordinary one does not. Last: it moves the clock on.
	t.Run("DurableOutlivesTheWindow", func(t *testing.T) {
		if s.Advance == nil {
			t.Skip("no clock to move")
		}
		durable := func() *trail.EventInput { e := ev("import/trail:evt_1"); e.Durable = true; return e }
		d, o := mustAppend(t, s, org.ID, durable())[0], mustAppend(t, s, org.ID, ev("k-ordinary"))[0]
		s.Advance(trail.IdempotencyWindow + time.Hour)
		d2, o2 := mustAppend(t, s, org.ID, durable())[0], mustAppend(t, s, org.ID, ev("k-ordinary"))[0]
		if !d2.Duplicate || d2.ID != d.ID {
			t.Fatalf("a durable key past the window: %+v, first %+v: imported twice", d2, d)
		}
		if o2.Duplicate || o2.ID == o.ID {
			t.Fatalf("an ordinary key past the window: %+v, first %+v: must be a new event", o2, o)
		}
		// The same past the window in a large commit (SQLite deletes the
		// expired entry before it inserts the new one).
		s.Advance(trail.IdempotencyWindow + time.Hour)
		evs := []*trail.EventInput{ev("k-ordinary")}
		for i := range 2500 {
			evs = append(evs, ev(fmt.Sprintf("filler-%d", i)))
		}
		o3 := mustAppend(t, s, org.ID, evs...)[0]
		if o3.Duplicate || o3.ID == o2.ID {
			t.Fatalf("an ordinary key past the window, in a large commit: %+v, before %+v: must be a new event", o3, o2)
		}
		if o4 := mustAppend(t, s, org.ID, ev("k-ordinary"))[0]; !o4.Duplicate || o4.ID != o3.ID {
			t.Fatalf("its entry was not replaced: %+v, want %+v", o4, o3)
		}
	})
}

func testConcurrentAppend(t *testing.T, s Services) {
	orgs := []*trail.Organization{mustOrg(t, s, "C1"), mustOrg(t, s, "C2"), mustOrg(t, s, "C3")}
	const workers, perWorker = 24, 20
	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				org := orgs[(w+i)%len(orgs)]
				ins := []*trail.EventInput{NewEvent(w*1000 + i*2), NewEvent(w*1000 + i*2 + 1)}
				res, err := s.Events.AppendEvents(context.Background(), org.ID, ins)
				if err != nil {
					t.Errorf("AppendEvents: %v", err)
					return
				}
				mu.Lock()
				for _, r := range res {
					acked[r.ID] = r.Index
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	total := 0
	for _, org := range orgs {
		evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Limit: 1000, Ascending: true})
		for i, e := range evs {
			if e.Index != int64(i) {
				t.Fatalf("%s: index %d at position %d", org.ID, e.Index, i)
			}
			if idx, ok := acked[e.ID]; ok && idx != e.Index {
				t.Fatalf("acked index %d, stored %d", idx, e.Index)
			}
		}
		total += len(evs) - 1
	}
	if total != workers*perWorker*2 || len(acked) != total {
		t.Fatalf("stored %d, acked %d, want %d", total, len(acked), workers*perWorker*2)
	}
}

func testFindEvents(t *testing.T, s Services) {
	org := mustOrg(t, s, "Find")
	other := mustOrg(t, s, "FindOther")
	var ins []*trail.EventInput
	for i := 0; i < 120; i++ {
		ins = append(ins, NewEvent(i))
	}
	mustAppend(t, s, org.ID, ins...)
	mustAppend(t, s, other.ID, NewEvent(0), NewEvent(1))
	base := trail.EventFilter{OrganizationID: org.ID, Limit: 7} // several pages: cursors meet every plan
	count := func(pred func(*trail.EventInput) bool) int {
		n := 0
		for _, in := range ins {
			if pred(in) {
				n++
			}
		}
		return n
	}
	mid := ins[60].OccurredAt
	tests := []struct {
		name string
		f    func(*trail.EventFilter)
		want int
	}{
		{"All", func(f *trail.EventFilter) {}, 121},
		{"Action", func(f *trail.EventFilter) { f.Actions = []string{"alert_route.updated"} },
			count(func(in *trail.EventInput) bool { return in.Action == "alert_route.updated" })},
		{"ActionPrefix", func(f *trail.EventFilter) { f.Actions = []string{"alert_route.*"} },
			count(func(in *trail.EventInput) bool { return in.Action[:12] == "alert_route." })},
		{"ActionPrefixAndExact", func(f *trail.EventFilter) { f.Actions = []string{"alert_route.*", "user.role_granted"} },
			count(func(in *trail.EventInput) bool { return in.Action != "escalation_path.updated" })},
		{"ActorIDs", func(f *trail.EventFilter) { f.ActorIDs = []string{"user_1", "user_2"} },
			count(func(in *trail.EventInput) bool { return in.Actor.ID == "user_1" || in.Actor.ID == "user_2" })},
		{"ActorNames", func(f *trail.EventFilter) { f.ActorNames = []string{"Person 3"} },
			count(func(in *trail.EventInput) bool { return in.Actor.Name == "Person 3" })},
		{"ActorTypes", func(f *trail.EventFilter) { f.ActorTypes = []string{"user"} },
			count(func(in *trail.EventInput) bool { return in.Actor.Type == "user" })},
		{"TargetIDs", func(f *trail.EventFilter) { f.TargetIDs = []string{"route_4", "team_2"} },
			count(func(in *trail.EventInput) bool { return in.Targets[0].ID == "route_4" || in.Targets[1].ID == "team_2" })},
		{"TargetTypes", func(f *trail.EventFilter) { f.TargetTypes = []string{"team"} }, 120},
		{"TargetTypesAndIDs", func(f *trail.EventFilter) { f.TargetTypes = []string{"team"}; f.TargetIDs = []string{"route_1"} },
			count(func(in *trail.EventInput) bool { return in.Targets[0].ID == "route_1" })},
		{"ActorIDsAndActions", func(f *trail.EventFilter) { f.ActorIDs = []string{"user_3"}; f.Actions = []string{"alert_route.*"} },
			count(func(in *trail.EventInput) bool { return in.Actor.ID == "user_3" && in.Action[:12] == "alert_route." })},
		{"QueryAndActorType", func(f *trail.EventFilter) { f.Query = "w5"; f.ActorTypes = []string{"api_key"} },
			count(func(in *trail.EventInput) bool { return in.Metadata["word"] == "w5" && in.Actor.Type == "api_key" })},
		{"RangeAndActorName", func(f *trail.EventFilter) { f.RangeStart = &mid; f.ActorNames = []string{"Person 4"} },
			count(func(in *trail.EventInput) bool { return !in.OccurredAt.Before(mid) && in.Actor.Name == "Person 4" })},
		{"UnknownActionPrefix", func(f *trail.EventFilter) { f.Actions = []string{"nothing.*"} }, 0},
		{"RangeStartInclusive", func(f *trail.EventFilter) { f.RangeStart = &mid },
			1 + count(func(in *trail.EventInput) bool { return !in.OccurredAt.Before(mid) })}, // + organization.created
		{"RangeEndExclusive", func(f *trail.EventFilter) { f.RangeEnd = &mid },
			count(func(in *trail.EventInput) bool { return in.OccurredAt.Before(mid) })},
		{"Query", func(f *trail.EventFilter) { f.Query = "w3" },
			count(func(in *trail.EventInput) bool { return in.Metadata["word"] == "w3" })},
		{"QueryAllWords", func(f *trail.EventFilter) { f.Query = "w3 escalation" },
			count(func(in *trail.EventInput) bool {
				return in.Metadata["word"] == "w3" && in.Action == "escalation_path.updated"
			})},
		{"QueryIP", func(f *trail.EventFilter) { f.Query = "203.0.113.7" }, 120},
		{"QuerySyntaxIsLiteral", func(f *trail.EventFilter) { f.Query = `"w3 OR NEAR(` }, 0},
		{"Combined", func(f *trail.EventFilter) {
			f.Actions = []string{"alert_route.*"}
			f.ActorTypes = []string{"user"}
			f.TargetIDs = []string{"route_0"}
		}, count(func(in *trail.EventInput) bool {
			return in.Action[:12] == "alert_route." && in.Actor.Type == "user" && in.Targets[0].ID == "route_0"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			tt.f(&f)
			evs := allEvents(t, s, f)
			if len(evs) != tt.want {
				t.Fatalf("%d events, want %d", len(evs), tt.want)
			}
			f.Ascending = true
			asc := allEvents(t, s, f)
			if len(asc) != len(evs) {
				t.Fatalf("ascending: %d events, descending %d", len(asc), len(evs))
			}
			for i, e := range evs {
				if asc[len(asc)-1-i].ID != e.ID {
					t.Fatalf("ascending is not the reverse of descending at %d", i)
				}
				if e.OrganizationID != org.ID {
					t.Fatalf("event of another organization: %s", e.OrganizationID)
				}
				if i > 0 && evs[i-1].Index <= e.Index {
					t.Fatalf("not newest first at %d", i)
				}
			}
		})
	}
}

func testCursors(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Cursors")
	for i := 0; i < 50; i++ {
		mustAppend(t, s, org.ID, NewEvent(i))
	}
	t.Run("NoSkipNoRepeatWhileAppending", func(t *testing.T) {
		for _, asc := range []bool{false, true} {
			f := trail.EventFilter{OrganizationID: org.ID, Limit: 7, Ascending: asc}
			seen := map[int64]bool{}
			var order []int64
			n := 0
			for {
				page, err := s.Events.FindEvents(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Events {
					if seen[e.Index] {
						t.Fatalf("index %d repeated", e.Index)
					}
					seen[e.Index] = true
					order = append(order, e.Index)
				}
				mustAppend(t, s, org.ID, NewEvent(10000+n)) // new events arrive between pages
				n++
				if !page.HasMore {
					break
				}
				last := page.Events[len(page.Events)-1].Index
				f.After = &last
			}
			if asc {
				for i, idx := range order {
					if idx != int64(i) {
						t.Fatalf("ascending walk skipped: position %d has %d", i, idx)
					}
				}
			} else {
				for i, idx := range order {
					if idx != order[0]-int64(i) {
						t.Fatalf("descending walk skipped: %v", order)
					}
				}
				if order[len(order)-1] != 0 {
					t.Fatalf("descending walk did not reach index 0")
				}
			}
		}
	})
	t.Run("Before", func(t *testing.T) {
		c := int64(20)
		page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Limit: 5, Before: &c})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range page.Events {
			got = append(got, e.Index)
		}
		if !slices.Equal(got, []int64{25, 24, 23, 22, 21}) || !page.HasMore {
			t.Fatalf("before page %v more=%v", got, page.HasMore)
		}
		page, err = s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Limit: 5, Before: &c, Ascending: true})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range page.Events {
			got = append(got, e.Index)
		}
		if !slices.Equal(got, []int64{15, 16, 17, 18, 19}) {
			t.Fatalf("ascending before page %v", got)
		}
	})
}

func testSchemas(t *testing.T, s Services) {
	ctx := context.Background()
	sc := &trail.Schema{Action: "invoice.paid", Targets: []trail.SchemaTarget{{Type: "invoice", Metadata: json.RawMessage(`{"type":"object"}`)}},
		Metadata: json.RawMessage(`{"type":"object","properties":{"amount":{"type":"number"}}}`)}
	if err := s.Schemas.CreateSchema(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if sc.Version != 1 || sc.CreatedAt.IsZero() {
		t.Fatalf("created %+v", sc)
	}
	sc2 := &trail.Schema{Action: "invoice.paid", Targets: []trail.SchemaTarget{{Type: "invoice"}, {Type: "customer"}}}
	if err := s.Schemas.CreateSchema(ctx, sc2); err != nil || sc2.Version != 2 {
		t.Fatalf("second version %d, %v", sc2.Version, err)
	}
	got, err := s.Schemas.FindSchema(ctx, "invoice.paid", 1)
	if err != nil || string(got.Metadata) != string(sc.Metadata) || got.Targets[0].Type != "invoice" || len(got.Targets) != 1 {
		t.Fatalf("version 1 = %+v, %v", got, err)
	}
	if _, err := s.Schemas.FindSchema(ctx, "invoice.paid", 3); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("version 3: %v", err)
	}
	if ok, err := s.Schemas.HasSchemas(ctx, "nothing.here"); ok || err != nil {
		t.Fatalf("HasSchemas = %v, %v", ok, err)
	}
	list, more, err := s.Schemas.FindSchemas(ctx, "invoice.paid", trail.ListFilter{Limit: 1})
	if err != nil || len(list) != 1 || list[0].Version != 2 || !more {
		t.Fatalf("FindSchemas = %+v %v %v", list, more, err)
	}
	list, more, err = s.Schemas.FindSchemas(ctx, "invoice.paid", trail.ListFilter{Limit: 1, After: "2"})
	if err != nil || len(list) != 1 || list[0].Version != 1 || more {
		t.Fatalf("FindSchemas after 2 = %+v %v %v", list, more, err)
	}
	if _, _, err := s.Schemas.FindSchemas(ctx, "nothing.here", trail.ListFilter{}); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("unknown action: %v", err)
	}
	for _, a := range []string{"a.one", "b.two"} {
		if err := s.Schemas.CreateSchema(ctx, &trail.Schema{Action: a, Targets: []trail.SchemaTarget{{Type: "x"}}}); err != nil {
			t.Fatal(err)
		}
	}
	acts, _, err := s.Schemas.FindActions(ctx, trail.ListFilter{Limit: 10, Ascending: true})
	if err != nil || len(acts) != 3 || acts[0].Name != "a.one" || acts[2].Name != "invoice.paid" || acts[2].Schema.Version != 2 {
		t.Fatalf("FindActions = %+v, %v", acts, err)
	}
	evs := allEvents(t, s, trail.EventFilter{OrganizationID: trail.SystemOrganizationID, Actions: []string{trail.ActionSchemaCreated}})
	if len(evs) != 4 {
		t.Fatalf("%d audit_log_schema.created events", len(evs))
	}
}

func testAPIKeys(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Keys")
	k := &trail.APIKey{Name: "ingest", OrganizationID: org.ID, Permissions: []trail.Permission{trail.PermEventsWrite}}
	if err := s.APIKeys.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) < 32 || k.Secret[:3] != "sk_" || k.ID[:4] != "key_" {
		t.Fatalf("key %+v", k)
	}
	t.Run("Authenticate", func(t *testing.T) {
		got, err := s.APIKeys.Authenticate(ctx, k.Secret)
		if err != nil || got.ID != k.ID || got.Secret != "" || !got.Can(trail.PermEventsWrite) || got.Can(trail.PermEventsRead) {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		bad := k.Secret[:len(k.Secret)-1] + "x"
		if bad == k.Secret {
			bad = k.Secret[:len(k.Secret)-1] + "y"
		}
		if _, err := s.APIKeys.Authenticate(ctx, bad); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			t.Fatalf("wrong secret: %v", err)
		}
	})
	t.Run("GivenSecret", func(t *testing.T) {
		secret := "sk_test_given_secret_0123456789abcdef"
		k2 := &trail.APIKey{Name: "boot", Permissions: []trail.Permission{trail.PermAdmin}, Secret: secret}
		if err := s.APIKeys.CreateAPIKey(ctx, k2); err != nil {
			t.Fatal(err)
		}
		got, err := s.APIKeys.Authenticate(ctx, secret)
		if err != nil || got.ID != k2.ID || !got.Can(trail.PermKeys) {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		// A secret names one key.
		again := &trail.APIKey{Name: "boot again", Permissions: []trail.Permission{trail.PermAdmin}, Secret: secret}
		if err := s.APIKeys.CreateAPIKey(ctx, again); trail.ErrorCode(err) != trail.ECONFLICT {
			t.Fatalf("second key with the same secret: %v", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		err := s.APIKeys.CreateAPIKey(ctx, &trail.APIKey{Name: "x", Permissions: []trail.Permission{"root"}})
		if trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("unknown permission: %v", err)
		}
		err = s.APIKeys.CreateAPIKey(ctx, &trail.APIKey{Name: "x", OrganizationID: "org_nope", Permissions: []trail.Permission{trail.PermEventsRead}})
		if trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("unknown organization: %v", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		keys, _, err := s.APIKeys.FindAPIKeys(ctx, org.ID, trail.ListFilter{Limit: 10})
		if err != nil || len(keys) != 1 || keys[0].ID != k.ID || keys[0].Secret != "" {
			t.Fatalf("FindAPIKeys = %+v, %v", keys, err)
		}
		all, _, err := s.APIKeys.FindAPIKeys(ctx, "", trail.ListFilter{Limit: 100})
		if err != nil || !slices.ContainsFunc(all, func(x *trail.APIKey) bool { return x.ID == k.ID }) ||
			!slices.ContainsFunc(all, func(x *trail.APIKey) bool { return x.OrganizationID == "" }) {
			t.Fatalf("all keys = %d, %v", len(all), err)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		if err := s.APIKeys.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.APIKeys.Authenticate(ctx, k.Secret); trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			t.Fatalf("revoked key authenticated: %v", err)
		}
		got, err := s.APIKeys.FindAPIKeyByID(ctx, k.ID)
		if err != nil || got.RevokedAt == nil {
			t.Fatalf("FindAPIKeyByID = %+v, %v", got, err)
		}
		if err := s.APIKeys.RevokeAPIKey(ctx, "key_nope"); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("revoke unknown: %v", err)
		}
		evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Actions: []string{"api_key.*"}})
		if len(evs) != 2 || evs[0].Action != trail.ActionAPIKeyRevoked || evs[1].Action != trail.ActionAPIKeyCreated {
			t.Fatalf("key events %+v", evs)
		}
	})
}

// testRepeatedTargets: an event that names the same target type several
// times is one result, and paging by type reaches every event.
func testRepeatedTargets(t *testing.T, s Services) {
	org := mustOrg(t, s, "Repeated")
	var ins []*trail.EventInput
	for i := 0; i < 30; i++ {
		in := NewEvent(i)
		in.Targets = []trail.Target{{ID: "u1", Type: "user"}, {ID: "u2", Type: "user"}, {ID: "u3", Type: "user"}, {ID: fmt.Sprint("t", i), Type: "team"}}
		ins = append(ins, in)
	}
	mustAppend(t, s, org.ID, ins...)
	for _, f := range []trail.EventFilter{
		{OrganizationID: org.ID, Limit: 7, TargetTypes: []string{"user"}},
		{OrganizationID: org.ID, Limit: 7, TargetTypes: []string{"user", "team"}},
		{OrganizationID: org.ID, Limit: 7, TargetIDs: []string{"u1", "u2"}},
	} {
		evs := allEvents(t, s, f)
		if len(evs) != 30 {
			t.Fatalf("%+v: %d events, want 30", f, len(evs))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Index >= evs[i-1].Index {
				t.Fatalf("repeated or out of order at %d", i)
			}
		}
	}
}

// testLargeEvent: an event at the size limits, with tens of thousands of
// words (many repeated), is stored whole and found.
func testLargeEvent(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Large")
	in := NewEvent(1)
	in.Metadata, in.Actor.Metadata = trail.Metadata{}, trail.Metadata{}
	for k := 0; k < trail.MaxMetadataKeys; k++ {
		in.Metadata[fmt.Sprint("k", k)] = strings.Repeat("a b ", 125)
		in.Actor.Metadata[fmt.Sprint("k", k)] = strings.Repeat("b c ", 124) + "zz"
	}
	in.Context.UserAgent = "needle"
	res := mustAppend(t, s, org.ID, in, NewEvent(2))
	ev, err := s.Events.FindEventByID(ctx, org.ID, res[0].ID)
	if err != nil || len(ev.Metadata) != trail.MaxMetadataKeys || ev.Actor.Metadata["k49"] != in.Actor.Metadata["k49"] {
		t.Fatalf("large event: %v", err)
	}
	page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Query: "needle"})
	if err != nil || len(page.Events) != 1 || page.Events[0].ID != res[0].ID {
		t.Fatalf("q in a large event: %v %v", page, err)
	}
}

// testQueryWords: q splits words as SQLite's FTS5 unicode61 tokenizer
// does, on every driver: case-folded, one Latin diacritic removed,
// other accents kept, combining marks other than Latin diacritics
// separating words.
func testQueryWords(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Words")
	in := NewEvent(1)
	in.Actor.Name = "हिन्दी Việt Σίσυφος Café x\u0301y INC-4711 \uE000pua"
	mustAppend(t, s, org.ID, in)
	for q, want := range map[string]int{
		"cafe": 1, "CAFÉ": 1, "café": 1, "việt": 1, "viet": 0, "ΣΊΣΥΦΟΣ": 1, "σισυφος": 0, "xy": 1,
		"हिन": 1, "नद": 0, "inc-4711": 1, "4711": 1, "inc 4711": 1, "4711-inc": 0, "\uE000pua": 1, "   ": 2, "!!!": 0,
	} {
		page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Query: q})
		if err != nil || len(page.Events) != want {
			t.Errorf("q %q: %d events, want %d (%v)", q, len(page.Events), want, err)
		}
	}
}

func testStoredResponses(t *testing.T, s Services) {
	ctx := context.Background()
	h := trail.ResponseKey{Hash: [32]byte{1, 2, 3}}
	if r, err := s.Idempotency.ClaimResponse(ctx, h); err != nil || r != nil {
		t.Fatalf("first claim = %v, %v", r, err)
	}
	if _, err := s.Idempotency.ClaimResponse(ctx, h); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("claim while running: %v", err)
	}
	if err := s.Idempotency.FinishResponse(ctx, h, &trail.StoredResponse{Status: 201, Body: []byte(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Idempotency.ClaimResponse(ctx, h)
	if err != nil || r == nil || r.Status != 201 || string(r.Body) != `{"ok":true}` {
		t.Fatalf("replay = %+v, %v", r, err)
	}
	h2 := trail.ResponseKey{OrganizationID: "org_x", Hash: [32]byte{9}}
	if r, err := s.Idempotency.ClaimResponse(ctx, h2); err != nil || r != nil {
		t.Fatalf("claim = %v, %v", r, err)
	}
	if err := s.Idempotency.ReleaseResponse(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Idempotency.ClaimResponse(ctx, h2); err != nil || r != nil {
		t.Fatalf("a released claim can be claimed again: %v, %v", r, err)
	}
}
