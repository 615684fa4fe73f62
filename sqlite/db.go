package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/internal/lifecycle"
	"github.com/trail-audit/trail/store"
)

// Page caches of each connection: CacheKiB for the writer and the query
// pool, ScanCacheKiB for the connections of exports.
const (
	CacheKiB     = 65536
	ScanCacheKiB = 4096
)

// PageSize is the page size of new database files (1–8 KiB measured alike).
const PageSize = 4096

// DB is a Trail database in one SQLite file.
type DB struct {
	// Path is the database file.
	Path string
	// ExportDir holds the export files: "exports" beside the database
	// file by default.
	ExportDir string
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// MaxCommitEvents bounds one group commit.
	MaxCommitEvents int
	// Logger receives what the background checkpointer cannot return.
	Logger *slog.Logger
	// RecentWindow: see the constant of that name.
	RecentWindow int
	// OnCommit, if set, is called after each group commit with the number
	// of events and requests it held and how long it took.
	OnCommit func(events, requests int, d time.Duration)
	// PassiveCheckpoints leaves restarting and truncating the WAL to
	// another program that replicates it (Litestream, which holds a read
	// transaction on the WAL and checkpoints it itself): Trail then runs
	// only PASSIVE checkpoints, which never go past another reader's
	// position, never RESTART one between commits, and does not TRUNCATE
	// the WAL when it closes. docs/OPERATIONS.md.
	PassiveCheckpoints bool

	writer *sql.DB
	reader *sql.DB
	// scanner serves the long sequential reads of exports, with a small
	// page cache: a scan of the whole log neither evicts the query
	// pool's working set nor grows the process by the pool's caches.
	scanner *sql.DB
	ids     *ident.Generator

	walFrames atomic.Int64       // WAL length seen by the last checkpoint
	actions   store.KnownActions // organization actions in org_actions
	queue     store.AppendQueue[string]
	loops     lifecycle.Group // the checkpointer and the expiry
	opened    bool
}

// NewDB returns a DB for the file at path. It does no I/O.
func NewDB(path string) *DB {
	return &DB{Path: path, ExportDir: filepath.Join(filepath.Dir(path), "exports"), Now: time.Now, MaxCommitEvents: store.DefaultMaxCommitEvents, RecentWindow: RecentWindow, ids: ident.NewGenerator()}
}

func (db *DB) dsn(readonly bool) string {
	return db.dsnFor(readonly, !readonly, CacheKiB)
}

// dsnFor returns the DSN of a connection: readonly ones set query_only;
// the writer takes its locks at BEGIN and leaves checkpoints to
// checkpointLoop.
func (db *DB) dsnFor(readonly, writer bool, cacheKiB int) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "cache_size(-"+strconv.Itoa(cacheKiB)+")")
	q.Add("_pragma", "temp_store(MEMORY)") // statement journals of multi-row inserts stay off disk
	q.Add("_time_format", "sqlite")
	if readonly {
		q.Add("_pragma", "query_only(1)")
	}
	if writer {
		q.Add("_txlock", "immediate")
		// Checkpoints run in the background (checkpointLoop), not in the
		// commit path of whichever transaction crosses the threshold.
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	return "file:" + db.Path + "?" + q.Encode()
}

