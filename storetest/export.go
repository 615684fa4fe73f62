package storetest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/tlog"
)

// hostileEvent is an event whose every text is what a CSV reader or a
// spreadsheet might misread: formulas, quotes, separators, line breaks,
// Unicode and HTML.
func hostileEvent(n int) *trail.EventInput {
	in := NewEvent(n)
	in.Actor.Name = `=HYPERLINK("http://evil.example","click")`
	in.Actor.ID = "+1-555-0100"
	in.Targets = []trail.Target{
		{ID: "-2+3", Type: "@team", Name: "a;b,c"},
		{ID: "line\nbreak", Type: "doc", Name: "quote \" and 'single'"},
	}
	in.Context = trail.EventContext{Location: "\tTabbed", UserAgent: "\rReturn 日本語 🚀 <b>&amp;</b>"}
	in.Metadata = trail.Metadata{"note": "=1+1", "html": "<script>alert(1)</script> & more", "emoji": "Zoë 🎉", "quoted": "say \"hi\"\n\\ done", "n": json.Number("-12.5"), "ok": true}
	return in
}

// csvRecord is the row Trail's CSV must hold for an event.
func csvRecord(ev *trail.Event) []string {
	var types, ids, names []string
	e := export.EscapeCell
	for _, t := range ev.Targets {
		types, ids, names = append(types, e(t.Type)), append(ids, e(t.ID)), append(names, e(t.Name))
	}
	md := ""
	if len(ev.Metadata) > 0 {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(ev.Metadata)
		md = strings.TrimSpace(b.String())
	}
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	return []string{ev.ID, strconv.FormatInt(ev.Index, 10), ts(ev.OccurredAt), ts(ev.ReceivedAt), e(ev.Action), strconv.Itoa(ev.Version),
		e(ev.Actor.Type), e(ev.Actor.ID), e(ev.Actor.Name), strings.Join(types, ";"), strings.Join(ids, ";"), strings.Join(names, ";"),
		e(ev.Context.Location), e(ev.Context.UserAgent), e(md)}
}

