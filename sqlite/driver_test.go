package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/store"
	"github.com/trail-audit/trail/store/drivertest"
)

// TestDriver runs the driver-level suite of store.Driver on SQLite.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) store.Driver {
		db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
		if err := db.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return sqlite.NewStore(db)
	})
}
