package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/internal/lifecycle"
	"github.com/trail-audit/trail/store"
)

// Defaults of the group committers (groupcommit has the queue's) and the
// maintenance task.
const (
	// DefaultCommitters is how many group commits a node runs at once.
	// Commits of different organizations proceed in parallel; commits of
	// one organization wait for each other on its head row.
	DefaultCommitters = 2
	// PartitionsAhead is how many monthly partitions beyond the current
	// one the maintenance task keeps ready.
	PartitionsAhead = 2
	// MaintenanceInterval is how often partitions are created ahead and
	// expired de-duplication entries deleted.
	MaintenanceInterval = time.Hour
	// ExpiryInterval is how often expired de-duplication entries are
	// deleted.
	ExpiryInterval = time.Minute
)

// DB is a Trail database on PostgreSQL. Several DBs, in several
// processes, may share one database.
type DB struct {
	// URL is the connection string (postgres://…). A search_path parameter
	// selects the schema.
	URL string
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// MaxCommitEvents bounds one group commit.
	MaxCommitEvents int
	// Committers is how many group commits run at once.
	Committers int
	// MaxConns bounds the connection pool (default 4 × GOMAXPROCS, at least 8).
	MaxConns int32
	// Logger receives what background tasks cannot return.
	Logger *slog.Logger
	// RecentWindow and SearchWindow: see the constants of those names.
	RecentWindow, SearchWindow int
	// OnCommit, if set, is called after each group commit with the number
	// of events and requests it held and how long it took.
	OnCommit func(events, requests int, d time.Duration)

	pool  *pgxpool.Pool
	ids   *ident.Generator
	citus bool // the database is distributed by Citus (citus.go)
	// citusCopyAt is the number of events from which a commit on Citus
	// writes its rows with COPY (see appender.flush).
	citusCopyAt int

	monthsMu sync.Mutex // monthsMu guards months
	// months holds the months whose partitions are known to exist.
	months map[time.Time]bool

	actions store.KnownActions // organization actions in org_actions

	queue    store.AppendQueue[pgtype.TSVector]
	loops    lifecycle.Group // partition maintenance and expiry
	stopOnce sync.Once
}

// citusCopyAt is the default of DB.citusCopyAt. Measured by
// BenchmarkAppendRows_Citus (BENCHMARKS.md, 2026-12-06): a commit of 1 or
// 4 events takes 58 % and 74 % of the time as VALUES, 16 events about the
// same either way, 64 and 256 events 69 % and 61 % with COPY.
const citusCopyAt = 16

// NewDB returns a DB for the database at url. It does no I/O.
func NewDB(url string) *DB {
	return &DB{URL: url, Now: time.Now, MaxCommitEvents: store.DefaultMaxCommitEvents, Committers: DefaultCommitters,
		RecentWindow: RecentWindow, SearchWindow: SearchWindow, ids: ident.NewGenerator(), citusCopyAt: citusCopyAt}
}

// Open connects, runs migrations under an advisory lock, makes sure the
// current partitions exist and starts the committers and the maintenance
// task. It refuses a database whose schema is newer than this binary.
func (db *DB) Open(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	if db.MaxConns > 0 {
		cfg.MaxConns = db.MaxConns
	} else if !strings.Contains(db.URL, "pool_max_conns") {
		cfg.MaxConns = max(8, cfg.MaxConns*4)
	}
	// A success means the commit is flushed to disk, whatever the
	// server's or the role's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	// Trail's statements are short, index-driven reads and writes; JIT
	// compilation, which PostgreSQL starts from cost estimates, would
	// spend 100 ms and more on a query that runs in a few.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if db.citus, err = detectCitus(ctx, db.pool); err != nil {
		db.pool.Close()
		return fmt.Errorf("connect: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.pool.Close()
		return err
	}
	if err := db.fillLeafHashes(ctx); err != nil {
		db.pool.Close()
		return err
	}
	if err := db.ensurePartitions(ctx, db.Now()); err != nil {
		db.pool.Close()
		return err
	}
	if db.Committers <= 0 {
		db.Committers = DefaultCommitters
	}
	store.StartAppends(&db.queue, db.Committers, db.MaxCommitEvents, db.commit, &db.OnCommit, nil)
	db.loops.Start(context.Background(), db.maintenanceLoop)
	return nil
}

// Close stops the committers after the queued appends and closes the
// pool. It is safe to call more than once.
func (db *DB) Close() error {
	db.queue.Stop()
	db.loops.Stop()
	db.stopOnce.Do(func() {
		if db.pool != nil {
			db.pool.Close()
		}
	})
	return nil
}

