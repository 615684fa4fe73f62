package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/storetest"
	"github.com/trail-audit/trail/tlog"
)

func openAt(t *testing.T, now *time.Time) *DB {
	t.Helper()
	return openURL(t, pgtest.URL(t), now)
}

// openURL opens the database at url with the clock now.
func openURL(t *testing.T, url string, now *time.Time) *DB {
	t.Helper()
	db := NewDB(url)
	db.Now = func() time.Time { return *now }
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func partitions(t *testing.T, db *DB, table string) []string {
	t.Helper()
	rows, err := db.pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1) ORDER BY c.relname`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// TestPartitions: Open makes the current month's partition and
// PartitionsAhead more; the maintenance task keeps them ahead as time
// passes; an append in a month whose partition is missing (a clock jump)
// creates it rather than failing.
func TestPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2031, 3, 15, 12, 0, 0, 0, time.UTC)
	db := openAt(t, &now)
	want := "events_p203103 events_p203104 events_p203105"
	if got := strings.Join(partitions(t, db, "events"), " "); got != want {
		t.Fatalf("partitions after Open: %s, want %s", got, want)
	}
	if got := strings.Join(partitions(t, db, "event_targets"), " "); got != strings.ReplaceAll(want, "events_", "event_targets_") {
		t.Fatalf("target partitions after Open: %s", got)
	}

	now = time.Date(2031, 5, 2, 0, 0, 0, 0, time.UTC)
	if err := db.ensurePartitions(ctx, now); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(partitions(t, db, "events"), " "); got != want+" events_p203106 events_p203107" {
		t.Fatalf("partitions after maintenance: %s", got)
	}

	// Far beyond: no partition yet for December.
	now = time.Date(2031, 12, 24, 0, 0, 0, 0, time.UTC)
	events, orgs := NewEventService(db), service.New(NewStore(db), NewExportService(db)).Organizations
	res, err := events.AppendEvents(ctx, trail.SystemOrganizationID, []*trail.EventInput{storetest.NewEvent(1)})
	if err != nil || res[0].Err != nil {
		t.Fatalf("append in a month without a partition: %v %v", err, res)
	}
	if got := partitions(t, db, "events"); got[len(got)-1] != "events_p203202" {
		t.Fatalf("partitions after the append: %v", got)
	}
	ev, err := events.FindEventByID(ctx, "", res[0].ID)
	if err != nil || !ev.ReceivedAt.Equal(now) {
		t.Fatalf("stored event: %v %v", ev, err)
	}
	// Trail's own events, written in the transaction of a change, too.
	now = time.Date(2032, 7, 1, 0, 0, 0, 0, time.UTC)
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_p", Name: "p"}); err != nil {
		t.Fatalf("create organization in a month without a partition: %v", err)
	}
}

// TestKeysLeadWithOrganization: every primary key, unique index and
// index of an organization's table starts with organization_id (or is the
// organizations table's id), so that the schema can be distributed by
// it. The instance-wide catalogues are the documented exceptions.
func TestKeysLeadWithOrganization(t *testing.T) {
	t.Parallel()
	now := time.Now()
	db := openAt(t, &now)
	// The reference tables of Citus (layout) are kept whole on every node.
	reference := map[string]bool{}
	for table, col := range layout {
		reference[table] = col == ""
	}
	rows, err := db.pool.Query(context.Background(), `
		SELECT t.relname, i.relname, x.indisunique, a.attname
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
		LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
		WHERE NOT t.relispartition
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, index string
		var unique bool
		var first *string
		if err := rows.Scan(&table, &index, &unique, &first); err != nil {
			t.Fatal(err)
		}
		n++
		lead := ""
		if first != nil {
			lead = *first
		}
		switch {
		case reference[table]:
		case table == "organizations" && lead == "id":
		case lead == "organization_id":
		case !unique && (index == "events_id" || index == "purged_events_id" || index == "events_search" || index == "api_keys_id" || index == "api_keys_prefix" || index == "idempotency_created" || index == "idempotent_responses_created" ||
			index == "exports_id" || index == "exports_due" || index == "exports_ready" || index == "streams_id" || index == "streams_due"):
			// Lookups by a globally unique id, by time, or full-text
			// search filtered by organization: not unique constraints, so
			// they do not bind the distribution.
		default:
			t.Errorf("%s.%s leads with %q, not organization_id", table, index, lead)
		}
	}
	if n < 10 {
		t.Fatalf("only %d indexes seen", n)
	}
}

