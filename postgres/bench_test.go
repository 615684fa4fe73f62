package postgres_test

import (
	"context"
	"os"
	"strings"

	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/storetest"
)

// BenchmarkAppendEvents measures the driver alone: batches of 1000 events
// into one organization, each batch committed.
func BenchmarkAppendEvents(b *testing.B) {
	ctx := context.Background()
	u := pgtest.URL(b)
	db := postgres.NewDB(u)
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	if d := os.Getenv("ABLATE"); d != "" {
		pool, _ := pgxpool.New(ctx, u)
		for _, stmt := range strings.Split(d, ";") {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				b.Fatal(err)
			}
		}
		pool.Close()
	}
	defer db.Close()
	storetest.BenchAppend(b, service.New(postgres.NewStore(db), postgres.NewExportService(db)).Organizations, postgres.NewEventService(db))
}

// BenchmarkProofs: inclusion and consistency proofs in a tree of 10 M
// leaves (TRAIL_BENCH_PROOF_LEAVES), read from the tiles in the database.
func BenchmarkProofs(b *testing.B) {
	ctx := context.Background()
	u := pgtest.URL(b)
	db := postgres.NewDB(u)
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	storetest.BenchProofs(b, postgres.NewLogStore(db), service.New(postgres.NewStore(db), postgres.NewExportService(db)).Organizations, func(org string, n int64) {
		if _, err := pool.Exec(ctx, `UPDATE organizations SET next_index = $1 WHERE id = $2`, n, org); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkExport: export.Write of the demo's events (storetest.BenchExport).
func BenchmarkExport(b *testing.B) {
	db := postgres.NewDB(pgtest.URL(b))
	if err := db.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchExport(b, storetest.Services{Events: postgres.NewEventService(db), Organizations: service.New(postgres.NewStore(db), postgres.NewExportService(db)).Organizations, Logs: postgres.NewLogStore(db)})
}