// runExport claims the export, writes its file against the latest
// checkpoint and records it.
func runExport(t *testing.T, s Services, want string) *trail.Export {
	t.Helper()
	ctx := context.Background()
	ex, err := s.Exports.ClaimExport(ctx, time.Minute)
	if err != nil || ex == nil || ex.ID != want {
		t.Fatalf("claim: %v %v, want %s", ex, err, want)
	}
	cp, err := s.Logs.LatestCheckpoint(ctx, ex.OrganizationID)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size < ex.MinTreeSize {
		t.Fatalf("checkpoint of %d does not cover the export's %d events", cp.Size, ex.MinTreeSize)
	}
	ex.Checkpoint = cp
	f, err := s.Exports.CreateExportFile(ctx, ex)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Rows, ex.Bytes, err = export.Write(ctx, f, export.Source{Events: s.Events, Logs: s.Logs}, ex, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Exports.FinishExport(ctx, ex, f); err != nil {
		t.Fatal(err)
	}
	return ex
}

func readExport(t *testing.T, s Services, ex *trail.Export) []byte {
	t.Helper()
	rc, err := s.Exports.OpenExportFile(context.Background(), ex.OrganizationID, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != ex.Bytes {
		t.Fatalf("file of %d bytes, export says %d", len(b), ex.Bytes)
	}
	return b
}

// testExports: jobs are stored, claimed by one holder at a time, taken
// over when a lease runs out, and their files are written, read and
// expired; CSV rows and NDJSON lines are the events of the filter.
func testExports(t *testing.T, s Services) {
	fx := newExportFixture(t, s)
	t.Run("AuditEvent", fx.testAuditEvent)
	t.Run("Find", fx.testFind)
	if _, err := fx.ig.Integrate(fx.ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("OneHolder", fx.testOneHolder)
	t.Run("CSV", fx.testCSV)
	t.Run("NDJSON", fx.testNDJSON)
	t.Run("Takeover", fx.testTakeover)
	t.Run("Expire", fx.testExpire)
	if ex, err := s.Exports.ClaimExport(fx.ctx, time.Minute); err != nil || ex != nil {
		t.Fatalf("left pending: %+v %v", ex, err)
	}
	t.Run("Recent", fx.testRecent)
}

// exportFixture is an organization of 1200 events, some hostile, with one
// CSV export created; testExports' subtests share it.
type exportFixture struct {
	ctx        context.Context
	s          Services
	vkey       string
	ig         *tlog.Integrator
	org, other *trail.Organization
	ex         *trail.Export
	start, end time.Time // the CSV export's range
}

func newExportFixture(t *testing.T, s Services) *exportFixture {
	ctx := context.Background()
	signer, vkey := newSigner(t, "trail.test")
	ig := &tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.test"}
	org := mustOrg(t, s, "Exports")
	other := mustOrg(t, s, "Other")
	var ins []*trail.EventInput
	for i := range 1200 {
		if i%50 == 7 {
			ins = append(ins, hostileEvent(i))
		} else {
			ins = append(ins, NewEvent(i))
		}
	}
	mustAppend(t, s, org.ID, ins...)
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	start, end := baseTime.Add(-900*time.Second), baseTime.Add(-100*time.Second)
	ex := &trail.Export{OrganizationID: org.ID, Format: trail.ExportCSV,
		Filter: trail.EventFilter{RangeStart: &start, RangeEnd: &end, Actions: []string{"alert_route.*"}}}
	if err := s.Exports.CreateExport(ctx, ex); err != nil {
		t.Fatal(err)
	}
	head, err := s.Logs.LogHead(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ex.ID, "audit_log_export_") || ex.State != trail.ExportPending || ex.MinTreeSize != head.LogSize || head.LogSize < 1000 {
		t.Fatalf("created %+v", ex)
	}
	return &exportFixture{ctx: ctx, s: s, vkey: vkey, ig: ig, org: org, other: other, ex: ex, start: start, end: end}
}

func (fx *exportFixture) testAuditEvent(t *testing.T) {
	ctx, s, org, ex := fx.ctx, fx.s, fx.org, fx.ex
	page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org.ID, Limit: 1, Actions: []string{trail.ActionExportCreated}})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("%v %v", page, err)
	}
	ev := page.Events[0]
	if ev.Index != ex.MinTreeSize-1 || ev.Targets[0].ID != ex.ID || ev.Metadata["format"] != "csv" || ev.Metadata["actions"] != "alert_route.*" {
		t.Fatalf("audit event %+v", ev)
	}
}

func (fx *exportFixture) testFind(t *testing.T) {
	ctx, s, org, other, ex, start := fx.ctx, fx.s, fx.org, fx.other, fx.ex, fx.start
	for _, orgID := range []string{org.ID, ""} {
		got, err := s.Exports.FindExportByID(ctx, orgID, ex.ID)
		if err != nil || got.State != trail.ExportPending || got.Format != "csv" || !got.Filter.RangeStart.Equal(start) ||
			got.Filter.Actions[0] != "alert_route.*" || got.Filter.OrganizationID != org.ID {
			t.Fatalf("%+v %v", got, err)
		}
	}
	if _, err := s.Exports.FindExportByID(ctx, other.ID, ex.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("another organization's export: %v", err)
	}
}

