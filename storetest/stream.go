package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/secretbox"
	"github.com/trail-audit/trail/internal/testwait"
)

// newStream returns a GenericHttps stream of the organization, with
// made-up sealed secrets (the driver stores them as they are).
func newStream(orgID, name string) *trail.Stream {
	return &trail.Stream{OrganizationID: orgID, Type: trail.StreamHTTPS, Name: name,
		Config: trail.StreamConfig{URL: "https://example.com/hook", Format: "json"}, Sealed: []byte("sealed:" + name), SecretFields: []string{"secret"}}
}

// lastEvent returns the newest event of the organization.
func lastEvent(t *testing.T, s Services, orgID string) *trail.Event {
	t.Helper()
	page, err := s.Events.FindEvents(context.Background(), trail.EventFilter{OrganizationID: orgID, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("newest event: %v (%d)", err, len(page.Events))
	}
	return page.Events[0]
}

// changeStream applies a change as the API does, with its audit event.
func changeStream(s Services, orgID, id, action string, apply func(*trail.Stream) error) (*trail.Stream, error) {
	return s.Streams.UpdateStream(context.Background(), orgID, id, trail.StreamChange{Action: action, Apply: apply})
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if trail.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

func testStreams(t *testing.T, s Services) {
	ctx := context.Background()
	f := &streamsFixture{ctx: ctx, s: s}
	f.orgA, f.orgB = mustOrg(t, s, "Streams A"), mustOrg(t, s, "Streams B")
	// Each step goes on from the one before it.
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Create", f.testCreate},
		{"Claims", f.testClaims},
		{"Deliveries", f.testDeliveries},
		{"Takeover", f.testTakeover},
		{"Lists", f.testLists},
		{"Delete", f.testDelete},
	} {
		if !t.Run(step.name, step.run) {
			return
		}
	}
}

// streamsFixture is what testStreams' steps share.
type streamsFixture struct {
	ctx        context.Context
	s          Services
	orgA, orgB *trail.Organization
	st         *trail.Stream // the first stream, active
	held       *trail.Stream // st as its holder has it
	third      *trail.Stream // st as node-a holds it after the takeover
}

// testCreate: stores a stream, records its creation and finds it in its organization only.
func (f *streamsFixture) testCreate(t *testing.T) {
	ctx, s, orgA, orgB := f.ctx, f.s, f.orgA, f.orgB
	st := newStream(orgA.ID, "first")
	if err := s.Streams.CreateStream(ctx, st); err != nil {
		t.Fatal(err)
	}
	created := lastEvent(t, s, orgA.ID)
	if st.ID == "" || st.State != trail.StreamActive || st.Generation != 1 || st.Cursor != created.Index || st.Lag != 1 {
		t.Fatalf("created stream %+v; its event has index %d", st, created.Index)
	}
	if created.Action != trail.ActionStreamCreated || created.Targets[0].ID != st.ID || created.Metadata["type"] != trail.StreamHTTPS {
		t.Fatalf("created event %+v", created)
	}
	got, err := s.Streams.FindStreamByID(ctx, orgA.ID, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "first" || got.Config != st.Config || string(got.Sealed) != "sealed:first" || !slices.Equal(got.SecretFields, []string{"secret"}) ||
		got.Cursor != st.Cursor || got.CreatedAt.IsZero() || got.LastSyncedAt != nil {
		t.Fatalf("stored stream %+v", got)
	}
	if _, err := s.Streams.FindStreamByID(ctx, "", st.ID); err != nil {
		t.Fatalf("any organization: %v", err)
	}
	_, err = s.Streams.FindStreamByID(ctx, orgB.ID, st.ID)
	wantCode(t, "another organization's stream", err, trail.ENOTFOUND)
	wantCode(t, "unknown organization", s.Streams.CreateStream(ctx, newStream("org_missing", "x")), trail.ENOTFOUND)
	f.st = st
}

// testClaims: of 8 nodes claiming at once, one gets the stream; a paused stream is not claimed.
func (f *streamsFixture) testClaims(t *testing.T) {
	ctx, s, orgA, st := f.ctx, f.s, f.orgA, f.st
	paused := newStream(orgA.ID, "paused")
	if err := s.Streams.CreateStream(ctx, paused); err != nil {
		t.Fatal(err)
	}
	sizeBefore := lastEvent(t, s, orgA.ID).Index
	_, err := changeStream(s, orgA.ID, paused.ID, trail.ActionStreamUpdated, func(*trail.Stream) error { return trail.Errorf(trail.EINVALID, "refused") })
	wantCode(t, "refused change", err, trail.EINVALID)
	if lastEvent(t, s, orgA.ID).Index != sizeBefore {
		t.Fatal("a refused change recorded an event")
	}
	p, err := changeStream(s, orgA.ID, paused.ID, trail.ActionStreamPaused, func(st *trail.Stream) error { st.State = trail.StreamInactive; return nil })
	if err != nil || p.State != trail.StreamInactive || p.Generation != 2 || lastEvent(t, s, orgA.ID).Action != trail.ActionStreamPaused {
		t.Fatalf("pause: %+v, %v", p, err)
	}
	var mu sync.Mutex
	var claimed []*trail.Stream
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := s.Streams.ClaimStream(ctx, "node-a", time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if c != nil {
				mu.Lock()
				claimed = append(claimed, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != 1 || claimed[0].ID != st.ID || claimed[0].Claim == "" {
		t.Fatalf("claimed %+v, want the one active stream once", claimed)
	}
	f.held = claimed[0]
}

// testDeliveries: deliveries move the cursor; a stale cursor or generation does not.
func (f *streamsFixture) testDeliveries(t *testing.T) {
	ctx, s, orgA, st, held := f.ctx, f.s, f.orgA, f.st, f.held
	mustAppend(t, s, orgA.ID, NewEvent(1), NewEvent(2), NewEvent(3))
	cur, err := s.Streams.RenewStream(ctx, held, time.Minute)
	if err != nil || cur.Lag != 6 {
		// Its own event, the paused stream's creation and pause, three events.
		t.Fatalf("renew: lag %d, %v", cur.Lag, err)
	}
	stale := *held
	if err := s.Streams.RecordDelivery(ctx, held, held.Cursor+2, 2); err != nil {
		t.Fatal(err)
	}
	if held.Cursor != st.Cursor+2 || held.Delivered != 2 || held.Lag != 4 || held.LastSyncedAt == nil || held.State != trail.StreamActive {
		t.Fatalf("after a delivery: %+v", held)
	}
	wantCode(t, "delivery from a stale cursor", s.Streams.RecordDelivery(ctx, &stale, stale.Cursor+1, 1), trail.ECONFLICT)
	retryAt := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	if err := s.Streams.RecordStreamFailure(ctx, held, trail.StreamInvalid, "HTTP 401 Unauthorized", retryAt); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Streams.FindStreamByID(ctx, orgA.ID, st.ID)
	if got.State != trail.StreamInvalid || got.LastError != "HTTP 401 Unauthorized" || got.LastErrorAt == nil || got.RetryAt == nil ||
		!got.RetryAt.Equal(retryAt) || got.Delivered != 2 {
		t.Fatalf("after a failure: %+v", got)
	}
	// A change through the API (a fixed config) makes it due at once and
	// fences the holder's next record until it reloads.
	upd, err := changeStream(s, orgA.ID, st.ID, trail.ActionStreamUpdated, func(st *trail.Stream) error { st.Name, st.State = "renamed", trail.StreamActive; return nil })
	if err != nil || upd.Name != "renamed" || upd.Generation != 2 || upd.RetryAt != nil || upd.State != trail.StreamActive {
		t.Fatalf("update: %+v, %v", upd, err)
	}
	wantCode(t, "delivery of an old generation", s.Streams.RecordDelivery(ctx, held, held.Cursor+1, 1), trail.ECONFLICT)
	cur, err = s.Streams.RenewStream(ctx, held, time.Minute)
	if err != nil || cur.Generation != 2 || cur.Claim != held.Claim {
		t.Fatalf("renew after update: %+v, %v", cur, err)
	}
	held = cur
	if err := s.Streams.RecordDelivery(ctx, held, held.Cursor+1, 1); err != nil {
		t.Fatalf("delivery after reload: %v", err)
	}
	f.held = held
}

// testTakeover: given back, a stream is claimable at once; a lease that ran out lets another node take it.
func (f *streamsFixture) testTakeover(t *testing.T) {
	ctx, s, st, held := f.ctx, f.s, f.st, f.held
	// The old holder is fenced.
	if err := s.Streams.ReleaseStream(ctx, held); err != nil {
		t.Fatal(err)
	}
	second, err := s.Streams.ClaimStream(ctx, "node-b", 10*time.Millisecond)
	if err != nil || second == nil || second.ID != st.ID || second.Claim == held.Claim || second.Cursor != held.Cursor {
		t.Fatalf("claim after release: %+v, %v", second, err)
	}
	_, err = s.Streams.RenewStream(ctx, held, time.Minute)
	wantCode(t, "renew of a released claim", err, trail.ECONFLICT)
	time.Sleep(50 * time.Millisecond)
	third, err := s.Streams.ClaimStream(ctx, "node-a", time.Minute)
	if err != nil || third == nil || third.ID != st.ID || third.Claim == second.Claim {
		t.Fatalf("takeover after the lease: %+v, %v", third, err)
	}
	wantCode(t, "delivery by the old holder", s.Streams.RecordDelivery(ctx, second, second.Cursor+1, 1), trail.ECONFLICT)
	if c, err := s.Streams.ClaimStream(ctx, "node-a", time.Minute); err != nil || c != nil {
		t.Fatalf("claim while held: %+v, %v", c, err)
	}
	// A restarted node takes its streams back at once; another node's
	// claims stay.
	if n, err := s.Streams.ReleaseNodeStreams(ctx, "node-b"); err != nil || n != 0 {
		t.Fatalf("release of a node without claims: %d, %v", n, err)
	}
	if n, err := s.Streams.ReleaseNodeStreams(ctx, "node-a"); err != nil || n != 1 {
		t.Fatalf("release of node-a's claims: %d, %v", n, err)
	}
	if !strings.HasPrefix(third.Claim, "node-a:") {
		t.Fatalf("claim %q does not name its node", third.Claim)
	}
	third, err = s.Streams.ClaimStream(ctx, "node-a", time.Minute)
	if err != nil || third == nil || third.ID != st.ID {
		t.Fatalf("claim after the node's release: %+v, %v", third, err)
	}
	f.third = third
}

// testLists: lists, by organization and of all.
func (f *streamsFixture) testLists(t *testing.T) {
	ctx, s, orgA, orgB := f.ctx, f.s, f.orgA, f.orgB
	// Other organizations see none.
	for i := range trail.MaxStreams - 2 {
		if err := s.Streams.CreateStream(ctx, newStream(orgA.ID, fmt.Sprint("more ", i))); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "one stream too many", s.Streams.CreateStream(ctx, newStream(orgA.ID, "too many")), trail.EINVALID)
	var ids []string
	filter := trail.ListFilter{Limit: 3, Ascending: true}
	for {
		list, more, err := s.Streams.FindStreams(ctx, orgA.ID, filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			ids = append(ids, l.ID)
		}
		if !more {
			break
		}
		filter.After = list[len(list)-1].ID
	}
	if len(ids) != trail.MaxStreams || !slices.IsSorted(ids) {
		t.Fatalf("listed %d streams %v", len(ids), ids)
	}
	if list, _, err := s.Streams.FindStreams(ctx, orgB.ID, trail.ListFilter{Limit: 100}); err != nil || len(list) != 0 {
		t.Fatalf("another organization's list: %d, %v", len(list), err)
	}
	if list, _, err := s.Streams.FindStreams(ctx, "", trail.ListFilter{Limit: 100}); err != nil || len(list) != trail.MaxStreams {
		t.Fatalf("every organization's list: %d, %v", len(list), err)
	}
}

// testDelete: deleted, a stream is recorded, gone, and its holder finds out.
func (f *streamsFixture) testDelete(t *testing.T) {
	ctx, s, orgA, orgB, st, third := f.ctx, f.s, f.orgA, f.orgB, f.st, f.third
	if err := s.Streams.DeleteStream(ctx, orgB.ID, st.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("delete through another organization: %v", err)
	}
	if err := s.Streams.DeleteStream(ctx, orgA.ID, st.ID); err != nil {
		t.Fatal(err)
	}
	if ev := lastEvent(t, s, orgA.ID); ev.Action != trail.ActionStreamDeleted || ev.Targets[0].ID != st.ID {
		t.Fatalf("deleted event %+v", ev)
	}
	_, err := s.Streams.FindStreamByID(ctx, orgA.ID, st.ID)
	wantCode(t, "deleted stream", err, trail.ENOTFOUND)
	_, err = s.Streams.RenewStream(ctx, third, time.Minute)
	wantCode(t, "renew of a deleted stream", err, trail.ENOTFOUND)
}

// testStreamDelivery runs the delivery worker on the driver against a
// webhook receiver: every event in order, a worker restart that resumes
// at the cursor, a replay, a pause and a resume.
func testStreamDelivery(t *testing.T, s Services) {
	ctx := context.Background()
	org := mustOrg(t, s, "Stream delivery")
	var key [32]byte
	rand.Read(key[:])
	box, err := secretbox.New(key[:])
	if err != nil {
		t.Fatal(err)
	}
	rcv := receiver.NewWebhook(false, nil)
	t.Cleanup(rcv.Close)
	st := &trail.Stream{OrganizationID: org.ID, Type: trail.StreamHTTPS, Name: "hook", ID: "als_delivery_" + org.ID,
		Config: trail.StreamConfig{URL: rcv.URL() + "/in", Format: "ndjson"}, Secrets: trail.StreamSecrets{Secret: trail.NewWebhookSecret()}}
	if err := box.SealStream(st); err != nil {
		t.Fatal(err)
	}
	if err := s.Streams.CreateStream(ctx, st); err != nil {
		t.Fatal(err)
	}
	first := st.Cursor
	// Test signals: the worker's claim rounds, and the streams it let go.
	var rounds, released atomic.Int64
	newWorker := func() *delivery.Worker {
		w := &delivery.Worker{Streams: s.Streams, Events: s.Events, Open: box.OpenStream, PollInterval: 50 * time.Millisecond,
			Client:       delivery.NewClient(delivery.ClientOptions{AllowPrivate: true}),
			OnClaimRound: func() { rounds.Add(1) },
			OnRelease:    func(string) { released.Add(1) }}
		w.Start(context.Background())
		return w
	}
	w := newWorker()
	defer func() { w.Stop() }()
	appendN := func(from, n int) {
		for i := 0; i < n; i += 500 {
			batch := make([]*trail.EventInput, 0, 500)
			for j := i; j < min(n, i+500); j++ {
				batch = append(batch, NewEvent(from+j))
			}
			mustAppend(t, s, org.ID, batch...)
			w.Wake()
		}
	}
	// covered reports whether the receiver has every index from first to
	// last, in order.
	covered := func(last int64) bool {
		evs := rcv.Events()
		distinct, _ := receiver.Indexes(evs)
		return len(distinct) == int(last-first+1) && distinct[0] == first && distinct[len(distinct)-1] == last
	}
	appendN(0, 2500)
	last := first + 2500
	testwait.For(t, 30*time.Second, "2,501 events", func() bool { return covered(last) })
	if err := receiver.CheckOrder(rcv.Events()); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the cursor", func() bool {
		got, err := s.Streams.FindStreamByID(ctx, org.ID, st.ID)
		return err == nil && got.Cursor == last+1 && got.Lag == 0 && got.Delivered == 2501 && got.State == trail.StreamActive
	})

	// A new worker (a restarted node) resumes at the stored cursor.
	w.Stop()
	appendN(2500, 300)
	w = newWorker()
	last += 300
	testwait.For(t, 30*time.Second, "the events appended while stopped", func() bool { return covered(last) })
	if _, repeats := receiver.Indexes(rcv.Events()); repeats != 0 {
		t.Fatalf("%d events delivered twice without a failure", repeats)
	}

	// Replay from the first event: everything again, in order.
	n := len(rcv.Events())
	if _, err := changeStream(s, org.ID, st.ID, trail.ActionStreamReplayed, func(st *trail.Stream) error { st.Cursor = first; return nil }); err != nil {
		t.Fatal(err)
	}
	w.Changed()
	testwait.For(t, 30*time.Second, "the replay", func() bool { return len(rcv.Events()) >= n+int(last-first+2) })
	again := rcv.Events()[n:]
	if again[0].Index != first || receiver.CheckOrder(again) != nil {
		t.Fatalf("replay started at %d", again[0].Index)
	}

	// Paused, nothing goes out; resumed, the rest follows.
	releasedBefore := released.Load()
	if _, err := changeStream(s, org.ID, st.ID, trail.ActionStreamPaused, func(st *trail.Stream) error { st.State = trail.StreamInactive; return nil }); err != nil {
		t.Fatal(err)
	}
	w.Changed()
	// The pause's own event (last+2) is recorded with the pause: a batch
	// read before the pause may still carry it out, nothing after it.
	appendN(2800, 10)
	// The holder lets the paused stream go, and a whole claim round
	// after that does not take it again.
	testwait.For(t, 30*time.Second, "the paused stream let go", func() bool { return released.Load() > releasedBefore })
	after := rounds.Load()
	testwait.For(t, 30*time.Second, "a claim round after the pause", func() bool { return rounds.Load() >= after+2 })
	for _, e := range rcv.Events() {
		if e.Index > last+2 {
			t.Fatalf("a paused stream delivered index %d", e.Index)
		}
	}
	if _, err := changeStream(s, org.ID, st.ID, trail.ActionStreamResumed, func(st *trail.Stream) error { st.State = trail.StreamActive; return nil }); err != nil {
		t.Fatal(err)
	}
	w.Changed()
	// The pause's event, the 10 appended while paused and the resume's.
	last += 2 + 10 + 1
	testwait.For(t, 30*time.Second, "the resumed stream", func() bool {
		got, _ := s.Streams.FindStreamByID(ctx, org.ID, st.ID)
		return got != nil && got.Lag == 0 && got.Cursor == last+1 && got.State == trail.StreamActive && covered(last)
	})
}
