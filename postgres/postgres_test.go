package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Services { return open(t, nil) })
}

// TestConformance_SmallWindows runs the suite with windows of a few
// events, so that date ranges and q also take their second step (the day
// index, the full-text index) on the suite's small logs.
func TestConformance_SmallWindows(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Services {
		return open(t, func(db *postgres.DB) { db.RecentWindow, db.SearchWindow = 2, 3 })
	})
}

// TestConformance_Citus runs the suite on a Citus cluster
// (TRAIL_TEST_CITUS_URL), each test's schema distributed by organization.
func TestConformance_Citus(t *testing.T) {
	pgtest.CitusURL(t) // skip the whole suite at once when there is none
	storetest.Run(t, func(t *testing.T) storetest.Services { return openAt(t, pgtest.CitusURL(t), nil) })
}

func open(t *testing.T, configure func(*postgres.DB)) storetest.Services {
	return openAt(t, pgtest.URL(t), configure)
}

func openAt(t *testing.T, url string, configure func(*postgres.DB)) storetest.Services {
	db := postgres.NewDB(url)
	var offset atomic.Int64
	db.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	if configure != nil {
		configure(db)
	}
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return storetest.Wire(service.New(postgres.NewStore(db), postgres.NewExportService(db)), postgres.NewEventService(db), postgres.NewLogStore(db),
		func(d time.Duration) { offset.Add(int64(d)) })
}
