package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// testPurge: retention removes the contents of old events and keeps their
// ids, indexes and leaf hashes, so that every checkpoint and proof stays
// valid and fsck passes.
func testPurge(t *testing.T, s Services) {
	ctx := context.Background()
	signer, vkey := newSigner(t, "trail.test")
	ig := &tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.test"}
	prover := &tlog.Prover{Store: s.Logs, Key: vkey}
	org := mustOrg(t, s, "Retention")
	now := time.Now().UTC()
	// 300 events that occurred 10 days ago, then 100 of today.
	var ins []*trail.EventInput
	for i := 0; i < 400; i++ {
		in := NewEvent(i)
		in.Metadata["unique"] = json.Number(fmt.Sprint(i))
		if i < 300 {
			in.OccurredAt = now.Add(-10*24*time.Hour - time.Duration(i)*time.Minute)
		}
		ins = append(ins, in)
	}
	res := mustAppend(t, s, org.ID, ins...)
	// (Changing retention is itself an event: index 401.)
	if _, err := s.Organizations.UpdateRetention(ctx, org.ID, 5); err != nil {
		t.Fatal(err)
	}
	before := allLeaves(t, s, org.ID)

	// Not in a checkpoint yet: nothing is purged, whatever its age.
	if r, err := s.Logs.PurgeExpired(ctx, now); err != nil || r.Events != 0 {
		t.Fatalf("purge before integration: %+v %v", r, err)
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Logs.PurgeExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 300 {
		t.Fatalf("purged %d events, want 300", r.Events)
	}
	// Again: nothing more.
	if r, err := s.Logs.PurgeExpired(ctx, now); err != nil || r.Events != 0 {
		t.Fatalf("second purge: %+v %v", r, err)
	}

	t.Run("Counts", func(t *testing.T) {
		// The hourly counts lose the purged events with them.
		if _, ok := s.Events.(trail.EventCounter); !ok {
			t.Skip("this implementation does not count events")
		}
		f := trail.EventFilter{OrganizationID: org.ID, RangeStart: ptr(now.Add(-12 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}
		for _, bucket := range []time.Duration{time.Hour, 24 * time.Hour, 17 * time.Minute} {
			if total := checkCounts(t, s, "after the purge", f, bucket); total < 100 || total > 105 {
				t.Fatalf("%d events counted after the purge, want the 100 of today and Trail's own", total)
			}
		}
	})

	t.Run("PurgedReads", func(t *testing.T) {
		ev, err := s.Events.FindEventByID(ctx, org.ID, res[10].ID)
		if err != nil {
			t.Fatal(err)
		}
		// organization.created is index 0, so the 11th event is index 11.
		if !ev.Purged || ev.Index != 11 || ev.ID != res[10].ID || ev.OrganizationID != org.ID || ev.Action != "" ||
			!bytes.Equal(ev.PurgedLeafHash, before[11][:]) {
			t.Fatalf("purged event read as %+v", ev)
		}
		if _, err := s.Events.FindEventByID(ctx, "org_other", res[10].ID); trail.ErrorCode(err) != trail.ENOTFOUND {
			t.Fatalf("purged event of another organization: %v", err)
		}
		if ev, err := s.Events.FindEventByID(ctx, "", res[10].ID); err != nil || !ev.Purged {
			t.Fatalf("purged event without organization: %+v %v", ev, err)
		}
		// An export's cursor may be purged under it: a Raw read goes on
		// after it; a client's cursor must still be one.
		after := int64(5)
		if page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Raw: true, Ascending: true, Limit: 3, After: &after}); err != nil ||
			len(page.Events) != 3 || page.Events[0].Index != 301 || page.Events[0].Raw == "" {
			t.Fatalf("raw read after a purged cursor: %+v %v", page, err)
		}
		if page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Raw: true, Ascending: true, Limit: 3, After: &after,
			Actions: []string{"alert_route.*"}}); err != nil || len(page.Events) != 3 || page.Events[0].Index < 301 {
			t.Fatalf("filtered raw read after a purged cursor: %+v %v", page, err)
		}
		if _, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Ascending: true, Limit: 3, After: &after}); trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("a purged cursor: %v", err)
		}
		kept, err := s.Events.FindEventByID(ctx, org.ID, res[350].ID)
		if err != nil || kept.Purged || kept.Action == "" {
			t.Fatalf("recent event: %+v %v", kept, err)
		}
		page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 102 { // 100 recent + organization.created + audit_log_retention.updated
			t.Fatalf("%d events listed after the purge, want 102", len(page.Events))
		}
		for _, q := range []trail.EventFilter{
			{OrganizationID: org.ID, Query: "w3", Limit: 1000},
			{OrganizationID: org.ID, TargetIDs: []string{"route_1"}, Limit: 1000},
			{OrganizationID: org.ID, Actions: []string{"alert_route.*"}, Limit: 1000},
		} {
			page, err := s.Events.FindEvents(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Events {
				if ev.Index >= 1 && ev.Index <= 300 {
					t.Fatalf("filter %+v finds purged event %d", q, ev.Index)
				}
			}
		}
	})

	t.Run("ProofsStayValid", func(t *testing.T) {
		leaves, err := s.Logs.LeafHashes(ctx, org.ID, 0, old.Size)
		if err != nil || len(leaves) != len(before) {
			t.Fatalf("%d leaf hashes after the purge: %v", len(leaves), err)
		}
		for i := range leaves {
			if leaves[i] != before[i] {
				t.Fatalf("leaf %d changed", i)
			}
		}
		for _, i := range []int64{0, 5, 150, 300, 301, 400} {
			p, err := prover.InclusionProof(ctx, org.ID, i, old.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(old.Size), before[i][:], p.Hashes, old.Root[:]); err != nil {
				t.Fatalf("inclusion of %d after the purge: %v", i, err)
			}
		}
		// The log goes on: new events, a new checkpoint consistent with
		// the one before the purge.
		mustAppend(t, s, org.ID, NewEvent(5000))
		if _, err := ig.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
		latest, err := s.Logs.LatestCheckpoint(ctx, org.ID)
		if err != nil || latest.Size != old.Size+1 {
			t.Fatalf("checkpoint after the purge: %+v %v", latest, err)
		}
		p, err := prover.ConsistencyProof(ctx, org.ID, old.Size, latest.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckConsistency([]byte(old.Note), []byte(latest.Note), vkey, p.Hashes); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Fsck", func(t *testing.T) {
		res, err := tlog.Fsck(ctx, s.Logs, vkey, "trail.test", org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if res.Events != 403 {
			t.Fatalf("fsck saw %d events, want 403 (purged ones included)", res.Events)
		}
	})
	t.Run("Export", func(t *testing.T) {
		if s.Exports == nil {
			t.Skip("no export service")
		}
		// An NDJSON export of the whole period holds the purged events as
		// placeholders and verifies as the whole log; one of the last
		// days holds none of them; CSV holds only events with contents.
		all := &trail.Export{OrganizationID: org.ID, Format: trail.ExportNDJSON,
			Filter: trail.EventFilter{RangeStart: ptr(now.Add(-30 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}}
		recent := &trail.Export{OrganizationID: org.ID, Format: trail.ExportNDJSON,
			Filter: trail.EventFilter{RangeStart: ptr(now.Add(-2 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}}
		rows := &trail.Export{OrganizationID: org.ID, Format: trail.ExportCSV,
			Filter: trail.EventFilter{RangeStart: ptr(now.Add(-30 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}}
		for _, e := range []*trail.Export{all, recent, rows} {
			if err := s.Exports.CreateExport(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ig.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
		done := runExport(t, s, all.ID)
		file := readExport(t, s, done)
		vres, err := tlog.Verify(bytes.NewReader(file), []byte(done.Checkpoint.Note), vkey)
		if err != nil {
			t.Fatal(err)
		}
		if !vres.Tree || vres.Purged != 300 || int64(vres.Lines) != done.Checkpoint.Size {
			t.Fatalf("verified %+v", vres)
		}
		if !bytes.Contains(file, []byte(`{"id":"`+res[10].ID+`","index":11,"purged":true,"leaf_hash":"`)) {
			t.Fatal("no placeholder of a purged event")
		}
		done = runExport(t, s, recent.ID)
		vres, err = tlog.VerifyOptions{Key: vkey, Checkpoint: []byte(done.Checkpoint.Note), Subset: true}.Verify(bytes.NewReader(readExport(t, s, done)))
		if err != nil || vres.Purged != 0 || vres.Lines < 100 {
			t.Fatalf("recent days: %+v %v", vres, err)
		}
		done = runExport(t, s, rows.ID)
		if n := bytes.Count(readExport(t, s, done), []byte("\n")); done.Rows != done.Checkpoint.Size-300 || n < int(done.Rows)+1 {
			t.Fatalf("CSV of %d rows (%d lines), checkpoint of %d", done.Rows, n, done.Checkpoint.Size)
		}
	})
}
