package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// StreamService stores log streams and their delivery progress.
type StreamService struct {
	db *DB
}

var _ trail.StreamService = (*StreamService)(nil)

// NewStreamService returns a StreamService on db.
func NewStreamService(db *DB) *StreamService { return &StreamService{db: db} }

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

func nsValue(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func scanStream(row interface{ Scan(...any) error }) (*trail.Stream, error) {
	var s trail.Stream
	var config, fields, created, updated string
	var errAt, synced, retry sql.NullInt64
	if err := row.Scan(&s.OrganizationID, &s.ID, &s.Type, &s.Name, &config, &s.Sealed, &fields, &s.State, &s.LastError,
		&errAt, &s.Cursor, &s.Delivered, &synced, &retry, &s.Generation, &s.Claim, &created, &updated, &s.Lag); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(config), &s.Config); err != nil {
		return nil, fmt.Errorf("stream %s: config: %w", s.ID, err)
	}
	if err := json.Unmarshal([]byte(fields), &s.SecretFields); err != nil {
		return nil, fmt.Errorf("stream %s: secret fields: %w", s.ID, err)
	}
	s.LastErrorAt, s.LastSyncedAt, s.RetryAt = nsTime(errAt), nsTime(synced), nsTime(retry)
	s.CreatedAt, s.UpdatedAt = parseTime(created), parseTime(updated)
	if s.Lag < 0 {
		s.Lag = 0
	}
	return &s, nil
}

// encodeStream returns the JSON of the stream's config and of its secret
// fields' names.
func encodeStream(st *trail.Stream) (config, fields []byte, err error) {
	if config, err = json.Marshal(&st.Config); err != nil {
		return nil, nil, err
	}
	fields, err = json.Marshal(st.SecretFields)
	return config, fields, err
}

func streamNotFound(id string) error {
	return trail.Errorf(trail.ENOTFOUND, "Log stream not found: '%s'.", id)
}

// CreateStream stores a new stream and its audit event.
func (s *StreamService) CreateStream(ctx context.Context, st *trail.Stream) error {
	now := s.db.Now().UTC()
	if st.ID == "" {
		st.ID = "als_" + s.db.ids.New(now)
	}
	st.State, st.CreatedAt, st.UpdatedAt, st.Generation = trail.StreamActive, now, now, 1
	config, fields, err := encodeStream(st)
	if err != nil {
		return err
	}
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = ?`, st.OrganizationID).Scan(&n); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if n >= trail.MaxStreams {
		return trail.Errorf(trail.EINVALID, "The organization has %d log streams, the most it may have: delete one first.", n)
	}
	if err := tx.QueryRowContext(ctx, `SELECT next_index FROM organizations WHERE id = ?`, st.OrganizationID).Scan(&st.Cursor); err == sql.ErrNoRows {
		return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", st.OrganizationID)
	} else if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if err := s.db.appendOwn(ctx, tx, st.OrganizationID, st.AuditEvent(ctx, trail.ActionStreamCreated, now, nil)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO streams (organization_id, id, type, name, config, sealed, secret_fields, state, cursor, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, st.OrganizationID, st.ID, st.Type, st.Name, string(config), st.Sealed, string(fields),
		st.State, st.Cursor, formatTime(now), formatTime(now)); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	stored, err := s.FindStreamByID(ctx, st.OrganizationID, st.ID)
	if err != nil {
		return err
	}
	st.Lag = stored.Lag
	return nil
}

// FindStreamByID returns one stream of the organization (of any when
// orgID is "").
func (s *StreamService) FindStreamByID(ctx context.Context, orgID, id string) (*trail.Stream, error) {
	st, err := scanStream(s.db.reader.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = ? AND (? = '' OR s.organization_id = ?)`, id, orgID, orgID))
	if err == sql.ErrNoRows {
		return nil, streamNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("find stream: %w", err)
	}
	return st, nil
}