// Open opens the database, runs migrations and starts the committer.
// It refuses a database whose schema is newer than this binary.
func (db *DB) Open(ctx context.Context) (err error) {
	if db.Path == "" {
		return errors.New("sqlite: path required")
	}
	if db.writer, err = sql.Open("sqlite", db.dsn(false)); err != nil {
		return fmt.Errorf("open writer: %w", err)
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetConnMaxIdleTime(0)
	// The page size applies only to a new file, before WAL mode is on.
	if _, err := db.writer.ExecContext(ctx, `PRAGMA page_size = `+strconv.Itoa(PageSize)); err != nil {
		db.writer.Close()
		return fmt.Errorf("page size: %w", err)
	}
	if _, err := db.writer.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
		db.writer.Close()
		return fmt.Errorf("journal mode: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.writer.Close()
		return err
	}
	if err := db.fillLeafHashes(ctx); err != nil {
		db.writer.Close()
		return err
	}
	if db.reader, err = sql.Open("sqlite", db.dsn(true)); err != nil {
		db.writer.Close()
		return fmt.Errorf("open reader: %w", err)
	}
	n := max(4, runtime.NumCPU()*2)
	db.reader.SetMaxOpenConns(n)
	db.reader.SetMaxIdleConns(n)
	if db.scanner, err = sql.Open("sqlite", db.dsnFor(true, false, ScanCacheKiB)); err != nil {
		db.reader.Close()
		db.writer.Close()
		return fmt.Errorf("open scanner: %w", err)
	}
	db.scanner.SetMaxOpenConns(2)
	db.scanner.SetMaxIdleConns(2)
	// One committer: SQLite has one writer.
	store.StartAppends(&db.queue, 1, db.MaxCommitEvents, db.commit, &db.OnCommit, db.restartWAL)
	db.loops.Start(context.Background(), db.checkpointLoop, db.expiryLoop)
	db.opened = true
	return nil
}

// ExpiryInterval is how often expired de-duplication entries are deleted.
const ExpiryInterval = time.Minute

// expiryLoop deletes de-duplication entries and stored responses older than
// the idempotency window, in small batches so that commits are not held up.
func (db *DB) expiryLoop(ctx context.Context) {
	t := time.NewTicker(ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := db.expire(ctx); err != nil && ctx.Err() == nil {
				// Nothing is lost: the rows are past their use and the next
				// round deletes them.
				db.logger().Warn("expire idempotency keys", "err", err)
			}
		}
	}
}

// expireIdempotency deletes up to 5,000 de-duplication entries created
// before its argument. Its second bound is the partial index's (durable
// entries, which never expire, are not in idempotency_created: migration
// 0017), written as a literal so that SQLite matches it and uses the index.
var expireIdempotency = `DELETE FROM idempotency WHERE (organization_id, key_hash) IN
	(SELECT organization_id, key_hash FROM idempotency WHERE created_at < ? AND created_at < ` + strconv.FormatInt(trail.DurableDedupe, 10) + `
	ORDER BY created_at LIMIT 5000)`

// expire deletes what the idempotency window no longer covers.
func (db *DB) expire(ctx context.Context) error {
	cutoff := db.Now().Add(-trail.IdempotencyWindow).UnixNano()
	for _, q := range []string{
		expireIdempotency,
		`DELETE FROM idempotent_responses WHERE key_hash IN
			(SELECT key_hash FROM idempotent_responses WHERE created_at < ? ORDER BY created_at LIMIT 5000)`,
	} {
		for {
			if ctx.Err() != nil {
				return nil
			}
			res, err := db.writer.ExecContext(ctx, q, cutoff)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n < 5000 {
				break
			}
		}
	}
	return nil
}

// RestartWALFrames is the WAL length (in pages) past which the
// checkpointer restarts the WAL from its beginning.
const RestartWALFrames = 16384

