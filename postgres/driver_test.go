package postgres_test

import (
	"testing"

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
