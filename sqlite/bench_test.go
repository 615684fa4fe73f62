package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
)

// BenchmarkAppendEvents measures the driver alone: batches of 1000 events,
// fsync'd, into one organization.
func BenchmarkAppendEvents(b *testing.B) {
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	orgs, events := sqlite.NewOrganizationService(db), sqlite.NewEventService(db)
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_b", Name: "b"}); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := make([]*trail.EventInput, batch)
		for j := range evs {
			evs[j] = storetest.NewEvent(n)
			evs[j].Metadata["unique"] = n // no de-duplication
			n++
		}
		if _, err := events.AppendEvents(ctx, "org_b", evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}