func (db *DB) logger() *slog.Logger {
	if db.Logger != nil {
		return db.Logger
	}
	return slog.Default()
}

// maintenanceLoop creates partitions ahead and deletes expired
// de-duplication entries. Every node runs it; the work is idempotent and
// partition creation takes an advisory lock.
func (db *DB) maintenanceLoop(ctx context.Context) {
	expiry := time.NewTicker(ExpiryInterval)
	defer expiry.Stop()
	parts := time.NewTicker(MaintenanceInterval)
	defer parts.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-parts.C:
			if err := db.ensurePartitions(ctx, db.Now()); err != nil && ctx.Err() == nil {
				// Nothing is lost yet: partitions are made two months
				// ahead, and the next round tries again. Say so loudly.
				db.logger().Error("create partitions", "err", err)
			}
		case <-expiry.C:
			if err := db.expire(ctx); err != nil && ctx.Err() == nil {
				// The rows are past their use; the next round deletes them.
				db.logger().Warn("expire idempotency keys", "err", err)
			}
		}
	}
}

// partitioned are the tables partitioned by received_at.
var partitioned = []string{"events", "event_targets"}

// ensurePartitions makes sure the monthly partitions from the month of now
// to PartitionsAhead months later exist.
func (db *DB) ensurePartitions(ctx context.Context, now time.Time) error {
	month := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	if err := db.createPartitions(ctx, month); err != nil {
		return err
	}
	db.monthsMu.Lock()
	defer db.monthsMu.Unlock()
	if db.months == nil {
		db.months = map[time.Time]bool{}
	}
	for i := 0; i <= PartitionsAhead; i++ {
		db.months[month.AddDate(0, i, 0)] = true
	}
	return nil
}

// ensureMonth makes sure the partitions of now's month exist before a
// transaction that records one of Trail's own events; it costs nothing
// once the month is known.
func (db *DB) ensureMonth(ctx context.Context, now time.Time) error {
	db.monthsMu.Lock()
	known := db.months[time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)]
	db.monthsMu.Unlock()
	if known {
		return nil
	}
	return db.ensurePartitions(ctx, now)
}

// createPartitions creates the partitions from month to PartitionsAhead
// months later that are missing. A partition is made as a table of its own
// and then attached: ATTACH PARTITION takes a lock on the parent that lets
// reads and writes go on (CREATE TABLE … PARTITION OF would block them),
// and lock_timeout bounds the wait for other DDL.
func (db *DB) createPartitions(ctx context.Context, month time.Time) error {
	type part struct {
		table string
		month time.Time
	}
	var missing []part
	for i := 0; i <= PartitionsAhead; i++ {
		m := month.AddDate(0, i, 0)
		for _, t := range partitioned {
			attached, err := db.partitionAttached(ctx, db.pool, partitionName(t, m))
			if err != nil {
				return fmt.Errorf("partitions: %w", err)
			}
			if !attached {
				missing = append(missing, part{t, m})
			}
		}
	}
	for _, p := range missing {
		name := partitionName(p.table, p.month)
		err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			// Nodes that start together create each partition once.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7357, hashtext(current_schema() || '.partitions'))`); err != nil {
				return err
			}
			if attached, err := db.partitionAttached(ctx, tx, name); err != nil || attached {
				return err
			}
			if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`, name, p.table)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
				p.table, name, p.month.Format("2006-01-02 15:04:05Z07:00"), p.month.AddDate(0, 1, 0).Format("2006-01-02 15:04:05Z07:00")))
			return err
		})
		if err != nil {
			return fmt.Errorf("create partition %s: %w", name, err)
		}
	}
	return nil
}

// partitionAttached reports whether the table exists as a partition.
func (db *DB) partitionAttached(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass($1))`, name).Scan(&ok)
	return ok, err
}

func partitionName(table string, month time.Time) string {
	return table + "_p" + month.Format("200601")
}

// expire deletes what the idempotency window no longer covers, in small
// batches.
func (db *DB) expire(ctx context.Context) error {
	cutoff := db.Now().Add(-trail.IdempotencyWindow).UnixNano()
	if db.citus {
		// A row lock on every shard is refused: each worker deletes its
		// shards' expired rows in one statement (a minute's worth, as the
		// expiry runs every minute).
		for _, table := range []string{"idempotency", "idempotent_responses"} {
			if _, err := db.pool.Exec(ctx, `DELETE FROM `+table+` WHERE created_at < $1`, cutoff); err != nil {
				return err
			}
		}
		return nil
	}
	for _, q := range []string{
		// No row lock: nodes that expire at once delete a row once (the
		// second waits for the first and then finds it gone).
		`DELETE FROM idempotency WHERE ctid = ANY (ARRAY (SELECT ctid FROM idempotency WHERE created_at < $1 LIMIT 5000))`,
		`DELETE FROM idempotent_responses WHERE ctid = ANY (ARRAY (SELECT ctid FROM idempotent_responses WHERE created_at < $1 ORDER BY created_at LIMIT 5000))`,
	} {
		for {
			if ctx.Err() != nil {
				return nil
			}
			tag, err := db.pool.Exec(ctx, q, cutoff)
			if err != nil {
				return err
			}
			if tag.RowsAffected() < 5000 {
				break
			}
		}
	}
	return nil
}

