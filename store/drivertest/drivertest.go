// Package drivertest is the driver-level suite of store.Driver, the
// fine-grained interface the services (package service) hold their rules
// above, as River's riverdrivertest is for its drivers: each behaviour a
// driver owes, one subtest each, run on SQLite and on PostgreSQL by their
// packages' tests. The conformance suite (package storetest) tests the
// services and the native parts through trail's interfaces; this one
// tests what a driver alone promises: that a transaction is one, that
// "not found" is store.ErrNotFound, that a unique key refuses a second
// row, that guarded updates and claims hold.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Run runs the suite; newDriver returns a driver on a fresh, migrated
// database and cleans it up with t.Cleanup.
func Run(t *testing.T, newDriver func(t *testing.T) store.Driver) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Driver)
	}{
		{"InTxCommits", testInTxCommits},
		{"InTxRollsBack", testInTxRollsBack},
		{"OrganizationNotFound", testOrganizationNotFound},
		{"OrganizationUnique", testOrganizationUnique},
		{"OrganizationList", testOrganizationList},
		{"OwnEventsAdvanceTheHead", testOwnEventsAdvanceTheHead},
		{"APIKeyByPrefix", testAPIKeyByPrefix},
		{"ActionVersions", testActionVersions},
		{"SchemaListPages", testSchemaListPages},
		{"PortalLinkOpensOnce", testPortalLinkOpensOnce},
		{"ResponseClaim", testResponseClaim},
		{"StreamClaimExactlyOnce", testStreamClaimExactlyOnce},
		{"StreamGuard", testStreamGuard},
		{"ExportNotFound", testExportNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDriver(t))
		})
	}
}

func newOrg(t *testing.T, d store.Driver, id string) *trail.Organization {
	t.Helper()
	now := d.Now().UTC()
	org := &trail.Organization{ID: id, Name: "Org " + id, RetentionDays: 30, CreatedAt: now, UpdatedAt: now}
	if err := d.InTx(context.Background(), func(x store.Executor) error { return x.OrganizationInsert(context.Background(), org) }); err != nil {
		t.Fatal(err)
	}
	return org
}

func testInTxCommits(t *testing.T, d store.Driver) {
	newOrg(t, d, "org_a")
	got, err := d.OrganizationGet(context.Background(), "org_a", false)
	if err != nil || got.Name != "Org org_a" || got.RetentionDays != 30 {
		t.Fatalf("after commit: %+v, %v", got, err)
	}
}

func testInTxRollsBack(t *testing.T, d store.Driver) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := d.InTx(ctx, func(x store.Executor) error {
		now := d.Now().UTC()
		if err := x.OrganizationInsert(ctx, &trail.Organization{ID: "org_r", Name: "r", RetentionDays: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		if _, err := x.OrganizationGet(ctx, "org_r", true); err != nil {
			return fmt.Errorf("read own write in the transaction: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	if _, err := d.OrganizationGet(ctx, "org_r", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after rollback: %v, want store.ErrNotFound", err)
	}
}

func testOrganizationNotFound(t *testing.T, d store.Driver) {
	ctx := context.Background()
	if _, err := d.OrganizationGet(ctx, "org_none", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OrganizationGet: %v, want store.ErrNotFound", err)
	}
	if _, err := d.OrganizationNextIndex(ctx, "org_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OrganizationNextIndex: %v, want store.ErrNotFound", err)
	}
	if _, err := d.APIKeyGet(ctx, "key_none", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("APIKeyGet: %v, want store.ErrNotFound", err)
	}
	if _, err := d.StreamGet(ctx, "org_none", "als_none", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StreamGet: %v, want store.ErrNotFound", err)
	}
}

func testOrganizationUnique(t *testing.T, d store.Driver) {
	org := newOrg(t, d, "org_u")
	err := d.InTx(context.Background(), func(x store.Executor) error { return x.OrganizationInsert(context.Background(), org) })
	if trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("second insert: %v (%s), want ECONFLICT", err, trail.ErrorCode(err))
	}
}

func testOrganizationList(t *testing.T, d store.Driver) {
	for _, id := range []string{"org_c", "org_a", "org_b"} {
		newOrg(t, d, id)
	}
	list, err := d.OrganizationList(context.Background(), nil, trail.ListFilter{Limit: 2, Ascending: true})
	if err != nil {
		t.Fatal(err)
	}
	// A page reads one more than its limit, to know that more follow.
	if len(list) != 3 || list[0].ID != "org_a" || list[1].ID != "org_b" {
		t.Fatalf("ascending page: %v", ids(list))
	}
	list, err = d.OrganizationList(context.Background(), []string{"org_b", "org_c"}, trail.ListFilter{Limit: 10})
	if err != nil || len(list) != 2 || list[0].ID != "org_c" {
		t.Fatalf("two ids, descending: %v, %v", ids(list), err)
	}
}

func ids(list []*trail.Organization) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.ID
	}
	return out
}

