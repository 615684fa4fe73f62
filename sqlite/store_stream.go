package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Log streams: times are Unix nanoseconds, and a free lease is 0.

const streamColumns = `s.organization_id, s.id, s.type, s.name, s.config, s.sealed, s.secret_fields, s.state, s.last_error,
	s.last_error_at, s.cursor, s.delivered, s.last_synced_at, s.retry_at, s.generation, s.claim, s.created_at, s.updated_at,
	(SELECT o.next_index FROM organizations o WHERE o.id = s.organization_id) - s.cursor`

func nsTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.Unix(0, v.Int64).UTC()
	return &t
}

func scanStream(row interface{ Scan(...any) error }) (*trail.Stream, error) {
	var s trail.Stream
	var config, fields, created, updated string
	var errAt, synced, retry sql.NullInt64
	if err := row.Scan(&s.OrganizationID, &s.ID, &s.Type, &s.Name, &config, &s.Sealed, &fields, &s.State, &s.LastError,
		&errAt, &s.Cursor, &s.Delivered, &synced, &retry, &s.Generation, &s.Claim, &created, &updated, &s.Lag); err != nil {
		return nil, noRows(err)
	}
	s.LastErrorAt, s.LastSyncedAt, s.RetryAt = nsTime(errAt), nsTime(synced), nsTime(retry)
	s.CreatedAt, s.UpdatedAt = parseTime(created), parseTime(updated)
	return &s, store.DecodeStream(&s, []byte(config), []byte(fields))
}

func (x *executor) StreamCount(ctx context.Context, orgID string) (int, error) {
	var n int
	err := x.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = ?`, orgID).Scan(&n)
	return n, interpretError(err)
}

func (x *executor) StreamInsert(ctx context.Context, st *trail.Stream) error {
	config, fields, err := store.EncodeStream(st)
	if err != nil {
		return err
	}
	_, err = x.exec(ctx, `INSERT INTO streams (organization_id, id, type, name, config, sealed, secret_fields, state, cursor, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, st.OrganizationID, st.ID, st.Type, st.Name, string(config), st.Sealed, string(fields),
		st.State, st.Cursor, formatTime(st.CreatedAt), formatTime(st.UpdatedAt))
	return err
}

func (x *executor) StreamGet(ctx context.Context, orgID, id string, lock bool) (*trail.Stream, error) {
	return scanStream(x.r().QueryRowContext(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = ? AND (? = '' OR s.organization_id = ?)`, id, orgID, orgID))
}

func (x *executor) StreamList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, error) {
	q, args := listQuery(`SELECT `+streamColumns+` FROM streams s WHERE (? = '' OR s.organization_id = ?)`, "s.id", []any{orgID, orgID}, f)
	rows, err := x.r().QueryContext(ctx, q, args...)
	return collect(rows, err, scanStream)
}

func (x *executor) StreamUpdate(ctx context.Context, st *trail.Stream, now time.Time) error {
	config, fields, err := store.EncodeStream(st)
	if err != nil {
		return err
	}
	_, err = x.exec(ctx, `UPDATE streams SET name = ?, config = ?, sealed = ?, secret_fields = ?, state = ?, cursor = ?,
		generation = generation + 1, retry_at = NULL, updated_at = ? WHERE organization_id = ? AND id = ?`,
		st.Name, string(config), st.Sealed, string(fields), st.State, st.Cursor, formatTime(now), st.OrganizationID, st.ID)
	return err
}

func (x *executor) StreamDelete(ctx context.Context, orgID, id string) error {
	_, err := x.exec(ctx, `DELETE FROM streams WHERE organization_id = ? AND id = ?`, orgID, id)
	return err
}

// StreamClaim takes the stream whose lease ended first; SQLite's single
// writer serializes claims. (SQLite's RETURNING cannot name the table's
// alias that the lag needs: the stream is read again.)
func (x *executor) StreamClaim(ctx context.Context, claim string, now, until time.Time) (*trail.Stream, error) {
	var org, id string
	err := x.w().QueryRowContext(ctx, `UPDATE streams SET claim = ?, lease_until = ?
		WHERE (organization_id, id) = (SELECT organization_id, id FROM streams WHERE state <> 'inactive' AND lease_until <= ? ORDER BY lease_until LIMIT 1)
		RETURNING organization_id, id`, claim, until.UnixNano(), now.UnixNano()).Scan(&org, &id)
	if err == sql.ErrNoRows {
		return nil, nil
	} else if err != nil {
		return nil, interpretError(err)
	}
	st, err := x.StreamGet(ctx, org, id, false)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted between the claim and the read: claim another.
		return x.StreamClaim(ctx, claim, now, until)
	}
	return st, err
}

func (x *executor) StreamRenew(ctx context.Context, orgID, id, claim string, until time.Time) (*trail.Stream, error) {
	ok, err := x.exec(ctx, `UPDATE streams SET lease_until = ? WHERE organization_id = ? AND id = ? AND claim = ?`, until.UnixNano(), orgID, id, claim)
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, store.ErrNotFound
	}
	return x.StreamGet(ctx, orgID, id, false)
}

// guarded runs an UPDATE that holds only for the holder of an unchanged
// stream, returning the organization's next index.
func (x *executor) guarded(ctx context.Context, g store.StreamGuard, set string, args ...any) (int64, error) {
	ok, err := x.exec(ctx, `UPDATE streams SET `+set+` WHERE organization_id = ? AND id = ? AND claim = ? AND generation = ?
		AND cursor = ? AND state <> 'inactive'`, append(args, g.OrganizationID, g.ID, g.Claim, g.Generation, g.Cursor)...)
	if err != nil {
		return 0, err
	} else if !ok {
		return 0, store.ErrNotFound
	}
	var head int64
	err = x.w().QueryRowContext(ctx, `SELECT next_index FROM organizations WHERE id = ?`, g.OrganizationID).Scan(&head)
	return head, noRows(err)
}

func (x *executor) StreamRecordDelivery(ctx context.Context, g store.StreamGuard, next int64, n int, now time.Time) (int64, error) {
	return x.guarded(ctx, g, `cursor = ?, delivered = delivered + ?, state = 'active', last_synced_at = ?, retry_at = NULL`, next, n, now.UnixNano())
}

func (x *executor) StreamRecordFailure(ctx context.Context, g store.StreamGuard, state, msg string, now, retryAt time.Time) error {
	_, err := x.guarded(ctx, g, `state = ?, last_error = ?, last_error_at = ?, retry_at = ?`, state, msg, now.UnixNano(), retryAt.UnixNano())
	return err
}

func (x *executor) StreamExists(ctx context.Context, orgID, id string) (bool, error) {
	var n int
	err := x.w().QueryRowContext(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = ? AND id = ?`, orgID, id).Scan(&n)
	return n > 0, interpretError(err)
}

func (x *executor) StreamRelease(ctx context.Context, orgID, id, claim string) error {
	_, err := x.exec(ctx, `UPDATE streams SET claim = '', lease_until = 0 WHERE organization_id = ? AND id = ? AND claim = ?`, orgID, id, claim)
	return err
}

func (x *executor) StreamReleaseNode(ctx context.Context, prefix string) (int, error) {
	res, err := x.w().ExecContext(ctx, `UPDATE streams SET claim = '', lease_until = 0 WHERE substr(claim, 1, ?) = ?`, len(prefix), prefix)
	if err != nil {
		return 0, interpretError(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
