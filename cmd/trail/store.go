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
	"github.com/trail-audit/trail/service"
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
	dataDir        string
	databaseURL    string
	walCheckpoints string
	// serving is set by trail serve, which keeps the SQLite WAL short;
	// the other commands are guests beside it (openSQLite).
	serving bool
}

func (s *storageFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "./trail-data", "data directory (database, keys)")
	fs.StringVar(&s.databaseURL, "database-url", "", "database: sqlite://PATH (default <data-dir>/trail.db) or postgres://USER@HOST:PORT/DB?sslmode=…")
	fs.StringVar(&s.walCheckpoints, "wal-checkpoints", "full", "SQLite: full (Trail keeps the WAL short: PASSIVE checkpoints, RESTART when long, TRUNCATE at exit) or passive (PASSIVE only; for Litestream, which checkpoints itself); commands other than serve checkpoint passively whenever another process has the database open")
}

// openDB opens the database named by the flags and runs its migrations.
func (s *storageFlags) openDB(ctx context.Context, logger *slog.Logger) (*store, error) {
	var passive bool
	switch s.walCheckpoints {
	case "", "full":
	case "passive":
		passive = true
	default:
		return nil, fmt.Errorf("--wal-checkpoints %q: want full or passive", s.walCheckpoints)
	}
	switch u := s.databaseURL; {
	case u == "":
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		return openSQLite(ctx, filepath.Join(s.dataDir, "trail.db"), passive, s.serving, logger)
	case strings.HasPrefix(u, "sqlite://"):
		path := strings.TrimPrefix(u, "sqlite://")
		if path == "" {
			return nil, errors.New("--database-url sqlite:// needs a file path, e.g. sqlite:///var/lib/trail/trail.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		return openSQLite(ctx, path, passive, s.serving, logger)
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return openPostgres(ctx, u, logger)
	default:
		return nil, fmt.Errorf("--database-url %q: want sqlite://PATH or postgres://…", redactURL(u))
	}
}

func openSQLite(ctx context.Context, path string, passiveCheckpoints, serving bool, logger *slog.Logger) (*store, error) {
	// A command beside another process that has the file open (a
	// serving Trail, Litestream) leaves the WAL's restarts and truncation
	// to it: two writers restarting the WAL wait on each other's readers,
	// and a truncation would make Litestream start a new snapshot.
	// trail serve decides by its flag alone.
	if !serving {
		if live, err := sqlite.Live(path); err == nil && live {
			passiveCheckpoints = true
		}
	}
	db := sqlite.NewDB(path)
	db.Logger, db.PassiveCheckpoints = logger, passiveCheckpoints
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	st := newStore(service.New(sqlite.NewStore(db), sqlite.NewExportService(db)))
	st.Events, st.Logs = sqlite.NewEventService(db), sqlite.NewLogStore(db)
	st.Name, st.SchemaVersion = path, sqlite.SchemaVersion()
	st.SetOnCommit = func(f func(int, int, time.Duration)) { db.OnCommit = f }
	st.Close, st.Unavailable = db.Close, sqlite.Unavailable
	return st, nil
}

func openPostgres(ctx context.Context, u string, logger *slog.Logger) (*store, error) {
	db := postgres.NewDB(u)
	db.Logger = logger
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", redactURL(u), err)
	}
	st := newStore(service.New(postgres.NewStore(db), postgres.NewExportService(db)))
	st.Events, st.Logs = postgres.NewEventService(db), postgres.NewLogStore(db)
	st.Name, st.SchemaVersion = redactURL(u), postgres.SchemaVersion()
	st.SetOnCommit = func(f func(int, int, time.Duration)) { db.OnCommit = f }
	st.Close, st.Unavailable = db.Close, postgres.Unavailable
	return st, nil
}

// newStore returns a store with the services of svc.
func newStore(svc *service.Services) *store {
	return &store{Organizations: svc.Organizations, Schemas: svc.Schemas, APIKeys: svc.APIKeys, Idempotency: svc.Idempotency,
		Exports: svc.Exports, Streams: svc.Streams, Portal: svc.Portal}
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