func testOwnEventsAdvanceTheHead(t *testing.T, d store.Driver) {
	ctx := context.Background()
	newOrg(t, d, "org_h")
	if n, err := d.OrganizationNextIndex(ctx, "org_h"); err != nil || n != 0 {
		t.Fatalf("a new log's head: %d, %v", n, err)
	}
	for i := range 3 {
		ev := trail.OrganizationEvent(ctx, "organization.updated", "org_h", "h", d.Now().UTC(), trail.Metadata{"i": fmt.Sprint(i)})
		if err := d.InTx(ctx, func(x store.Executor) error { return x.AppendOwn(ctx, "org_h", ev) }); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.OrganizationNextIndex(ctx, "org_h"); err != nil || n != 3 {
		t.Fatalf("after 3 own events: %d, %v", n, err)
	}
}

func testAPIKeyByPrefix(t *testing.T, d store.Driver) {
	ctx := context.Background()
	now := d.Now().UTC()
	k := &trail.APIKey{ID: "key_1", Name: "k", Permissions: []trail.Permission{trail.PermAdmin}, CreatedAt: now}
	hash := [32]byte{1, 2, 3}
	if err := d.InTx(ctx, func(x store.Executor) error { return x.APIKeyInsert(ctx, k, "sk_prefix123", hash) }); err != nil {
		t.Fatal(err)
	}
	got, err := d.APIKeysByPrefix(ctx, "sk_prefix123")
	if err != nil || len(got) != 1 || got[0].Key.ID != "key_1" || string(got[0].Hash) != string(hash[:]) {
		t.Fatalf("by prefix: %+v, %v", got, err)
	}
	if got, err := d.APIKeysByPrefix(ctx, "sk_other_____"); err != nil || len(got) != 0 {
		t.Fatalf("another prefix: %+v, %v", got, err)
	}
	if err := d.InTx(ctx, func(x store.Executor) error { return x.APIKeySetRevoked(ctx, "key_1", now) }); err != nil {
		t.Fatal(err)
	}
	if k, err := d.APIKeyGet(ctx, "key_1", false); err != nil || k.RevokedAt == nil {
		t.Fatalf("revoked: %+v, %v", k, err)
	}
}

func testActionVersions(t *testing.T, d store.Driver) {
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		var v int
		err := d.InTx(ctx, func(x store.Executor) (err error) {
			v, err = x.ActionBumpVersion(ctx, "user.signed_in", d.Now().UTC())
			if err != nil {
				return err
			}
			return x.SchemaInsert(ctx, &trail.Schema{Action: "user.signed_in", Version: v, CreatedAt: d.Now().UTC()}, []byte(`{"targets":[]}`))
		})
		if err != nil || v != want {
			t.Fatalf("bump %d: version %d, %v", want, v, err)
		}
	}
	if ok, err := d.ActionExists(ctx, "user.signed_in"); !ok || err != nil {
		t.Fatalf("ActionExists: %v, %v", ok, err)
	}
	if _, err := d.SchemaGet(ctx, "user.signed_in", 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing version: %v, want store.ErrNotFound", err)
	}
}

func testSchemaListPages(t *testing.T, d store.Driver) {
	ctx := context.Background()
	testActionVersions(t, d)
	// Versions after 1, ascending: 2 and 3.
	list, err := d.SchemaList(ctx, "user.signed_in", 1, trail.ListFilter{Limit: 10, After: "1", Ascending: true})
	if err != nil || len(list) != 2 || list[0].Version != 2 || list[1].Version != 3 {
		t.Fatalf("after version 1: %v", err)
	}
}

