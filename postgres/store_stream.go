package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Log streams: a free lease is '-infinity'.

// streamColumns are read from streams s joined with its organization o
// (streamsJoined), for the lag. A join on the organization, not a
// subquery: Citus routes it to one shard, and may lock s in it.
const streamColumns = `s.organization_id, s.id, s.type, s.name, s.config, s.sealed, s.secret_fields, s.state, s.last_error,
	s.last_error_at, s.cursor, s.delivered, s.last_synced_at, s.retry_at, s.generation, s.claim, s.created_at, s.updated_at,
	o.next_index - s.cursor`

const streamsJoined = `streams s JOIN organizations o ON o.id = s.organization_id`

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func scanStream(row pgx.Row) (*trail.Stream, error) {
	var s trail.Stream
	var config, fields []byte
	if err := row.Scan(&s.OrganizationID, &s.ID, &s.Type, &s.Name, &config, &s.Sealed, &fields, &s.State, &s.LastError,
		&s.LastErrorAt, &s.Cursor, &s.Delivered, &s.LastSyncedAt, &s.RetryAt, &s.Generation, &s.Claim, &s.CreatedAt, &s.UpdatedAt, &s.Lag); err != nil {
		return nil, noRows(err)
	}
	s.LastErrorAt, s.LastSyncedAt, s.RetryAt = utcPtr(s.LastErrorAt), utcPtr(s.LastSyncedAt), utcPtr(s.RetryAt)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, store.DecodeStream(&s, config, fields)
}

func (x *executor) StreamCount(ctx context.Context, orgID string) (int, error) {
	var n int
	err := x.q().QueryRow(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = $1`, orgID).Scan(&n)
	return n, interpretError(err)
}

func (x *executor) StreamInsert(ctx context.Context, st *trail.Stream) error {
	config, fields, err := store.EncodeStream(st)
	if err != nil {
		return err
	}
	_, err = x.exec(ctx, `INSERT INTO streams (organization_id, id, type, name, config, sealed, secret_fields, state, cursor, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, st.OrganizationID, st.ID, st.Type, st.Name, string(config), st.Sealed, string(fields),
		st.State, st.Cursor, st.CreatedAt, st.UpdatedAt)
	return err
}

func (x *executor) StreamGet(ctx context.Context, orgID, id string, lock bool) (*trail.Stream, error) {
	if lock {
		return scanStream(x.q().QueryRow(ctx, `SELECT `+streamColumns+` FROM streams s JOIN organizations o ON o.id = s.organization_id
			WHERE s.organization_id = $1 AND s.id = $2`+x.forUpdate(lock)+` OF s`, orgID, id))
	}
	return scanStream(x.q().QueryRow(ctx, `SELECT `+streamColumns+` FROM `+streamsJoined+` WHERE s.id = $1 AND ($2 = '' OR s.organization_id = $2)`, id, orgID))
}

func (x *executor) StreamList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, error) {
	q, args := listQuery(`SELECT `+streamColumns+` FROM `+streamsJoined+` WHERE ($1 = '' OR s.organization_id = $1)`, "s.id", []any{orgID}, f)
	rows, err := x.q().Query(ctx, q, args...)
	return collectRows(rows, err, scanStream)
}

func (x *executor) StreamUpdate(ctx context.Context, st *trail.Stream, now time.Time) error {
	config, fields, err := store.EncodeStream(st)
	if err != nil {
		return err
	}
	_, err = x.exec(ctx, `UPDATE streams SET name = $1, config = $2, sealed = $3, secret_fields = $4, state = $5, cursor = $6,
		generation = generation + 1, retry_at = NULL, updated_at = $7 WHERE organization_id = $8 AND id = $9`,
		st.Name, string(config), st.Sealed, string(fields), st.State, st.Cursor, now, st.OrganizationID, st.ID)
	return err
}

