package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
)

// TestFindEvents_RangeBeyondRecentWindow checks the second plan of a date
// range (the occurred_at index) against the first (a scan in index order).
func TestFindEvents_RangeBeyondRecentWindow(t *testing.T) {
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := service.New(NewStore(db), NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_r", Name: "r"}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	var ins []*trail.EventInput
	for i := 0; i < 400; i++ {
		// Out of order on purpose: occurred_at does not follow the index.
		at := base.Add(time.Duration((i*7919)%400) * time.Minute)
		ins = append(ins, &trail.EventInput{Action: "a.b", OccurredAt: at, Actor: trail.Actor{ID: "u", Type: "user"},
			Targets: []trail.Target{{ID: "t", Type: "t"}}, Context: trail.EventContext{Location: "x"}, Metadata: trail.Metadata{"i": i}})
	}
	svc := NewEventService(db)
	if _, err := svc.AppendEvents(ctx, "org_r", ins); err != nil {
		t.Fatal(err)
	}
	start, end := base.Add(100*time.Minute), base.Add(150*time.Minute)
	want := 0
	for _, in := range ins {
		if !in.OccurredAt.Before(start) && in.OccurredAt.Before(end) {
			want++
		}
	}
	for _, window := range []int{5000, 10} {
		for _, asc := range []bool{false, true} {
			f := trail.EventFilter{OrganizationID: "org_r", RangeStart: &start, RangeEnd: &end, Limit: 9, Ascending: asc}
			var got []int64
			for {
				db.RecentWindow = window
				page, err := svc.FindEvents(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Events {
					got = append(got, e.Index)
				}
				if !page.HasMore {
					break
				}
				last := page.Events[len(page.Events)-1].Index
				f.After = &last
			}
			if len(got) != want {
				t.Fatalf("window %d asc %v: %d events, want %d", window, asc, len(got), want)
			}
			for i := 1; i < len(got); i++ {
				if (got[i] < got[i-1]) != !asc || got[i] == got[i-1] {
					t.Fatalf("window %d asc %v: order broken at %d: %v", window, asc, i, got)
				}
			}
		}
	}
}

// TestExpire deletes de-duplication entries past the window and keeps the
// others: an expired event can be sent again, a recent one is still a
// duplicate, and a durable one (trail import's) stays, outside the
// expiry's index, which the expiry uses.
func TestExpire(t *testing.T) {
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "trail.db"))
	now := time.Now()
	db.Now = func() time.Time { return now }
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := service.New(NewStore(db), NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_x", Name: "x"}); err != nil {
		t.Fatal(err)
	}
	ev := func(n int) *trail.EventInput {
		return &trail.EventInput{Action: "a.b", OccurredAt: now.Add(-time.Minute), Actor: trail.Actor{ID: "u", Type: "user"},
			Targets: []trail.Target{{ID: "t", Type: "t"}}, Context: trail.EventContext{Location: "x"}, Metadata: trail.Metadata{"n": n}}
	}
	svc := NewEventService(db)
	durable := ev(0)
	durable.IdempotencyKey, durable.Durable = "import/x", true
	if _, err := svc.AppendEvents(ctx, "org_x", []*trail.EventInput{ev(1), durable}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(trail.IdempotencyWindow + time.Minute)
	if _, err := svc.AppendEvents(ctx, "org_x", []*trail.EventInput{ev(2)}); err != nil {
		t.Fatal(err)
	}
	if err := db.expire(ctx); err != nil {
		t.Fatal(err)
	}
	var n, partial int
	// organization.created and ev(1) are past the window; ev(2) is not,
	// and the durable entry never is.
	if err := db.reader.QueryRow(`SELECT COUNT(*) FROM idempotency`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d entries left, %v", n, err)
	}
	if err := db.reader.QueryRow(`SELECT partial FROM pragma_index_list('idempotency') WHERE name = 'idempotency_created'`).Scan(&partial); err != nil || partial != 1 {
		t.Fatalf("idempotency_created partial = %d, %v: durable entries are in the expiry's index", partial, err)
	}
	rows, err := db.reader.Query(`EXPLAIN QUERY PLAN `+expireIdempotency, now.UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "; "), "idempotency_created") {
		t.Fatalf("the expiry does not use its index: %q", plan)
	}
	res, err := svc.AppendEvents(ctx, "org_x", []*trail.EventInput{ev(2)})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("a recent event must still be a duplicate: %+v %v", res, err)
	}
}

// TestCountEvents_ReadsHourlyCounts: hours within the period come from
// event_counts, which appends keep equal to the events (a change of the
// table shows in the counts; the partial first hour does not read it).
func TestCountEvents_ReadsHourlyCounts(t *testing.T) {
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := service.New(NewStore(db), NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_c", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	var ins []*trail.EventInput
	for i := 0; i < 300; i++ {
		ins = append(ins, &trail.EventInput{Action: []string{"a.b", "a.c", "d.e"}[i%3], OccurredAt: base.Add(time.Duration(i*7) * time.Minute),
			Actor: trail.Actor{ID: "u", Type: "user"}, Context: trail.EventContext{Location: "x"}, Metadata: trail.Metadata{"i": i}})
	}
	svc := NewEventService(db)
	for i := 0; i < len(ins); i += 70 {
		if _, err := svc.AppendEvents(ctx, "org_c", ins[i:min(i+70, len(ins))]); err != nil {
			t.Fatal(err)
		}
	}
	var diff int
	if err := db.reader.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM (
		SELECT organization_id, occurred_at / 3600000000000 AS hour, action, COUNT(*) AS n FROM events GROUP BY 1, 2, 3
		EXCEPT SELECT organization_id, hour, action, n FROM event_counts)) + (SELECT COUNT(*) FROM (
		SELECT organization_id, hour, action, n FROM event_counts
		EXCEPT SELECT organization_id, occurred_at / 3600000000000 AS hour, action, COUNT(*) AS n FROM events GROUP BY 1, 2, 3))`).Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("event_counts differs from the events in %d rows (%v)", diff, err)
	}
	start, end := base.Add(30*time.Minute), base.Add(30*time.Hour)
	f := trail.EventFilter{OrganizationID: "org_c", RangeStart: &start, RangeEnd: &end, Actions: []string{"a.*"}}
	before, err := svc.CountEvents(ctx, f, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hour := base.Add(5*time.Hour).UnixNano() / hourNanos
	if _, err := db.writer.ExecContext(ctx, `UPDATE event_counts SET n = n + 1000 WHERE organization_id = 'org_c' AND hour IN (?, ?) AND action = 'a.b'`,
		hour, base.UnixNano()/hourNanos); err != nil {
		t.Fatal(err)
	}
	after, err := svc.CountEvents(ctx, f, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		want := before[i]
		if i == 5 {
			want += 1000
		}
		if after[i] != want {
			t.Fatalf("bucket %d: %d, want %d (before %v, after %v)", i, after[i], want, before, after)
		}
	}
}
