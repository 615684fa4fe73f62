package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
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
	f := newPurgeFixture(t, s)
	t.Run("Record", f.testRecord)
	t.Run("Counts", f.testCounts)
	t.Run("PurgedReads", f.testPurgedReads)
	t.Run("ProofsStayValid", f.testProofsStayValid)
	t.Run("Fsck", f.testFsck)
	t.Run("Export", f.testExport)
}

// purgeFixture is an organization of 400 events, 300 of them ten days old,
// whose old events the purger has removed; testPurge's subtests share it.
type purgeFixture struct {
	ctx     context.Context
	s       Services
	vkey    string
	now     time.Time
	ig      *tlog.Integrator
	prover  *tlog.Prover
	org     *trail.Organization
	res     []trail.AppendResult
	before  [][trail.HashSize]byte // the leaf hashes before the purge
	old     *trail.Checkpoint      // the checkpoint the purge ran on
	purgeAt time.Time              // the purge's clock when it removed them
}

// newPurgeFixture builds the organization and checks, on the way, that
// nothing is purged before a checkpoint covers it or while the checkpoint
// is younger than the retention, and that a purge is not repeated.
func newPurgeFixture(t *testing.T, s Services) *purgeFixture {
	ctx := context.Background()
	keys := newKeys(t, "trail.test")
	vkey := keys.VerifierKey
	now := time.Now().UTC()
	// The integrator signs (and timestamps) its first checkpoints six
	// days ago, its later ones at the time of the clock.
	backdated := true
	ig := &tlog.Integrator{Store: s.Logs, Signer: keys.Signer, Timestamper: keys.Timestamper, Origin: "trail.test", Now: func() time.Time {
		if backdated {
			return now.Add(-6 * 24 * time.Hour)
		}
		return time.Now()
	}}
	purgeAt := now
	purger := &tlog.Purger{Store: s.Logs, Events: s.Events, Key: vkey, Now: func() time.Time { return purgeAt },
		Await: func(ctx context.Context, _ string, _ int64) error { _, err := ig.Integrate(ctx); return err }}
	prover := &tlog.Prover{Store: s.Logs, Key: vkey}
	org := mustOrg(t, s, "Retention")
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
	if r, err := purger.Purge(ctx); err != nil || r.Events != 0 {
		t.Fatalf("purge before integration: %+v %v", r, err)
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	old, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	backdated = false
	// In a checkpoint signed less than the retention ago: nothing is
	// purged, however old the events say they are.
	purgeAt = now.Add(-2 * 24 * time.Hour)
	if r, err := purger.Purge(ctx); err != nil || r.Events != 0 {
		t.Fatalf("purge with a checkpoint of 4 days: %+v %v", r, err)
	}
	purgeAt = time.Now().UTC() // after the change of retention
	r, err := purger.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 300 {
		t.Fatalf("purged %d events, want 300", r.Events)
	}
	// Again: nothing more, and no record of nothing.
	if r, err := purger.Purge(ctx); err != nil || r.Events != 0 {
		t.Fatalf("second purge: %+v %v", r, err)
	}
	return &purgeFixture{ctx: ctx, s: s, vkey: vkey, now: now, ig: ig, prover: prover, org: org,
		res: res, before: before, old: old, purgeAt: purgeAt}
}

func (f *purgeFixture) testRecord(t *testing.T) {
	s, vkey, org, old, purgeAt := f.s, f.vkey, f.org, f.old, f.purgeAt
	// The run is recorded in the organization's log, before what it
	// purged was gone: under which retention, up to which time and
	// index, on which checkpoint.
	recs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, Actions: []string{trail.ActionEventsPurged}})
	if len(recs) != 1 || recs[0].Index != old.Size {
		t.Fatalf("purge records %+v, want one at index %d", recs, old.Size)
	}
	rec, err := trail.ParsePurgeRecord(recs[0].OccurredAt, recs[0].Metadata)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RetentionDays != 5 || rec.Below != old.Size || !rec.Cutoff.Equal(purgeAt.Add(-5*24*time.Hour)) ||
		!rec.CheckpointTime.Equal(old.CreatedAt.Truncate(time.Second)) || recs[0].Actor.ID != trail.PurgeCaller.Actor.ID {
		t.Fatalf("purge record %+v of %+v", rec, recs[0])
	}
	if ts, err := tlog.CheckpointTime([]byte(old.Note), vkey); err != nil || !ts.Equal(rec.CheckpointTime) {
		t.Fatalf("the checkpoint's signed time %v %v", ts, err)
	}
}