// TestSearchVector cross-checks the tsvector Trail builds with the one
// PostgreSQL's own parser builds from the same words, and tsqueryLiteral
// with phraseto_tsquery: q must mean the same as with to_tsvector.
func TestSearchVector(t *testing.T) {
	t.Parallel()
	now := time.Now()
	db := openAt(t, &now)
	ctx := context.Background()
	for _, text := range []string{
		"alert_route.updated user_1 Person 1 route_3 Critical alerts team_2 203.0.113.7 Mozilla/5.0 w3 true 1",
		"a b a c a b",
		"Ünïcödé Straße café CAFÉ — 東京 INC-12345",
		strings.Repeat("x ", 300) + "y",
	} {
		words := searchWords(text)
		var same bool
		err := db.pool.QueryRow(ctx, `SELECT $1::tsvector = to_tsvector('simple', $2)`, searchVector(words), strings.Join(words, " ")).Scan(&same)
		if err != nil || !same {
			var ours, theirs string
			db.pool.QueryRow(ctx, `SELECT $1::tsvector::text, to_tsvector('simple', $2)::text`, searchVector(words), strings.Join(words, " ")).Scan(&ours, &theirs)
			t.Errorf("%q:\n ours   %s\n theirs %s\n %v", text, ours, theirs, err)
		}
	}
	for _, q := range []string{"INC-12345", "w3 alerts", "Mozilla/5.0 route café"} {
		lit, ok := tsqueryLiteral(q)
		var parts []string
		args := []any{lit}
		for _, f := range strings.Fields(q) {
			args = append(args, strings.Join(searchWords(f), " "))
			parts = append(parts, fmt.Sprintf("phraseto_tsquery('simple', $%d)", len(args)))
		}
		var same bool
		err := db.pool.QueryRow(ctx, `SELECT $1::tsquery = `+strings.Join(parts, " && "), args...).Scan(&same)
		if !ok || err != nil || !same {
			t.Errorf("%q: %s, %v %v", q, lit, ok, err)
		}
	}
}

// TestPurge_DropsPartitions: a monthly partition whose events are all
// past the longest retention is dropped whole, once every event in it is
// in a checkpoint; its events then read as purged, the tree keeps their
// leaf hashes, and fsck passes.
func TestPurge_DropsPartitions(t *testing.T) {
	t.Parallel()
	testDropsPartitions(t, pgtest.URL)
}

// TestPurge_DropsPartitions_Citus drops them on Citus
// (TRAIL_TEST_CITUS_URL), where a partition is detached without
// CONCURRENTLY.
func TestPurge_DropsPartitions_Citus(t *testing.T) {
	t.Parallel()
	testDropsPartitions(t, pgtest.CitusURL)
}

