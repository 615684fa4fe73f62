package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// StreamService stores log streams and their delivery progress. A stream
// is delivered by the node that holds its lease; SKIP LOCKED lets nodes
// that claim at once take different streams.
type StreamService struct {
	db *DB
}

var _ trail.StreamService = (*StreamService)(nil)

// NewStreamService returns a StreamService on db.
func NewStreamService(db *DB) *StreamService { return &StreamService{db: db} }

const streamColumns = `s.organization_id, s.id, s.type, s.name, s.config, s.sealed, s.secret_fields, s.state, s.last_error,
	s.last_error_at, s.cursor, s.delivered, s.last_synced_at, s.retry_at, s.generation, s.claim, s.created_at, s.updated_at,
	(SELECT o.next_index FROM organizations o WHERE o.id = s.organization_id) - s.cursor`

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
		return nil, err
	}
	if err := json.Unmarshal(config, &s.Config); err != nil {
		return nil, fmt.Errorf("stream %s: config: %w", s.ID, err)
	}
	if err := json.Unmarshal(fields, &s.SecretFields); err != nil {
		return nil, fmt.Errorf("stream %s: secret fields: %w", s.ID, err)
	}
	s.LastErrorAt, s.LastSyncedAt, s.RetryAt = utcPtr(s.LastErrorAt), utcPtr(s.LastSyncedAt), utcPtr(s.RetryAt)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
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
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
	if st.ID == "" {
		st.ID = "als_" + s.db.ids.New(now)
	}
	st.State, st.CreatedAt, st.UpdatedAt, st.Generation = trail.StreamActive, now, now, 1
	config, fields, err := encodeStream(st)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		// The head lock of the own event serializes creations of one
		// organization, so the count below holds.
		if err := s.db.appendOwn(ctx, tx, st.OrganizationID, st.AuditEvent(ctx, trail.ActionStreamCreated, now, nil)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM streams WHERE organization_id = $1`, st.OrganizationID).Scan(&n); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		if n >= trail.MaxStreams {
			return trail.Errorf(trail.EINVALID, "The organization has %d log streams, the most it may have: delete one first.", n)
		}
		// The own event was the last one: the stream starts with it.
		if err := tx.QueryRow(ctx, `SELECT next_index - 1 FROM organizations WHERE id = $1`, st.OrganizationID).Scan(&st.Cursor); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO streams (organization_id, id, type, name, config, sealed, secret_fields, state, cursor, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`, st.OrganizationID, st.ID, st.Type, st.Name, string(config), st.Sealed, string(fields),
			st.State, st.Cursor, now)
		if err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		return nil
	})
	if err != nil {
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
	st, err := scanStream(s.db.pool.QueryRow(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = $1 AND ($2 = '' OR s.organization_id = $2)`, id, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, streamNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("find stream: %w", err)
	}
	return st, nil
}

// FindStreams lists streams ordered by ID.
func (s *StreamService) FindStreams(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, bool, error) {
	q, args := listQuery(`SELECT `+streamColumns+` FROM streams s WHERE ($1 = '' OR s.organization_id = $1)`, "s.id", []any{orgID}, f)
	rows, err := s.db.pool.Query(ctx, q, args...)
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
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return nil, err
	}
	var orgOf string
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		st, err := scanStream(tx.QueryRow(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = $1 AND ($2 = '' OR s.organization_id = $2) FOR UPDATE`, id, orgID))
		if errors.Is(err, pgx.ErrNoRows) {
			return streamNotFound(id)
		} else if err != nil {
			return fmt.Errorf("update stream: %w", err)
		}
		if err := change.Apply(st); err != nil {
			return err
		}
		config, fields, err := encodeStream(st)
		if err != nil {
			return err
		}
		if err := s.db.appendOwn(ctx, tx, st.OrganizationID, change.Event(st)); err != nil {
			return err
		}
		orgOf = st.OrganizationID
		_, err = tx.Exec(ctx, `UPDATE streams SET name = $1, config = $2, sealed = $3, secret_fields = $4, state = $5, cursor = $6,
			generation = generation + 1, retry_at = NULL, updated_at = $7 WHERE organization_id = $8 AND id = $9`,
			st.Name, string(config), st.Sealed, string(fields), st.State, st.Cursor, now, st.OrganizationID, st.ID)
		if err != nil {
			return fmt.Errorf("update stream: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.FindStreamByID(ctx, orgOf, id)
}

// DeleteStream removes a stream and records its deletion.
func (s *StreamService) DeleteStream(ctx context.Context, orgID, id string, audit func(*trail.Stream) *trail.EventInput) error {
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		st, err := scanStream(tx.QueryRow(ctx, `SELECT `+streamColumns+` FROM streams s WHERE s.id = $1 AND ($2 = '' OR s.organization_id = $2) FOR UPDATE`, id, orgID))
		if errors.Is(err, pgx.ErrNoRows) {
			return streamNotFound(id)
		} else if err != nil {
			return fmt.Errorf("delete stream: %w", err)
		}
		if err := s.db.appendOwn(ctx, tx, st.OrganizationID, audit(st)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM streams WHERE organization_id = $1 AND id = $2`, st.OrganizationID, st.ID); err != nil {
			return fmt.Errorf("delete stream: %w", err)
		}
		return nil
	})
}

// ClaimStream takes a due stream.
func (s *StreamService) ClaimStream(ctx context.Context, node string, lease time.Duration) (*trail.Stream, error) {
	now := s.db.now()
	st, err := scanStream(s.db.pool.QueryRow(ctx, `UPDATE streams s SET claim = $1, lease_until = $2
		WHERE (organization_id, id) = (SELECT organization_id, id FROM streams WHERE state <> 'inactive' AND lease_until <= $3
			ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+streamColumns, node+":"+ident.Claim(), now.Add(lease), now))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("claim stream: %w", err)
	}
	return st, nil
}

// lost tells a holder why its guarded update changed nothing.
func (s *StreamService) lost(ctx context.Context, st *trail.Stream) error {
	var exists bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM streams WHERE organization_id = $1 AND id = $2)`, st.OrganizationID, st.ID).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return streamNotFound(st.ID)
	}
	return trail.Errorf(trail.ECONFLICT, "The log stream %s changed or is no longer held by this node.", st.ID)
}

// RenewStream extends the claim and returns the stream as stored.
func (s *StreamService) RenewStream(ctx context.Context, st *trail.Stream, lease time.Duration) (*trail.Stream, error) {
	now := s.db.now()
	cur, err := scanStream(s.db.pool.QueryRow(ctx, `UPDATE streams s SET lease_until = $1 WHERE organization_id = $2 AND id = $3 AND claim = $4
		RETURNING `+streamColumns, now.Add(lease), st.OrganizationID, st.ID, st.Claim))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, s.lost(ctx, st)
	} else if err != nil {
		return nil, fmt.Errorf("renew stream: %w", err)
	}
	return cur, nil
}

// guarded runs an UPDATE that holds only for the holder of an unchanged
// stream; the stream's identity and guards are the last five parameters.
func (s *StreamService) guarded(ctx context.Context, st *trail.Stream, set string, args ...any) (int64, error) {
	n := len(args)
	var head int64
	err := s.db.pool.QueryRow(ctx, `UPDATE streams s SET `+set+fmt.Sprintf(` WHERE organization_id = $%d AND id = $%d AND claim = $%d
		AND generation = $%d AND cursor = $%d AND state <> 'inactive'
		RETURNING (SELECT o.next_index FROM organizations o WHERE o.id = s.organization_id)`, n+1, n+2, n+3, n+4, n+5),
		append(args, st.OrganizationID, st.ID, st.Claim, st.Generation, st.Cursor)...).Scan(&head)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, s.lost(ctx, st)
	} else if err != nil {
		return 0, fmt.Errorf("update stream: %w", err)
	}
	return head, nil
}

// RecordDelivery moves the cursor after a delivery.
func (s *StreamService) RecordDelivery(ctx context.Context, st *trail.Stream, next int64, n int) error {
	now := s.db.now()
	head, err := s.guarded(ctx, st, `cursor = $1, delivered = delivered + $2, state = 'active', last_synced_at = $3, retry_at = NULL`, next, n, now)
	if err != nil {
		return err
	}
	st.Cursor, st.Delivered, st.State, st.LastSyncedAt, st.RetryAt, st.Lag = next, st.Delivered+int64(n), trail.StreamActive, &now, nil, max(head-next, 0)
	return nil
}

// RecordStreamFailure records a failed delivery.
func (s *StreamService) RecordStreamFailure(ctx context.Context, st *trail.Stream, state, msg string, retryAt time.Time) error {
	now := s.db.now()
	if _, err := s.guarded(ctx, st, `state = $1, last_error = $2, last_error_at = $3, retry_at = $4`, state, msg, now, retryAt); err != nil {
		return err
	}
	retryAt = retryAt.UTC()
	st.State, st.LastError, st.LastErrorAt, st.RetryAt = state, msg, &now, &retryAt
	return nil
}

// ReleaseStream gives up the claim.
func (s *StreamService) ReleaseStream(ctx context.Context, st *trail.Stream) error {
	_, err := s.db.pool.Exec(ctx, `UPDATE streams SET claim = '', lease_until = '-infinity' WHERE organization_id = $1 AND id = $2 AND claim = $3`,
		st.OrganizationID, st.ID, st.Claim)
	if err != nil {
		return fmt.Errorf("release stream: %w", err)
	}
	return nil
}

// ReleaseNodeStreams gives up every claim of the node.
func (s *StreamService) ReleaseNodeStreams(ctx context.Context, node string) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE streams SET claim = '', lease_until = '-infinity' WHERE left(claim, $1) = $2`, len(node)+1, node+":")
	if err != nil {
		return 0, fmt.Errorf("release node streams: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
