package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/jsonschema"
	"github.com/trail-audit/trail/sqlite"
)

// adminSecret is the bootstrap key of every test server.
const adminSecret = "sk_test_admin_0123456789abcdefghijklmnop"

// testServer is a real server on loopback over a SQLite file.
type testServer struct {
	*httpapi.Server
	DB     *sqlite.DB
	Events *sqlite.EventService
	Orgs   *sqlite.OrganizationService
	Keys   *sqlite.APIKeyService
}

func newTestServer(t *testing.T, opts ...func(*httpapi.Server, *jsonschema.Validator)) *testServer {
	t.Helper()
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{DB: db, Events: sqlite.NewEventService(db), Orgs: sqlite.NewOrganizationService(db), Keys: sqlite.NewAPIKeyService(db)}
	schemas := sqlite.NewSchemaService(db)
	if err := ts.Keys.CreateAPIKey(ctx, &trail.APIKey{Name: "admin", Permissions: []trail.Permission{trail.PermAdmin}, Secret: adminSecret}); err != nil {
		t.Fatal(err)
	}
	v := jsonschema.NewValidator(schemas)
	s := httpapi.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Events, s.Organizations, s.Schemas, s.APIKeys = ts.Events, ts.Orgs, schemas, ts.Keys
	s.Validator = v
	s.Idempotency = sqlite.NewIdempotencyService(db)
	s.CheckSchema = jsonschema.Check
	s.SchemaCreated = v.Forget
	s.RateLimit = 0
	s.Ready = func(ctx context.Context) error {
		_, err := ts.Orgs.FindOrganizationByID(ctx, trail.SystemOrganizationID)
		return err
	}
	for _, o := range opts {
		o(s, v)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	db.OnCommit = s.Metrics.ObserveCommit
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
		db.Close()
	})
	return ts
}