func (f *purgeFixture) testCounts(t *testing.T) {
	s, now, org := f.s, f.now, f.org
	// The hourly counts lose the purged events with them.
	if _, ok := s.Events.(trail.EventCounter); !ok {
		t.Skip("this implementation does not count events")
	}
	filter := trail.EventFilter{OrganizationID: org.ID, RangeStart: ptr(now.Add(-12 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}
	for _, bucket := range []time.Duration{time.Hour, 24 * time.Hour, 17 * time.Minute} {
		if total := checkCounts(t, s, "after the purge", filter, bucket); total < 100 || total > 105 {
			t.Fatalf("%d events counted after the purge, want the 100 of today and Trail's own", total)
		}
	}
}

func (f *purgeFixture) testPurgedReads(t *testing.T) {
	ctx, s, org, res, before := f.ctx, f.s, f.org, f.res, f.before
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
	if len(page.Events) != 103 { // 100 recent + organization.created + audit_log_retention.updated + the purge's record
		t.Fatalf("%d events listed after the purge, want 103", len(page.Events))
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
}

func (f *purgeFixture) testProofsStayValid(t *testing.T) {
	ctx, s, vkey, ig, prover, org, before, old := f.ctx, f.s, f.vkey, f.ig, f.prover, f.org, f.before, f.old
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
	if err != nil || latest.Size != old.Size+2 {
		t.Fatalf("checkpoint after the purge: %+v %v", latest, err)
	}
	p, err := prover.ConsistencyProof(ctx, org.ID, old.Size, latest.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckConsistency([]byte(old.Note), []byte(latest.Note), vkey, p.Hashes); err != nil {
		t.Fatal(err)
	}
}

func (f *purgeFixture) testFsck(t *testing.T) {
	ctx, s, vkey, org := f.ctx, f.s, f.vkey, f.org
	res, err := tlog.Fsck(ctx, s.Logs, vkey, "trail.test", org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 404 {
		t.Fatalf("fsck saw %d events, want 404 (purged ones included)", res.Events)
	}
}

func (f *purgeFixture) testExport(t *testing.T) {
	ctx, s, vkey, now, ig, org, res := f.ctx, f.s, f.vkey, f.now, f.ig, f.org, f.res
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
}

// testPurgeEvidence: a purged event is legitimate only with evidence
// (SPEC §6). Contents removed without a purge record (as a purge by hand
// in the database does) make fsck and verify fail naming the index; events
// purged before purges kept evidence are recorded once, in org_system, and
// accepted up to that count.
func testPurgeEvidence(t *testing.T, s Services) {
	f := newEvidenceFixture(t, s)
	// Each step goes on from the one before it.
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"LegacyRecordedOnce", f.testLegacyRecordedOnce},
		{"Export", f.testExport},
		{"PurgeByHand", f.testPurgeByHand},
		{"ForgedRecord", f.testForgedRecord},
	} {
		if !t.Run(step.name, step.run) {
			return
		}
	}
}

// evidenceFixture is an organization whose old events were purged as
// before purges kept evidence; testPurgeEvidence's steps share it.
type evidenceFixture struct {
	ctx      context.Context
	s        Services
	vkey     string
	now      time.Time
	ig       *tlog.Integrator
	purger   *tlog.Purger
	org      *trail.Organization
	legacyCP *trail.Checkpoint // the checkpoint the old purge ran on
	legacy   map[string]trail.LegacyPurges
	latest   *trail.Checkpoint // the checkpoint the purge by hand ran on
}

// oldPurge purges as Trail did before purges kept evidence.
func (f *evidenceFixture) oldPurge(t *testing.T, cutoff time.Time, below int64) int64 {
	t.Helper()
	r, err := f.s.Logs.PurgeExpired(f.ctx, []trail.PurgeBound{{OrganizationID: f.org.ID, Cutoff: cutoff, Below: below}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Events
}

func (f *evidenceFixture) fsck(legacy map[string]trail.LegacyPurges) error {
	_, err := tlog.FsckOptions{Key: f.vkey, Origin: "trail.test", Legacy: legacy}.Fsck(f.ctx, f.s.Logs, f.org.ID)
	return err
}

// newEvidenceFixture purges 30 of 40 events as Trail did before purges
// kept evidence, and checks that fsck then fails.
func newEvidenceFixture(t *testing.T, s Services) *evidenceFixture {
	ctx := context.Background()
	keys := newKeys(t, "trail.test")
	vkey := keys.VerifierKey
	now := time.Now().UTC()
	// Before this version: checkpoints without timestamps, a purge that
	// recorded nothing.
	oldIG := &tlog.Integrator{Store: s.Logs, Signer: keys.Signer, Origin: "trail.test"}
	ig := &tlog.Integrator{Store: s.Logs, Signer: keys.Signer, Timestamper: keys.Timestamper, Origin: "trail.test"}
	purger := &tlog.Purger{Store: s.Logs, Events: s.Events, Key: vkey,
		Await: func(ctx context.Context, _ string, _ int64) error { _, err := ig.Integrate(ctx); return err }}
	org := mustOrg(t, s, "Evidence")
	var ins []*trail.EventInput
	for i := 0; i < 40; i++ {
		in := NewEvent(i)
		if i < 30 {
			in.OccurredAt = now.Add(-10*24*time.Hour - time.Duration(i)*time.Minute)
		}
		ins = append(ins, in)
	}
	mustAppend(t, s, org.ID, ins...)
	if _, err := oldIG.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	legacyCP, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	f := &evidenceFixture{ctx: ctx, s: s, vkey: vkey, now: now, ig: ig, purger: purger, org: org, legacyCP: legacyCP}
	if n := f.oldPurge(t, now.Add(-5*24*time.Hour), legacyCP.Size); n != 30 {
		t.Fatalf("old purge: %d events", n)
	}
	if err := f.fsck(nil); err == nil || !strings.Contains(err.Error(), "event index 1:") || !strings.Contains(err.Error(), "purged without evidence") {
		t.Fatalf("fsck of events purged without evidence: %v", err)
	}
	return f
}

// testLegacyRecordedOnce: this version's first purge records the legacy
// purges in org_system, once, and fsck accepts them.
func (f *evidenceFixture) testLegacyRecordedOnce(t *testing.T) {
	ctx, s, vkey, ig, purger, org, legacyCP := f.ctx, f.s, f.vkey, f.ig, f.purger, f.org, f.legacyCP
	// This version's first purge records them, once.
	for range 2 {
		if _, err := purger.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	recs := allEvents(t, s, trail.EventFilter{OrganizationID: trail.SystemOrganizationID, Actions: []string{trail.ActionPurgeLegacy, trail.ActionPurgeEvidence}})
	var mine, markers int
	var mineAt, markerAt int64
	for _, ev := range recs {
		if ev.Action == trail.ActionPurgeEvidence {
			markers, markerAt = markers+1, ev.Index
		} else if l, err := trail.ParseLegacyPurges(ev); err == nil && l.OrganizationID == org.ID {
			mine, mineAt = mine+1, ev.Index
			if l.Below != legacyCP.Size || l.Events != 30 {
				t.Fatalf("legacy record %+v", l)
			}
		}
	}
	if mine != 1 || markers != 1 || markerAt < mineAt {
		t.Fatalf("org_system's records: %d of the organization, %d markers", mine, markers)
	}
	legacy, err := tlog.LoadLegacyPurges(ctx, s.Events, s.Logs, vkey)
	if err != nil || legacy[org.ID].Events != 30 {
		t.Fatalf("legacy purges %+v %v", legacy, err)
	}
	if err := f.fsck(legacy); err != nil {
		t.Fatalf("fsck with the legacy record: %v", err)
	}
	f.legacy = legacy
}

// testExport: an export with legacy purges verifies, and fails without
// its evidence.
func (f *evidenceFixture) testExport(t *testing.T) {
	ctx, s, vkey, now, ig, org := f.ctx, f.s, f.vkey, f.now, f.ig, f.org
	if s.Exports == nil {
		t.Skip("no export service")
	}
	ex := &trail.Export{OrganizationID: org.ID, Format: trail.ExportNDJSON,
		Filter: trail.EventFilter{RangeStart: ptr(now.Add(-30 * 24 * time.Hour)), RangeEnd: ptr(now.Add(time.Hour))}}
	if err := s.Exports.CreateExport(ctx, ex); err != nil {
		t.Fatal(err)
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	done := runExport(t, s, ex.ID)
	file := readExport(t, s, done)
	if vres, err := tlog.Verify(bytes.NewReader(file), []byte(done.Checkpoint.Note), vkey); err != nil || vres.Purged != 30 || !vres.Tree {
		t.Fatalf("verify an export with legacy purges: %+v %v", vres, err)
	}
	// Without its evidence, the same file fails at its first purged
	// event.
	stripped := regexp.MustCompile(`,"purge_evidence":\{.*?"checkpoint":"[^"]*"\}\}`).ReplaceAll(file, nil)
	if bytes.Equal(stripped, file) {
		t.Fatal("no purge_evidence in the export")
	}
	if _, err := tlog.Verify(bytes.NewReader(stripped), []byte(done.Checkpoint.Note), vkey); err == nil || !strings.Contains(err.Error(), "(index 1,") {
		t.Fatalf("verify without evidence: %v", err)
	}
}

func (f *evidenceFixture) testPurgeByHand(t *testing.T) {
	ctx, s, now, org, legacyCP := f.ctx, f.s, f.now, f.org, f.legacyCP
	// A purge by hand now, of a fresh event: no record covers it, and the
	// legacy count is spent.
	if n := f.oldPurge(t, now.Add(time.Hour), legacyCP.Size); n != 11 { // and organization.created
		t.Fatalf("purge by hand: %d events", n)
	}
	if err := f.fsck(f.legacy); err == nil || !strings.Contains(err.Error(), "41 events are purged") {
		t.Fatalf("fsck after a purge by hand of fresh events: %v", err)
	}
	latest, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.oldPurge(t, now.Add(time.Hour), latest.Size); n == 0 {
		t.Fatal("nothing purged by hand")
	}
	if err := f.fsck(f.legacy); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("event index %d:", legacyCP.Size)) || !strings.Contains(err.Error(), "purged without evidence") {
		t.Fatalf("fsck after a purge by hand past the legacy records: %v", err)
	}
	f.latest = latest
}

func (f *evidenceFixture) testForgedRecord(t *testing.T) {
	ctx, s, vkey, ig, org, latest := f.ctx, f.s, f.vkey, f.ig, f.org, f.latest
	// A purge record appended behind Trail's back, dated a year ahead (the
	// database's clock too), which would cover those events: the first
	// checkpoint that covers it was signed now, so it authorizes nothing.
	if s.Advance == nil {
		t.Skip("this implementation's clock cannot be moved")
	}
	s.Advance(366 * 24 * time.Hour)
	forgedAt := time.Now().UTC().Add(366 * 24 * time.Hour)
	rec := trail.PurgeRecord{RetentionDays: trail.DefaultRetentionDays, Cutoff: forgedAt.Add(-trail.RetentionPeriod(trail.DefaultRetentionDays)),
		Below: latest.Size, CheckpointTime: latest.CreatedAt.Truncate(time.Second)}
	forged := trail.AuditEvent(trail.NewContextWithCaller(ctx, trail.PurgeCaller), trail.ActionEventsPurged, forgedAt, rec.Metadata(), trail.Target{ID: org.ID, Type: "organization"})
	mustAppend(t, s, org.ID, forged)
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := tlog.FsckOptions{Key: vkey, Origin: "trail.test", Legacy: f.legacy}.Fsck(ctx, s.Logs, org.ID)
	if err == nil || !strings.Contains(err.Error(), "purged without evidence") {
		t.Fatalf("fsck with a forged purge record: %v", err)
	}
	if res == nil || !strings.Contains(strings.Join(res.Warnings, "\n"), "a purge record that authorizes nothing: it says it occurred at") {
		t.Fatalf("no warning of the forged record: %+v", res)
	}
}

// testPurgeKeep: a purge bound's Keep spares the events of those actions
// (the changes of retention, which fsck checks purge records against).
func testPurgeKeep(t *testing.T, s Services) {
	ctx := context.Background()
	keys := newKeys(t, "trail.test")
	ig := &tlog.Integrator{Store: s.Logs, Signer: keys.Signer, Timestamper: keys.Timestamper, Origin: "trail.test"}
	org := mustOrg(t, s, "Keep")
	if _, err := s.Organizations.UpdateRetention(ctx, org.ID, 30); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, org.ID, NewEvent(1), NewEvent(2))
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Logs.PurgeExpired(ctx, []trail.PurgeBound{{OrganizationID: org.ID, Cutoff: time.Now().Add(time.Hour), Below: cp.Size,
		Keep: []string{trail.ActionRetentionUpdated}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != cp.Size-1 {
		t.Fatalf("purged %d of %d events, want all but the change of retention", r.Events, cp.Size)
	}
	if evs := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID}); len(evs) != 1 || evs[0].Action != trail.ActionRetentionUpdated {
		t.Fatalf("left after the purge: %+v", evs)
	}
}