// fillLeafHashes computes the leaf hashes of events stored before
// migration 0002, from their stored JSON, in batches.
func (db *DB) fillLeafHashes(ctx context.Context) error {
	// Once done, it is not looked for again: finding no such row would
	// read the whole table at every start.
	var done bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM settings WHERE name = 'leaf_hashes_filled')`).Scan(&done); err != nil {
		return err
	}
	if done {
		return nil
	}
	for {
		rows, err := db.pool.Query(ctx, `SELECT organization_id, idx, received_at, data FROM events WHERE leaf_hash IS NULL LIMIT 5000`)
		if err != nil {
			return fmt.Errorf("read events without leaf hash: %w", err)
		}
		b := &pgx.Batch{}
		for rows.Next() {
			var org, data string
			var idx int64
			var received time.Time
			if err := rows.Scan(&org, &idx, &received, &data); err != nil {
				rows.Close()
				return err
			}
			ev, err := store.DecodeEvent(data)
			if err != nil {
				rows.Close()
				return fmt.Errorf("event %d of %s: %w", idx, org, err)
			}
			h := ev.LeafHash()
			b.Queue(`UPDATE events SET leaf_hash = $1 WHERE organization_id = $2 AND idx = $3 AND received_at = $4`, h[:], org, idx, received)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if b.Len() == 0 {
			_, err := db.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('leaf_hashes_filled', '1') ON CONFLICT DO NOTHING`)
			return err
		}
		if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store leaf hashes: %w", err)
		}
	}
}

//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int { return len(store.Migrations(migrationFS)) }

// migrate applies the migrations that are missing, holding an advisory
// lock so that nodes starting together apply each one once.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	lock := `hashtext(current_schema() || '.migrations')`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7357, `+lock+`)`); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7357, `+lock+`)`)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names := store.Migrations(migrationFS)
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(names) {
		return trail.ErrSchemaNewer(current, len(names))
	}
	for i, name := range names {
		version := i + 1
		if version <= current {
			continue
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if db.citus {
				if err := citusSequential(ctx, tx); err != nil {
					return err
				}
			}
			for _, stmt := range statements(string(body)) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			if db.citus {
				if err := distribute(ctx, tx, version); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())`,
				version, strings.TrimPrefix(name, "migrations/"))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	if !db.citus {
		return nil
	}
	// A database moved from plain PostgreSQL to Citus has its tables
	// distributed here, once (docs/SCALING.md).
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := citusSequential(ctx, tx); err != nil {
			return err
		}
		return distribute(ctx, tx, len(names))
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// statements splits a migration into its statements, each run on its own:
// Citus propagates a DDL statement to the workers by its text, and refuses
// one that came in a string of several. A statement ends with a line that
// ends in ";" (before any "--" comment), outside a $$ block.
func statements(body string) []string {
	var out []string
	var cur strings.Builder
	dollar := false
	for _, line := range strings.SplitAfter(body, "\n") {
		cur.WriteString(line)
		if strings.Count(line, "$$")%2 == 1 {
			dollar = !dollar
		}
		code, _, _ := strings.Cut(line, "--")
		if !dollar && strings.HasSuffix(strings.TrimSpace(code), ";") {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, cur.String())
	}
	return out
}

// interpretError translates driver errors at the boundary.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return trail.ErrNotFound()
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return trail.ErrAlreadyExists()
		case "40001", "40P01": // serialization failure, deadlock
			return &trail.Error{Code: trail.EUNAVAILABLE, Message: "The database is busy; retry."}
		}
	}
	return err
}

// Unavailable reports whether err is the database being out of reach for
// a while rather than a mistake: no connection (refused, reset, closed),
// the server shutting down, starting or out of connections, or a failover.
// A request that meets one is a 503 with Retry-After (nothing it carried
// was committed, or pgx would have said so), and the same request later
// may succeed: the pool reconnects by itself.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin or crash shutdown, cannot connect now
			pe.Code == "53300", // too many connections
			pe.Code == "25006": // read only transaction: a standby after a failover
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed")
}
