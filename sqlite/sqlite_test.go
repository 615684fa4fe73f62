package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Services {
		db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
		if err := db.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storetest.Services{
			Events:        sqlite.NewEventService(db),
			Organizations: sqlite.NewOrganizationService(db),
			Schemas:       sqlite.NewSchemaService(db),
			APIKeys:       sqlite.NewAPIKeyService(db),
			Idempotency:   sqlite.NewIdempotencyService(db),
			Logs:          sqlite.NewLogStore(db),
		}
	})
}