// restartWAL copies the rest of a long WAL into the database and makes the
// next transaction write from the start of the WAL file, which keeps the
// file small. It runs on the writer between two commits, so no writer
// competes with it, and waits at most 100 ms for readers of old snapshots:
// ingestion never stalls behind a slow reader; the next round tries again.
func (db *DB) restartWAL() {
	if db.PassiveCheckpoints || db.walFrames.Load() < RestartWALFrames {
		return
	}
	db.walFrames.Store(0)
	ctx := context.Background()
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		db.logger().Warn("wal restart", "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 100`); err != nil {
		db.logger().Warn("wal restart", "err", err)
		return
	}
	var busy, frames, done int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &done); err != nil {
		db.logger().Warn("wal restart", "err", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 10000`); err != nil {
		// A writer without its busy timeout would fail under contention:
		// drop this connection so that the pool opens a fresh one.
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

func (db *DB) logger() *slog.Logger {
	if db.Logger != nil {
		return db.Logger
	}
	return slog.Default()
}

// CheckpointInterval is how often the background checkpointer copies the
// WAL into the database file.
const CheckpointInterval = 250 * time.Millisecond

// checkpointLoop checkpoints the WAL in the background so that commits do
// not pay for it. PASSIVE never blocks the writer or readers, but it cannot
// rewind the WAL while writes keep coming; the committer does that between
// two transactions once the WAL is long (restartWAL).
func (db *DB) checkpointLoop(ctx context.Context) {
	conn, err := sql.Open("sqlite", db.dsnFor(false, false, CacheKiB))
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	t := time.NewTicker(CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failed checkpoint loses nothing: the WAL keeps the data
			// and the next tick tries again. PASSIVE copies pages without
			// blocking anyone; once the WAL is large, RESTART also makes
			// the next writer start again at the front of the file, so
			// the WAL stays small and is overwritten rather than grown.
			var busy, frames, done int
			if err := conn.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
				// Nothing is lost (the WAL keeps the data), but a WAL that
				// is never checkpointed grows without bound: say so.
				db.logger().Warn("wal checkpoint failed", "err", err)
				continue
			}
			db.walFrames.Store(int64(frames))
		}
	}
}

// Close stops the committer after the queued appends and closes the
// database. It is safe to call more than once.
func (db *DB) Close() error {
	db.queue.Stop()
	db.loops.Stop()
	var errs []error
	if db.writer != nil && db.opened && !db.PassiveCheckpoints {
		// Leave a small WAL behind: fold it into the database file.
		if _, err := db.writer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			errs = append(errs, fmt.Errorf("final checkpoint: %w", err))
		}
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	if db.scanner != nil {
		errs = append(errs, db.scanner.Close())
	}
	if db.writer != nil {
		errs = append(errs, db.writer.Close())
	}
	return errors.Join(errs...)
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int { return len(store.Migrations(migrationFS)) }

// Migrate runs the migrations without starting anything else.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.writer.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names := store.Migrations(migrationFS)
	for i, name := range names {
		if err := db.migrateOne(ctx, i+1, name, len(names)); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies one migration unless it is applied. The version is
// read inside the migration's write transaction, so two processes that
// start together on a new file do not both apply it.
func (db *DB) migrateOne(ctx context.Context, version int, name string, known int) error {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > known {
		return trail.ErrSchemaNewer(current, known)
	}
	if version <= current {
		return nil
	}
	body, err := migrationFS.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, strings.TrimPrefix(name, "migrations/"), formatTime(db.Now())); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", name, err)
	}
	return nil
}

// fillLeafHashes computes the leaf hashes of events stored before
// migration 0007, from their stored JSON, in batches.
func (db *DB) fillLeafHashes(ctx context.Context) error {
	// Once done, it is not looked for again: finding no such row would
	// read the whole table at every start.
	var done int
	if err := db.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE name = 'leaf_hashes_filled'`).Scan(&done); err != nil {
		return err
	}
	if done > 0 {
		return nil
	}
	for {
		rows, err := db.writer.QueryContext(ctx, `SELECT seq, data FROM events WHERE leaf_hash IS NULL LIMIT 5000`)
		if err != nil {
			return fmt.Errorf("read events without leaf hash: %w", err)
		}
		var seqs []int64
		var hashes [][]byte
		for rows.Next() {
			var seq int64
			var data string
			if err := rows.Scan(&seq, &data); err != nil {
				rows.Close()
				return err
			}
			ev, err := store.DecodeEvent(data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("event seq %d: %w", seq, err)
			}
			h := ev.LeafHash()
			seqs, hashes = append(seqs, seq), append(hashes, h[:])
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(seqs) == 0 {
			_, err := db.writer.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('leaf_hashes_filled', '1') ON CONFLICT DO NOTHING`)
			return err
		}
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i := range seqs {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET leaf_hash = ? WHERE seq = ?`, hashes[i], seqs[i]); err != nil {
				tx.Rollback()
				return fmt.Errorf("store leaf hash: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t.UTC()
}

func parseTimePtr(s sql.NullString) *time.Time {
	if !s.Valid {
		return nil
	}
	t := parseTime(s.String)
	return &t
}

// interpretError translates driver errors at the boundary.
func interpretError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return trail.ErrNotFound()
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
			return trail.ErrAlreadyExists()
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED:
			return &trail.Error{Code: trail.EUNAVAILABLE, Message: "The database is busy; retry."}
		}
	}
	return err
}

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// Unavailable reports whether err is the database failing for a while
// rather than a mistake: the disk or file is full, the file cannot be
// written or read (I/O), or it is busy. A request that meets one is a 503
// with Retry-After (nothing it carried was made durable), and the same
// request later may succeed.
func Unavailable(err error) bool {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code of an extended one
	case sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED,
		sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_PROTOCOL:
		return true
	}
	return false
}
