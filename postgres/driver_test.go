package postgres_test

import (
	"testing"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/store"
	"github.com/trail-audit/trail/store/drivertest"
)

// TestDriver runs the driver-level suite of store.Driver on PostgreSQL,
// each subtest in a schema of its own.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) store.Driver {
		var db *postgres.DB
		open(t, func(d *postgres.DB) { db = d })
		return postgres.NewStore(db)
	})
}

// TestDriver_Citus runs the driver-level suite on a Citus cluster
// (TRAIL_TEST_CITUS_URL).
func TestDriver_Citus(t *testing.T) {
	pgtest.CitusURL(t)
	drivertest.Run(t, func(t *testing.T) store.Driver {
		var db *postgres.DB
		openAt(t, pgtest.CitusURL(t), func(d *postgres.DB) { db = d })
		return postgres.NewStore(db)
	})
}
