package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/trail-audit/trail"
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
	if err := NewOrganizationService(db).CreateOrganization(ctx, &trail.Organization{ID: "org_r", Name: "r"}); err != nil {
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