func (x *executor) StreamDelete(ctx context.Context, orgID, id string) error {
	_, err := x.exec(ctx, `DELETE FROM streams WHERE organization_id = $1 AND id = $2`, orgID, id)
	return err
}

// StreamClaim takes the stream whose lease ended first, as ClaimExport
// takes an export (claim): the UPDATE holds only while its lease is over.
func (x *executor) StreamClaim(ctx context.Context, holder string, now, until time.Time) (*trail.Stream, error) {
	var st *trail.Stream
	err := claim(ctx, x.q(), `SELECT organization_id, id FROM streams WHERE state <> 'inactive' AND lease_until <= $1 ORDER BY lease_until LIMIT $2`, now,
		func(org, id string) (err error) {
			st, err = scanStream(x.q().QueryRow(ctx, `UPDATE streams s SET claim = $1, lease_until = $2 FROM organizations o
				WHERE o.id = s.organization_id AND s.organization_id = $4 AND s.id = $5 AND s.state <> 'inactive' AND s.lease_until <= $3
				RETURNING `+streamColumns, holder, until, now, org, id))
			return err
		})
	if err != nil {
		return nil, interpretError(err)
	}
	return st, nil
}

func (x *executor) StreamRenew(ctx context.Context, orgID, id, claim string, until time.Time) (*trail.Stream, error) {
	return scanStream(x.q().QueryRow(ctx, `UPDATE streams s SET lease_until = $1 FROM organizations o
		WHERE o.id = s.organization_id AND s.organization_id = $2 AND s.id = $3 AND s.claim = $4
		RETURNING `+streamColumns, until, orgID, id, claim))
}

// guarded runs an UPDATE that holds only for the holder of an unchanged
// stream; the guard is the last five parameters.
func (x *executor) guarded(ctx context.Context, g store.StreamGuard, set string, args ...any) (int64, error) {
	n := len(args)
	var head int64
	err := x.q().QueryRow(ctx, `UPDATE streams s SET `+set+fmt.Sprintf(` FROM organizations o WHERE o.id = s.organization_id
		AND s.organization_id = $%d AND s.id = $%d AND s.claim = $%d AND s.generation = $%d AND s.cursor = $%d AND s.state <> 'inactive'
		RETURNING o.next_index`, n+1, n+2, n+3, n+4, n+5),
		append(args, g.OrganizationID, g.ID, g.Claim, g.Generation, g.Cursor)...).Scan(&head)
	return head, noRows(err)
}

func (x *executor) StreamRecordDelivery(ctx context.Context, g store.StreamGuard, next int64, n int, now time.Time) (int64, error) {
	return x.guarded(ctx, g, `cursor = $1, delivered = delivered + $2, state = 'active', last_synced_at = $3, retry_at = NULL`, next, n, now)
}

func (x *executor) StreamRecordFailure(ctx context.Context, g store.StreamGuard, state, msg string, now, retryAt time.Time) error {
	_, err := x.guarded(ctx, g, `state = $1, last_error = $2, last_error_at = $3, retry_at = $4`, state, msg, now, retryAt)
	return err
}

func (x *executor) StreamExists(ctx context.Context, orgID, id string) (bool, error) {
	var ok bool
	err := x.q().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM streams WHERE organization_id = $1 AND id = $2)`, orgID, id).Scan(&ok)
	return ok, interpretError(err)
}

func (x *executor) StreamRelease(ctx context.Context, orgID, id, claim string) error {
	_, err := x.exec(ctx, `UPDATE streams SET claim = '', lease_until = '-infinity' WHERE organization_id = $1 AND id = $2 AND claim = $3`, orgID, id, claim)
	return err
}

func (x *executor) StreamReleaseNode(ctx context.Context, prefix string) (int, error) {
	tag, err := x.q().Exec(ctx, `UPDATE streams SET claim = '', lease_until = '-infinity' WHERE left(claim, $1) = $2`, len(prefix), prefix)
	if err != nil {
		return 0, interpretError(err)
	}
	return int(tag.RowsAffected()), nil
}
