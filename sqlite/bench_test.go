package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
)

// BenchmarkAppendEvents measures the driver alone: batches of 1000 events,
// fsync'd, into one organization.
func BenchmarkAppendEvents(b *testing.B) {
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "trail.db"))
	if err := db.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchAppend(b, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, sqlite.NewEventService(db))
}

// openWithHead opens a database and returns a function that sets an
// organization's log size directly, for trees of made-up leaves.
func openWithHead(tb testing.TB) (*sqlite.DB, func(org string, n int64)) {
	path := filepath.Join(tb.TempDir(), "trail.db")
	db := sqlite.NewDB(path)
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	return db, func(org string, n int64) {
		if _, err := raw.Exec(`UPDATE organizations SET next_index = ? WHERE id = ?`, n, org); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkProofs: inclusion and consistency proofs in a tree of 10 M
// leaves (TRAIL_BENCH_PROOF_LEAVES), read from the tiles in the database.
func BenchmarkProofs(b *testing.B) {
	db, setHead := openWithHead(b)
	storetest.BenchProofs(b, sqlite.NewLogStore(db), service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, setHead)
}

// BenchmarkExport: export.Write of the demo's events (storetest.BenchExport).
func BenchmarkExport(b *testing.B) {
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "trail.db"))
	if err := db.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchExport(b, storetest.Services{Events: sqlite.NewEventService(db), Organizations: service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, Logs: sqlite.NewLogStore(db)})
}
