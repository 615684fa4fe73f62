package postgres_test

import (
	"context"
	"testing"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Services {
		db := postgres.NewDB(pgtest.URL(t))
		if err := db.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storetest.Services{
			Events:        postgres.NewEventService(db),
			Organizations: postgres.NewOrganizationService(db),
			Schemas:       postgres.NewSchemaService(db),
			APIKeys:       postgres.NewAPIKeyService(db),
			Idempotency:   postgres.NewIdempotencyService(db),
		}
	})
}