// FindStreams lists streams ordered by ID.
func (s *StreamService) FindStreams(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, bool, error) {
	q, args := listQuery(`SELECT `+streamColumns+` FROM streams s WHERE (? = '' OR s.organization_id = ?)`, "s.id", []any{orgID, orgID}, f)
	rows, err := s.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find streams: %w", err)
	}
	defer rows.Close()
	var out []*trail.Stream
	for rows.Next() {
		st, err := scanStream(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// UpdateStream applies a change with its audit event.
func (s *StreamService) UpdateStream(ctx context.Context, orgID, id string, change trail.StreamChange) (*trail.Stream, error) {
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	st, err := scanStream(tx.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = ? AND (? = '' OR s.organization_id = ?)`, id, orgID, orgID))
	if err == sql.ErrNoRows {
		return nil, streamNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("update stream: %w", err)
	}
	if err := change.Apply(st); err != nil {
		return nil, err
	}
	config, fields, err := encodeStream(st)
	if err != nil {
		return nil, err
	}
	if err := s.db.appendOwn(ctx, tx, st.OrganizationID, change.Event(st)); err != nil {
		return nil, err
	}
	st.Generation++
	st.UpdatedAt, st.RetryAt = now, nil
	if _, err := tx.ExecContext(ctx, `UPDATE streams SET name = ?, config = ?, sealed = ?, secret_fields = ?, state = ?, cursor = ?,
		generation = ?, retry_at = NULL, updated_at = ? WHERE organization_id = ? AND id = ?`,
		st.Name, string(config), st.Sealed, string(fields), st.State, st.Cursor, st.Generation, formatTime(now), st.OrganizationID, st.ID); err != nil {
		return nil, fmt.Errorf("update stream: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.FindStreamByID(ctx, st.OrganizationID, st.ID)
}

// DeleteStream removes a stream and records its deletion.
func (s *StreamService) DeleteStream(ctx context.Context, orgID, id string, audit func(*trail.Stream) *trail.EventInput) error {
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := scanStream(tx.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = ? AND (? = '' OR s.organization_id = ?)`, id, orgID, orgID))
	if err == sql.ErrNoRows {
		return streamNotFound(id)
	} else if err != nil {
		return fmt.Errorf("delete stream: %w", err)
	}
	if err := s.db.appendOwn(ctx, tx, st.OrganizationID, audit(st)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM streams WHERE organization_id = ? AND id = ?`, st.OrganizationID, st.ID); err != nil {
		return fmt.Errorf("delete stream: %w", err)
	}
	return tx.Commit()
}

// ClaimStream takes a due stream. SQLite's single writer serializes
// claims.
func (s *StreamService) ClaimStream(ctx context.Context, node string, lease time.Duration) (*trail.Stream, error) {
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var org, id string
	err = tx.QueryRowContext(ctx, `SELECT organization_id, id FROM streams WHERE state <> 'inactive' AND lease_until <= ? ORDER BY lease_until LIMIT 1`, now.UnixNano()).Scan(&org, &id)
	if err == sql.ErrNoRows {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("claim stream: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE streams SET claim = ?, lease_until = ? WHERE organization_id = ? AND id = ?`,
		node+":"+ident.Claim(), now.Add(lease).UnixNano(), org, id); err != nil {
		return nil, fmt.Errorf("claim stream: %w", err)
	}
	st, err := scanStream(tx.QueryRowContext(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.organization_id = ? AND s.id = ?`, org, id))
	if err != nil {
		return nil, fmt.Errorf("claim stream: %w", err)
	}
	return st, tx.Commit()
}

// lost tells a holder why its guarded update changed nothing: the stream
// is gone, or held by another node, or changed.
func (s *StreamService) lost(ctx context.Context, st *trail.Stream) error {
	var n int
	if err := s.db.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = ? AND id = ?`, st.OrganizationID, st.ID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return streamNotFound(st.ID)
	}
	return trail.Errorf(trail.ECONFLICT, "The log stream %s changed or is no longer held by this node.", st.ID)
}

// RenewStream extends the claim and returns the stream as stored.
func (s *StreamService) RenewStream(ctx context.Context, st *trail.Stream, lease time.Duration) (*trail.Stream, error) {
	now := s.db.Now().UTC()
	res, err := s.db.writer.ExecContext(ctx, `UPDATE streams SET lease_until = ? WHERE organization_id = ? AND id = ? AND claim = ?`,
		now.Add(lease).UnixNano(), st.OrganizationID, st.ID, st.Claim)
	if err != nil {
		return nil, fmt.Errorf("renew stream: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, s.lost(ctx, st)
	}
	return s.FindStreamByID(ctx, st.OrganizationID, st.ID)
}

// guarded runs an UPDATE that holds only for the holder of an unchanged
// stream.
func (s *StreamService) guarded(ctx context.Context, st *trail.Stream, set string, args ...any) error {
	res, err := s.db.writer.ExecContext(ctx, `UPDATE streams SET `+set+` WHERE organization_id = ? AND id = ? AND claim = ? AND generation = ?
		AND cursor = ? AND state <> 'inactive'`, append(args, st.OrganizationID, st.ID, st.Claim, st.Generation, st.Cursor)...)
	if err != nil {
		return fmt.Errorf("update stream: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return s.lost(ctx, st)
	}
	return nil
}

// RecordDelivery moves the cursor after a delivery.
func (s *StreamService) RecordDelivery(ctx context.Context, st *trail.Stream, next int64, n int) error {
	now := s.db.Now().UTC()
	if err := s.guarded(ctx, st, `cursor = ?, delivered = delivered + ?, state = 'active', last_synced_at = ?, retry_at = NULL`,
		next, n, now.UnixNano()); err != nil {
		return err
	}
	var head int64
	if err := s.db.writer.QueryRowContext(ctx, `SELECT next_index FROM organizations WHERE id = ?`, st.OrganizationID).Scan(&head); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	st.Cursor, st.Delivered, st.State, st.LastSyncedAt, st.RetryAt, st.Lag = next, st.Delivered+int64(n), trail.StreamActive, &now, nil, max(head-next, 0)
	return nil
}

// RecordStreamFailure records a failed delivery.
func (s *StreamService) RecordStreamFailure(ctx context.Context, st *trail.Stream, state, msg string, retryAt time.Time) error {
	now := s.db.Now().UTC()
	if err := s.guarded(ctx, st, `state = ?, last_error = ?, last_error_at = ?, retry_at = ?`, state, msg, now.UnixNano(), retryAt.UnixNano()); err != nil {
		return err
	}
	retryAt = retryAt.UTC()
	st.State, st.LastError, st.LastErrorAt, st.RetryAt = state, msg, &now, &retryAt
	return nil
}

// ReleaseStream gives up the claim.
func (s *StreamService) ReleaseStream(ctx context.Context, st *trail.Stream) error {
	_, err := s.db.writer.ExecContext(ctx, `UPDATE streams SET claim = '', lease_until = 0 WHERE organization_id = ? AND id = ? AND claim = ?`,
		st.OrganizationID, st.ID, st.Claim)
	if err != nil {
		return fmt.Errorf("release stream: %w", err)
	}
	return nil
}

// ReleaseNodeStreams gives up every claim of the node.
func (s *StreamService) ReleaseNodeStreams(ctx context.Context, node string) (int, error) {
	res, err := s.db.writer.ExecContext(ctx, `UPDATE streams SET claim = '', lease_until = 0 WHERE substr(claim, 1, ?) = ?`, len(node)+1, node+":")
	if err != nil {
		return 0, fmt.Errorf("release node streams: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
