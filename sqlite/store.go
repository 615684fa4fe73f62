package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Store is the database as Trail's services see it (store.Driver): each
// operation one statement or a few, in SQLite's dialect, with no rule of
// its own. The services (package service) hold the rules.
type Store struct{ executor }

// NewStore returns the Store of db. It does no I/O.
func NewStore(db *DB) *Store { return &Store{executor{db: db}} }

// EventService implements trail.EventService on SQLite.
type EventService struct{ db *DB }

// NewEventService returns an EventService on db.
func NewEventService(db *DB) *EventService { return &EventService{db: db} }

// LogStore implements trail.LogStore on SQLite.
type LogStore struct{ db *DB }

// NewLogStore returns a LogStore on db.
func NewLogStore(db *DB) *LogStore { return &LogStore{db: db} }

// ExportService is the part of exports SQLite does natively: claims of
// export jobs and their files in the export directory (DB.ExportDir).
// service.Exports creates and finds the jobs.
type ExportService struct{ db *DB }

// NewExportService returns an ExportService on db.
func NewExportService(db *DB) *ExportService { return &ExportService{db: db} }

// The driver's services, checked against what they implement.
var (
	_ store.Driver       = (*Store)(nil)
	_ trail.EventService = (*EventService)(nil)
	_ trail.LogStore     = (*LogStore)(nil)
	_ store.ExportJobs   = (*ExportService)(nil)
)

// Now is the database's clock.
func (s *Store) Now() time.Time { return s.db.Now() }

// InTx runs fn in one transaction of the single writer connection.
func (s *Store) InTx(ctx context.Context, fn func(store.Executor) error) error {
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback()
	if err := fn(&executor{db: s.db, tx: tx}); err != nil {
		return err
	}
	return interpretError(tx.Commit())
}

// querier is a connection pool or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// executor runs store operations in tx, or outside one on the read pool
// and the writer.
type executor struct {
	db *DB
	tx *sql.Tx
}

func (x *executor) r() querier {
	if x.tx != nil {
		return x.tx
	}
	return x.db.reader
}

func (x *executor) w() querier {
	if x.tx != nil {
		return x.tx
	}
	return x.db.writer
}

// exec runs a statement that writes, and reports whether it changed a row.
func (x *executor) exec(ctx context.Context, q string, args ...any) (bool, error) {
	res, err := x.w().ExecContext(ctx, q, args...)
	if err != nil {
		return false, interpretError(err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// noRows turns sql.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return interpretError(err)
}

// collect scans every row of a query.
func collect[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// AppendOwn appends one own event in the transaction (or in one of its
// own).
func (x *executor) AppendOwn(ctx context.Context, orgID string, ev *trail.EventInput) error {
	if x.tx == nil {
		return NewStore(x.db).InTx(ctx, func(e store.Executor) error { return e.AppendOwn(ctx, orgID, ev) })
	}
	return x.db.appendOwn(ctx, x.tx, orgID, ev)
}

// Organizations.

const orgColumns = `id, name, retention_days, created_at, updated_at`

func scanOrg(row interface{ Scan(...any) error }) (*trail.Organization, error) {
	var o trail.Organization
	var created, updated string
	if err := row.Scan(&o.ID, &o.Name, &o.RetentionDays, &created, &updated); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = parseTime(created), parseTime(updated)
	return &o, nil
}

func (x *executor) OrganizationInsert(ctx context.Context, org *trail.Organization) error {
	_, err := x.exec(ctx, `INSERT INTO organizations (id, name, retention_days, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		org.ID, org.Name, org.RetentionDays, formatTime(org.CreatedAt), formatTime(org.UpdatedAt))
	return err
}

func (x *executor) OrganizationGet(ctx context.Context, id string, lock bool) (*trail.Organization, error) {
	o, err := scanOrg(x.r().QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = ?`, id))
	return o, noRows(err)
}

func (x *executor) OrganizationList(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, error) {
	where, args := "1 = 1", []any{}
	if ids != nil {
		where = "id IN (" + placeholders(len(ids)) + ")"
		if len(ids) == 0 {
			where = "0 = 1"
		}
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q, args := listQuery(`SELECT `+orgColumns+` FROM organizations WHERE `+where, "id", args, f)
	rows, err := x.r().QueryContext(ctx, q, args...)
	return collect(rows, err, scanOrg)
}

func (x *executor) OrganizationSetRetention(ctx context.Context, id string, days int, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE organizations SET retention_days = ?, updated_at = ? WHERE id = ?`, days, formatTime(now), id)
	return err
}

func (x *executor) OrganizationNextIndex(ctx context.Context, id string) (int64, error) {
	var n int64
	err := x.r().QueryRowContext(ctx, `SELECT next_index FROM organizations WHERE id = ?`, id).Scan(&n)
	return n, noRows(err)
}

// API keys.

const keyColumns = `id, organization_id, name, permissions, rate_limit, created_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }, extra ...any) (*trail.APIKey, error) {
	var k trail.APIKey
	var perms, created string
	var revoked sql.NullString
	var rl sql.NullInt64
	dest := append([]any{&k.ID, &k.OrganizationID, &k.Name, &perms, &rl, &created, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &k.Permissions); err != nil {
		return nil, fmt.Errorf("decode permissions: %w", err)
	}
	if rl.Valid {
		n := int(rl.Int64)
		k.RateLimit = &n
	}
	k.CreatedAt = parseTime(created)
	k.RevokedAt = parseTimePtr(revoked)
	return &k, nil
}

func (x *executor) APIKeyInsert(ctx context.Context, k *trail.APIKey, prefix string, hash [32]byte) error {
	perms, _ := json.Marshal(k.Permissions)
	var rl any
	if k.RateLimit != nil {
		rl = *k.RateLimit
	}
	_, err := x.exec(ctx, `INSERT INTO api_keys (id, organization_id, name, permissions, prefix, secret_hash, rate_limit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.OrganizationID, k.Name, string(perms), prefix, hash[:], rl, formatTime(k.CreatedAt))
	return err
}

func (x *executor) APIKeyGet(ctx context.Context, id string, lock bool) (*trail.APIKey, error) {
	k, err := scanKey(x.r().QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	return k, noRows(err)
}

func (x *executor) APIKeyList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, error) {
	where, args := "1 = 1", []any{}
	if orgID != "" {
		where, args = "organization_id = ?", []any{orgID}
	}
	q, args := listQuery(`SELECT `+keyColumns+` FROM api_keys WHERE `+where, "id", args, f)
	rows, err := x.r().QueryContext(ctx, q, args...)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (*trail.APIKey, error) { return scanKey(r) })
}

func (x *executor) APIKeySetRevoked(ctx context.Context, id string, at time.Time) error {
	_, err := x.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, formatTime(at), id)
	return err
}

func (x *executor) APIKeysByPrefix(ctx context.Context, prefix string) ([]store.KeyHash, error) {
	rows, err := x.r().QueryContext(ctx, `SELECT `+keyColumns+`, secret_hash FROM api_keys WHERE prefix = ?`, prefix)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (store.KeyHash, error) {
		var kh store.KeyHash
		var err error
		kh.Key, err = scanKey(r, &kh.Hash)
		return kh, err
	})
}