// testRecent: an organization's recent exports are its own, newest first.
func (fx *exportFixture) testRecent(t *testing.T) {
	ctx, s, org, other, ex := fx.ctx, fx.s, fx.org, fx.other, fx.ex
	start, end := fx.start, fx.end
	var made []string
	for range 3 {
		e := &trail.Export{OrganizationID: other.ID, Format: trail.ExportNDJSON, Filter: trail.EventFilter{RangeStart: &start, RangeEnd: &end}}
		if err := s.Exports.CreateExport(ctx, e); err != nil {
			t.Fatal(err)
		}
		made = append(made, e.ID)
	}
	got, err := s.Exports.FindRecentExports(ctx, other.ID, 2)
	if err != nil || len(got) != 2 || got[0].ID != made[2] || got[1].ID != made[1] || got[0].Format != "ndjson" || got[0].OrganizationID != other.ID {
		t.Fatalf("recent of %s: %v %v, made %v", other.ID, got, err, made)
	}
	mine, err := s.Exports.FindRecentExports(ctx, org.ID, 100)
	if err != nil || len(mine) == 0 || len(mine) > 50 {
		t.Fatalf("recent of %s: %d %v", org.ID, len(mine), err)
	}
	found := false
	for _, e := range mine {
		found = found || e.ID == ex.ID
		if e.OrganizationID != org.ID {
			t.Fatalf("another organization's export %s", e.ID)
		}
	}
	if !found {
		t.Fatalf("%s is not among the recent exports", ex.ID)
	}
	if none, err := s.Exports.FindRecentExports(ctx, "org_nobody", 10); err != nil || len(none) != 0 {
		t.Fatalf("an unknown organization's recent exports: %v %v", none, err)
	}
	// None is left pending for the tests after these.
	for range made {
		e, err := s.Exports.ClaimExport(ctx, time.Minute)
		if err != nil || e == nil {
			t.Fatalf("claim: %v %v", e, err)
		}
		e.State, e.Error = trail.ExportError, "test"
		if err := s.Exports.FinishExport(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func (fx *exportFixture) testOneHolder(t *testing.T) {
	ctx, s, org, ex := fx.ctx, fx.s, fx.org, fx.ex
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []*trail.Export
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := s.Exports.ClaimExport(ctx, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ex != nil {
				mu.Lock()
				got = append(got, ex)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 || got[0].ID != ex.ID || got[0].Attempts != 1 || got[0].Claim == "" {
		t.Fatalf("claims: %+v", got)
	}
	stale := *got[0]
	stale.Claim = "not-mine"
	if err := s.Exports.RenewExport(ctx, &stale, time.Minute); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("renew with another claim: %v", err)
	}
	// Give it back, due now, for the next subtest.
	got[0].Error = "test"
	if err := s.Exports.ReleaseExport(ctx, got[0], time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if back, _ := s.Exports.FindExportByID(ctx, org.ID, ex.ID); back.Error != "test" || back.State != trail.ExportPending || back.Claim != "" {
		t.Fatalf("released: %+v", back)
	}
}

func (fx *exportFixture) testCSV(t *testing.T) {
	ctx, s, org, ex, start, end := fx.ctx, fx.s, fx.org, fx.ex, fx.start, fx.end
	done := runExport(t, s, ex.ID)
	back, err := s.Exports.FindExportByID(ctx, org.ID, ex.ID)
	if err != nil || back.State != trail.ExportReady || back.Rows != done.Rows || back.Bytes != done.Bytes || back.ReadyAt == nil ||
		back.Checkpoint == nil || back.Checkpoint.Size != done.Checkpoint.Size || back.Attempts != 2 {
		t.Fatalf("%+v %v", back, err)
	}
	want := allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, RangeStart: &start, RangeEnd: &end, Actions: []string{"alert_route.*"}})
	slices.Reverse(want)
	recs, err := csv.NewReader(bytes.NewReader(readExport(t, s, done))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(export.Columns, ",") {
		t.Fatalf("header %q", recs[0])
	}
	if len(recs)-1 != len(want) || int64(len(want)) != done.Rows || len(want) < 100 {
		t.Fatalf("%d rows, want %d (export says %d)", len(recs)-1, len(want), done.Rows)
	}
	hostile := 0
	for i, ev := range want {
		if got, w := recs[i+1], csvRecord(ev); strings.Join(got, "\x00") != strings.Join(w, "\x00") {
			t.Fatalf("row %d:\n got %q\nwant %q", i+1, got, w)
		}
		if strings.HasPrefix(ev.Actor.Name, "=") {
			hostile++
			if r := recs[i+1]; r[8] != `'=HYPERLINK("http://evil.example","click")` || r[7] != "'+1-555-0100" || r[12] != "'\tTabbed" ||
				!strings.Contains(r[14], `"html":"<script>alert(1)</script> & more"`) || r[11] != `a;b,c;quote " and 'single'` {
				t.Fatalf("hostile row %q", r)
			}
		}
	}
	if hostile == 0 {
		t.Fatal("no hostile event in the range")
	}
}

func (fx *exportFixture) testNDJSON(t *testing.T) {
	ctx, s, vkey, ig, org, ex := fx.ctx, fx.s, fx.vkey, fx.ig, fx.org, fx.ex
	all := &trail.Export{OrganizationID: org.ID, Format: trail.ExportNDJSON, Gzip: false,
		Filter: trail.EventFilter{RangeStart: &time.Time{}, RangeEnd: ptr(time.Now().Add(time.Hour))}}
	some := &trail.Export{OrganizationID: org.ID, Format: trail.ExportNDJSON,
		Filter: trail.EventFilter{ActorIDs: []string{"user_3"}}}
	for _, e := range []*trail.Export{all, some} {
		if err := s.Exports.CreateExport(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*trail.Export{all, some} {
		done := runExport(t, s, e.ID)
		file := readExport(t, s, done)
		res, err := tlog.VerifyOptions{Key: vkey, Checkpoint: []byte(done.Checkpoint.Note), Subset: e == some}.Verify(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if res.Lines != int(done.Rows) || res.Proven != res.Lines {
			t.Fatalf("%+v, %d rows", res, done.Rows)
		}
		if e == all && (!res.Tree || done.Rows != done.Checkpoint.Size || done.Rows <= ex.MinTreeSize) {
			t.Fatalf("whole log: %+v, %d rows of %d", res, done.Rows, done.Checkpoint.Size)
		}
		if e == some && done.Rows != int64(len(allEvents(t, s, trail.EventFilter{OrganizationID: org.ID, ActorIDs: []string{"user_3"}}))) {
			t.Fatalf("%d rows", done.Rows)
		}
	}
}

func (fx *exportFixture) testTakeover(t *testing.T) {
	ctx, s, other := fx.ctx, fx.s, fx.other
	e := &trail.Export{OrganizationID: other.ID, Format: trail.ExportCSV, Gzip: true}
	if err := s.Exports.CreateExport(ctx, e); err != nil {
		t.Fatal(err)
	}
	first, err := s.Exports.ClaimExport(ctx, 50*time.Millisecond)
	if err != nil || first == nil || first.ID != e.ID {
		t.Fatalf("%v %v", first, err)
	}
	if again, err := s.Exports.ClaimExport(ctx, time.Minute); err != nil || again != nil {
		t.Fatalf("claimed while held: %v %v", again, err)
	}
	time.Sleep(100 * time.Millisecond)
	second, err := s.Exports.ClaimExport(ctx, time.Minute)
	if err != nil || second == nil || second.ID != e.ID || second.Claim == first.Claim || second.Attempts != 2 {
		t.Fatalf("after the lease: %+v %v", second, err)
	}
	// The first holder's late outcome is refused, and its file gone.
	f, err := s.Exports.CreateExportFile(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("stale"))
	first.Checkpoint = &trail.Checkpoint{Size: 1}
	if err := s.Exports.FinishExport(ctx, first, f); trail.ErrorCode(err) != trail.ECONFLICT {
		t.Fatalf("stale finish: %v", err)
	}
	second.Error = "it broke"
	if err := s.Exports.FinishExport(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	if back, _ := s.Exports.FindExportByID(ctx, other.ID, e.ID); back.State != trail.ExportError || back.Error != "it broke" {
		t.Fatalf("failed export: %+v", back)
	}
	if _, err := s.Exports.OpenExportFile(ctx, other.ID, e.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("file of a failed export: %v", err)
	}
}

func (fx *exportFixture) testExpire(t *testing.T) {
	ctx, s, org, ex := fx.ctx, fx.s, fx.org, fx.ex
	if n, err := s.Exports.ExpireExports(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("expired %d %v", n, err)
	}
	n, err := s.Exports.ExpireExports(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("expired %d, want 3: %v", n, err)
	}
	back, _ := s.Exports.FindExportByID(ctx, org.ID, ex.ID)
	if back.State != trail.ExportExpired {
		t.Fatalf("%+v", back)
	}
	if _, err := s.Exports.OpenExportFile(ctx, org.ID, ex.ID); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("file of an expired export: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
