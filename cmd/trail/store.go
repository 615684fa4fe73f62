package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/sqlite"
)

// store is an opened database and the services on it, whichever driver
// the --database-url picked.
type store struct {
	Events        trail.EventService
	Organizations trail.OrganizationService
	Schemas       trail.SchemaService
	APIKeys       trail.APIKeyService
	Idempotency   trail.IdempotencyService
	Logs          trail.LogStore
	Exports       trail.ExportService
	Streams       trail.StreamService
	Portal        trail.PortalService
	// Name says which database this is, for logs: a file, or a URL
	// without its password.
	Name string
	// SchemaVersion is the driver's newest migration.
	SchemaVersion int
	// SetOnCommit installs the group committer's observer.
	SetOnCommit func(func(events, requests int, d time.Duration))
	// Close closes the database.
	Close func() error
	// Unavailable reports whether an error is the database failing for a
	// while (the driver's errors).
	Unavailable func(error) bool
}

// storageFlags are the flags every command that opens the database takes.
type storageFlags struct {
	dataDir     string
	databaseURL string
}

func (s *storageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "./trail-data", "data directory (database, keys)")
	fs.StringVar(&s.databaseURL, "database-url", "", "database: sqlite://PATH (default <data-dir>/trail.db) or postgres://USER@HOST:PORT/DB?sslmode=…")
}

// openDB opens the database named by the flags and runs its migrations.
func (s *storageFlags) openDB(ctx context.Context, logger *slog.Logger) (*store, error) {
	switch u := s.databaseURL; {
	case u == "":
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		return openSQLite(ctx, filepath.Join(s.dataDir, "trail.db"), logger)
	case strings.HasPrefix(u, "sqlite://"):
		path := strings.TrimPrefix(u, "sqlite://")
		if path == "" {
			return nil, errors.New("--database-url sqlite:// needs a file path, e.g. sqlite:///var/lib/trail/trail.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		return openSQLite(ctx, path, logger)
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return openPostgres(ctx, u, logger)
	default:
		return nil, fmt.Errorf("--database-url %q: want sqlite://PATH or postgres://…", redactURL(u))
	}
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*store, error) {
	db := sqlite.NewDB(path)
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &store{
		Events: sqlite.NewEventService(db), Organizations: sqlite.NewOrganizationService(db),
		Schemas: sqlite.NewSchemaService(db), APIKeys: sqlite.NewAPIKeyService(db),
		Idempotency: sqlite.NewIdempotencyService(db), Logs: sqlite.NewLogStore(db), Exports: sqlite.NewExportService(db),
		Streams: sqlite.NewStreamService(db), Portal: sqlite.NewPortalService(db),
		Name: path, SchemaVersion: sqlite.SchemaVersion(),
		SetOnCommit: func(f func(int, int, time.Duration)) { db.OnCommit = f },
		Close:       db.Close,
		Unavailable: sqlite.Unavailable,
	}, nil
}

func openPostgres(ctx context.Context, u string, logger *slog.Logger) (*store, error) {
	db := postgres.NewDB(u)
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", redactURL(u), err)
	}
	return &store{
		Events: postgres.NewEventService(db), Organizations: postgres.NewOrganizationService(db),
		Schemas: postgres.NewSchemaService(db), APIKeys: postgres.NewAPIKeyService(db),
		Idempotency: postgres.NewIdempotencyService(db), Logs: postgres.NewLogStore(db), Exports: postgres.NewExportService(db),
		Streams: postgres.NewStreamService(db), Portal: postgres.NewPortalService(db),
		Name: redactURL(u), SchemaVersion: postgres.SchemaVersion(),
		SetOnCommit: func(f func(int, int, time.Duration)) { db.OnCommit = f },
		Close:       db.Close,
		Unavailable: postgres.Unavailable,
	}, nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