func testPortalLinkOpensOnce(t *testing.T, d store.Driver) {
	ctx := context.Background()
	newOrg(t, d, "org_p")
	now := d.Now().UTC()
	l := &trail.PortalLink{ID: "link_1", OrganizationID: "org_p", Intent: trail.IntentAuditLogs, Role: trail.RoleOwner,
		User: trail.PortalUser{ID: "u1", Email: "u@example.com"}, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	token, session := []byte("token-hash"), []byte("session-hash")
	if err := d.InTx(ctx, func(x store.Executor) error { return x.PortalLinkInsert(ctx, l, token) }); err != nil {
		t.Fatal(err)
	}
	st, err := d.PortalLinkState(ctx, token, false)
	if err != nil || st.Opened {
		t.Fatalf("a new link: %+v, %v", st, err)
	}
	if _, err := d.PortalLinkOpen(ctx, token, session, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, err := d.PortalLinkState(ctx, token, false); err != nil || !st.Opened {
		t.Fatalf("an opened link: %+v, %v", st, err)
	}
	if s, err := d.PortalSessionGet(ctx, session, now); err != nil || s.OrganizationID != "org_p" {
		t.Fatalf("the session: %+v, %v", s, err)
	}
	if err := d.PortalSessionEnd(ctx, session, now); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PortalSessionGet(ctx, session, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an ended session: %v, want store.ErrNotFound", err)
	}
}

func testResponseClaim(t *testing.T, d store.Driver) {
	ctx := context.Background()
	h := trail.ResponseKey{OrganizationID: "org_x", Hash: [32]byte{9}}
	now := d.Now().UTC()
	claim := func() (*store.StoredResponse, bool) {
		var r *store.StoredResponse
		var ok bool
		if err := d.InTx(ctx, func(x store.Executor) (err error) { r, ok, err = x.ResponseClaimOrGet(ctx, h, now); return err }); err != nil {
			t.Fatal(err)
		}
		return r, ok
	}
	if _, ok := claim(); !ok {
		t.Fatal("the first request did not claim the key")
	}
	if r, ok := claim(); ok || r == nil || r.Status != 0 {
		t.Fatalf("a second request while the first runs: %+v, claimed %v", r, ok)
	}
	if err := d.InTx(ctx, func(x store.Executor) error {
		return x.ResponseFinish(ctx, h, &trail.StoredResponse{Status: 201, Body: []byte(`{"ok":true}`)}, now)
	}); err != nil {
		t.Fatal(err)
	}
	if r, ok := claim(); ok || r.Status != 201 || string(r.Body) != `{"ok":true}` {
		t.Fatalf("after the first finished: %+v, claimed %v", r, ok)
	}
}

func newStream(t *testing.T, d store.Driver, org, id string) *trail.Stream {
	t.Helper()
	now := d.Now().UTC()
	st := &trail.Stream{OrganizationID: org, ID: id, Type: trail.StreamHTTPS, Name: id, State: trail.StreamActive, Generation: 1, Sealed: []byte("sealed"), CreatedAt: now, UpdatedAt: now}
	if err := d.InTx(context.Background(), func(x store.Executor) error { return x.StreamInsert(context.Background(), st) }); err != nil {
		t.Fatal(err)
	}
	return st
}

func testStreamClaimExactlyOnce(t *testing.T, d store.Driver) {
	ctx := context.Background()
	newOrg(t, d, "org_s")
	for i := range 4 {
		newStream(t, d, "org_s", fmt.Sprintf("als_%d", i))
	}
	now := d.Now().UTC()
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		wg.Go(func() {
			for {
				st, err := d.StreamClaim(ctx, fmt.Sprintf("node%d:claim", c), now, now.Add(time.Hour))
				if err != nil {
					errs <- err
					return
				}
				if st == nil {
					return
				}
				mu.Lock()
				claimed[st.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != 4 {
		t.Fatalf("claimed %v: want the 4 streams", claimed)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("stream %s claimed %d times", id, n)
		}
	}
}

func testStreamGuard(t *testing.T, d store.Driver) {
	ctx := context.Background()
	newOrg(t, d, "org_g")
	newStream(t, d, "org_g", "als_g")
	now := d.Now().UTC()
	st, err := d.StreamClaim(ctx, "node:one", now, now.Add(time.Minute))
	if err != nil || st == nil {
		t.Fatalf("claim: %+v, %v", st, err)
	}
	if _, err := d.StreamRenew(ctx, "org_g", "als_g", "node:other", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renew under another claim: %v, want store.ErrNotFound", err)
	}
	stale := store.Guard(st)
	stale.Generation++
	if _, err := d.StreamRecordDelivery(ctx, stale, 0, 0, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a delivery for a changed stream: %v, want store.ErrNotFound", err)
	}
	if _, err := d.StreamRecordDelivery(ctx, store.Guard(st), 0, 0, now); err != nil {
		t.Fatalf("a delivery under the claim: %v", err)
	}
	if err := d.StreamRelease(ctx, "org_g", "als_g", "node:one"); err != nil {
		t.Fatal(err)
	}
	if st, err := d.StreamClaim(ctx, "node:two", now, now.Add(time.Minute)); err != nil || st == nil || st.ID != "als_g" {
		t.Fatalf("claim after release: %+v, %v", st, err)
	}
}

func testExportNotFound(t *testing.T, d store.Driver) {
	if _, err := d.ExportGet(context.Background(), "org_none", "exp_none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ExportGet: %v, want store.ErrNotFound", err)
	}
}