func testDropsPartitions(t *testing.T, url func(testing.TB) string) {
	ctx := context.Background()
	// The first purge, a month before, records in org_system that purges
	// keep evidence: org_system's partition of December 2029 keeps that
	// record for ever.
	now := time.Date(2029, 12, 10, 12, 0, 0, 0, time.UTC)
	db := openURL(t, url(t), &now)
	events, orgs, logs := NewEventService(db), service.New(NewStore(db), NewExportService(db)).Organizations, NewLogStore(db)
	skey, _, _ := note.GenerateKey(rand.Reader, "trail.test")
	keys, err := tlog.ParseKeys(skey)
	if err != nil {
		t.Fatal(err)
	}
	vkey := keys.VerifierKey
	ig := &tlog.Integrator{Store: logs, Signer: keys.Signer, Timestamper: keys.Timestamper, Origin: "trail.test", Now: db.Now}
	purger := &tlog.Purger{Store: logs, Events: events, Key: vkey, Now: db.Now,
		Await: func(ctx context.Context, _ string, _ int64) error { _, err := ig.Integrate(ctx); return err }}
	if _, err := purger.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	now = time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_old", Name: "old"}); err != nil {
		t.Fatal(err)
	}
	var ins []*trail.EventInput
	for i := 0; i < 600; i++ {
		in := storetest.NewEvent(i)
		in.OccurredAt = now.Add(-time.Hour)
		ins = append(ins, in)
	}
	res, err := events.AppendEvents(ctx, "org_old", ins)
	if err != nil {
		t.Fatal(err)
	}
	// Not in a checkpoint: the partition is kept.
	if r, err := purger.Purge(ctx); err != nil || r.Partitions != 0 || r.Events != 0 {
		t.Fatalf("purge before integration: %+v %v", r, err)
	}
	if _, err := ig.Integrate(ctx); err != nil { // signed in January 2030
		t.Fatal(err)
	}
	// Thirteen months on, with events of this month too.
	now = time.Date(2031, 2, 15, 12, 0, 0, 0, time.UTC)
	in := storetest.NewEvent(9999)
	in.OccurredAt = now
	if _, err := events.AppendEvents(ctx, "org_old", []*trail.EventInput{in}); err != nil {
		t.Fatal(err)
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := purger.Purge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Partitions != 1 || r.Events != 601 { // with organization.created
		t.Fatalf("purge: %+v, want the January 2030 partition (601 events)", r)
	}
	// The record of the purge, and the checkpoint that covers it.
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := logs.LatestCheckpoint(ctx, "org_old")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(partitions(t, db, "events"), partitions(t, db, "event_targets")...) {
		if strings.HasSuffix(p, "_p203001") {
			t.Fatalf("partition %s is still attached", p)
		}
	}
	var exists bool
	db.pool.QueryRow(ctx, `SELECT to_regclass('events_p203001') IS NOT NULL`).Scan(&exists)
	if exists {
		t.Fatal("events_p203001 still exists")
	}
	checkEventCounts(t, db)
	ev, err := events.FindEventByID(ctx, "org_old", res[0].ID)
	if err != nil || !ev.Purged || ev.Index != 1 || len(ev.PurgedLeafHash) != 32 {
		t.Fatalf("event of a dropped partition: %+v %v", ev, err)
	}
	if fr, err := tlog.Fsck(ctx, logs, vkey, "trail.test", "org_old"); err != nil || fr.Events != cp.Size {
		t.Fatalf("fsck after dropping a partition: %+v %v", fr, err)
	}
	prover := &tlog.Prover{Store: logs, Key: vkey}
	if p, err := prover.InclusionProof(ctx, "org_old", 1, cp.Size); err != nil {
		t.Fatal(err)
	} else if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 1, uint64(cp.Size), ev.PurgedLeafHash, p.Hashes, cp.Root[:]); err != nil {
		t.Fatal(err)
	}
	// The event of this month is kept, and the record of the purge.
	page, err := events.FindEvents(ctx, trail.EventFilter{OrganizationID: "org_old", Limit: 10, Ascending: true})
	if err != nil || len(page.Events) != 2 || page.Events[0].Index != 601 || page.Events[1].Action != trail.ActionEventsPurged {
		t.Fatalf("events after the purge: %v %v", page, err)
	}

	// A run interrupted between detaching a partition and dropping it
	// left events_p203002 detached; the next run finishes it. December
	// 2029's partition holds a record org_system keeps: it stays.
	if _, err := db.pool.Exec(ctx, `ALTER TABLE events DETACH PARTITION events_p203002`); err != nil {
		t.Fatal(err)
	}
	now = time.Date(2031, 4, 10, 0, 0, 0, 0, time.UTC)
	r, err = purger.Purge(ctx)
	if err != nil || r.Partitions != 1 {
		t.Fatalf("purge after an interrupted run: %+v %v", r, err)
	}
	if db.pool.QueryRow(ctx, `SELECT to_regclass('events_p202912') IS NOT NULL`).Scan(&exists); !exists {
		t.Fatal("the partition that holds org_system's record of purge evidence was dropped")
	}
	for _, name := range []string{"events_p203002", "event_targets_p203002"} {
		db.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists)
		if exists {
			t.Fatalf("%s still exists", name)
		}
	}
}

// checkEventCounts fails unless event_counts holds, for every hour and
// action with events, exactly their number (rows of 0 left by purges
// aside).
func checkEventCounts(t *testing.T, db *DB) {
	t.Helper()
	var diff int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*) FROM (
		(SELECT organization_id, occurred_at / 3600000000000 AS hour, action, count(*) AS n FROM events GROUP BY 1, 2, 3
		 EXCEPT SELECT organization_id, hour, action, n FROM event_counts)
		UNION ALL
		(SELECT organization_id, hour, action, n FROM event_counts WHERE n <> 0
		 EXCEPT SELECT organization_id, occurred_at / 3600000000000, action, count(*) FROM events GROUP BY 1, 2, 3)) x`).Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("event_counts differs from the events in %d rows (%v)", diff, err)
	}
}
