package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Store is the database as Trail's services see it (store.Driver): each
// operation one statement or a few, in PostgreSQL's dialect, with no rule
// of its own. The services (package service) hold the rules.
type Store struct{ executor }

// NewStore returns the Store of db. It does no I/O.
func NewStore(db *DB) *Store { return &Store{executor{db: db}} }

// EventService implements trail.EventService on PostgreSQL.
type EventService struct{ db *DB }

// NewEventService returns an EventService on db.
func NewEventService(db *DB) *EventService { return &EventService{db: db} }

// LogStore implements trail.LogStore on PostgreSQL.
type LogStore struct{ db *DB }

// NewLogStore returns a LogStore on db.
func NewLogStore(db *DB) *LogStore { return &LogStore{db: db} }

// ExportService is the part of exports PostgreSQL does natively: claims
// of export jobs and their files, stored in the database so that every
// node can serve them (SPEC §11). service.Exports creates and finds the
// jobs.
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

// Now is the database's clock, at the precision of timestamptz.
func (s *Store) Now() time.Time { return s.db.now() }

// InTx runs fn in one transaction. The month's partitions, where an own
// event appended in it goes, are made sure of first.
func (s *Store) InTx(ctx context.Context, fn func(store.Executor) error) error {
	if err := s.db.ensureMonth(ctx, s.db.now()); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error { return fn(&executor{db: s.db, tx: tx}) })
}

// querier is the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// executor runs store operations in tx, or on the pool outside one.
type executor struct {
	db *DB
	tx pgx.Tx
}

func (x *executor) q() querier {
	if x.tx != nil {
		return x.tx
	}
	return x.db.pool
}

// forUpdate is the row lock of a read in a transaction.
func (x *executor) forUpdate(lock bool) string {
	if lock && x.tx != nil {
		return " FOR UPDATE"
	}
	return ""
}

func (x *executor) exec(ctx context.Context, q string, args ...any) (bool, error) {
	tag, err := x.q().Exec(ctx, q, args...)
	if err != nil {
		return false, interpretError(err)
	}
	return tag.RowsAffected() > 0, nil
}

// noRows turns pgx.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return interpretError(err)
}

// collectRows scans every row of a query.
func collectRows[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, interpretError(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
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

func scanOrg(row pgx.Row) (*trail.Organization, error) {
	var o trail.Organization
	if err := row.Scan(&o.ID, &o.Name, &o.RetentionDays, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, noRows(err)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return &o, nil
}

func (x *executor) OrganizationInsert(ctx context.Context, org *trail.Organization) error {
	_, err := x.exec(ctx, `INSERT INTO organizations (id, name, retention_days, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		org.ID, org.Name, org.RetentionDays, org.CreatedAt, org.UpdatedAt)
	return err
}

func (x *executor) OrganizationGet(ctx context.Context, id string, lock bool) (*trail.Organization, error) {
	return scanOrg(x.q().QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`+x.forUpdate(lock), id))
}

func (x *executor) OrganizationList(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, error) {
	where, args := "true", []any{}
	if ids != nil {
		where, args = "id = ANY($1)", []any{ids}
	}
	q, args := listQuery(`SELECT `+orgColumns+` FROM organizations WHERE `+where, "id", args, f)
	rows, err := x.q().Query(ctx, q, args...)
	return collectRows(rows, err, scanOrg)
}

func (x *executor) OrganizationSetRetention(ctx context.Context, id string, days int, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE organizations SET retention_days = $1, updated_at = $2 WHERE id = $3`, days, now, id)
	return err
}

func (x *executor) OrganizationNextIndex(ctx context.Context, id string) (int64, error) {
	var n int64
	err := x.q().QueryRow(ctx, `SELECT next_index FROM organizations WHERE id = $1`, id).Scan(&n)
	return n, noRows(err)
}

// API keys.

const keyColumns = `id, organization_id, name, permissions, rate_limit, created_at, revoked_at`

func scanKey(row pgx.Row, extra ...any) (*trail.APIKey, error) {
	var k trail.APIKey
	var perms string
	dest := append([]any{&k.ID, &k.OrganizationID, &k.Name, &perms, &k.RateLimit, &k.CreatedAt, &k.RevokedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, noRows(err)
	}
	if err := json.Unmarshal([]byte(perms), &k.Permissions); err != nil {
		return nil, fmt.Errorf("decode permissions: %w", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

func (x *executor) APIKeyInsert(ctx context.Context, k *trail.APIKey, prefix string, hash [32]byte) error {
	perms, _ := json.Marshal(k.Permissions)
	_, err := x.exec(ctx, `INSERT INTO api_keys (organization_id, id, name, permissions, prefix, secret_hash, rate_limit, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.OrganizationID, k.ID, k.Name, string(perms), prefix, hash[:], k.RateLimit, k.CreatedAt)
	return err
}

func (x *executor) APIKeyGet(ctx context.Context, id string, lock bool) (*trail.APIKey, error) {
	return scanKey(x.q().QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`+x.forUpdate(lock), id))
}

func (x *executor) APIKeyList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, error) {
	where, args := "true", []any{}
	if orgID != "" {
		where, args = "organization_id = $1", []any{orgID}
	}
	q, args := listQuery(`SELECT `+keyColumns+` FROM api_keys WHERE `+where, "id", args, f)
	rows, err := x.q().Query(ctx, q, args...)
	return collectRows(rows, err, func(r pgx.Row) (*trail.APIKey, error) { return scanKey(r) })
}

func (x *executor) APIKeySetRevoked(ctx context.Context, id string, at time.Time) error {
	_, err := x.exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, at, id)
	return err
}

func (x *executor) APIKeysByPrefix(ctx context.Context, prefix string) ([]store.KeyHash, error) {
	rows, err := x.q().Query(ctx, `SELECT `+keyColumns+`, secret_hash FROM api_keys WHERE prefix = $1`, prefix)
	return collectRows(rows, err, func(r pgx.Row) (store.KeyHash, error) {
		var kh store.KeyHash
		var err error
		kh.Key, err = scanKey(r, &kh.Hash)
		return kh, err
	})
}
