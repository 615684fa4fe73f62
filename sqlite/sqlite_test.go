package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Services {
		db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
		var offset atomic.Int64
		db.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		if err := db.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storetest.Wire(service.New(sqlite.NewStore(db), sqlite.NewExportService(db)), sqlite.NewEventService(db), sqlite.NewLogStore(db),
			func(d time.Duration) { offset.Add(int64(d)) })
	})
}

// TestOpen_FillsLeafHashes: events stored before leaf hashes existed (a
// database of an older version) get theirs when the database is opened,
// the same as if they had been stored with them.
func TestOpen_FillsLeafHashes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.db")
	db := sqlite.NewDB(path)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	orgs, events, logs := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, sqlite.NewEventService(db), sqlite.NewLogStore(db)
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_old", Name: "old"}); err != nil {
		t.Fatal(err)
	}
	var ins []*trail.EventInput
	for i := 0; i < 30; i++ {
		ins = append(ins, storetest.NewEvent(i))
	}
	if _, err := events.AppendEvents(ctx, "org_old", ins); err != nil {
		t.Fatal(err)
	}
	want, err := logs.LeafHashes(ctx, "org_old", 0, 31)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE events SET leaf_hash = NULL; DELETE FROM settings WHERE name = 'leaf_hashes_filled'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db = sqlite.NewDB(path)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := sqlite.NewLogStore(db).LeafHashes(ctx, "org_old", 0, 31)
	if err != nil || len(got) != 31 {
		t.Fatalf("%d leaf hashes after reopening: %v", len(got), err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("leaf %d filled in as %x, stored as %x", i, got[i], want[i])
		}
	}
}

// TestBatchProver: the proofs an export writes agree with the prover's.
func TestBatchProver(t *testing.T) {
	db, setHead := openWithHead(t)
	storetest.TestBatchProver(t, sqlite.NewLogStore(db), service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, setHead)
}
