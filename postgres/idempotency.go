package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/trail-audit/trail"
)

// IdempotencyService implements trail.IdempotencyService on PostgreSQL. A
// claimed request is a row with status 0; the row lock makes a claim
// exclusive across nodes.
type IdempotencyService struct{ db *DB }

var _ trail.IdempotencyService = (*IdempotencyService)(nil)

// NewIdempotencyService returns an IdempotencyService on db.
func NewIdempotencyService(db *DB) *IdempotencyService { return &IdempotencyService{db: db} }

// ClaimResponse replays, refuses or claims, in one transaction.
func (s *IdempotencyService) ClaimResponse(ctx context.Context, hash [32]byte) (*trail.StoredResponse, error) {
	now := s.db.Now()
	var out *trail.StoredResponse
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var r trail.StoredResponse
		var created int64
		var err error
		for attempt := 0; ; attempt++ {
			var tag pgconn.CommandTag
			tag, err = tx.Exec(ctx, `INSERT INTO idempotent_responses (key_hash, status, body, created_at) VALUES ($1, 0, '', $2) ON CONFLICT DO NOTHING`, hash[:], now.UnixNano())
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				return nil // claimed
			}
			err = tx.QueryRow(ctx, `SELECT status, body, created_at FROM idempotent_responses WHERE key_hash = $1 FOR UPDATE`, hash[:]).Scan(&r.Status, &r.Body, &created)
			if !errors.Is(err, pgx.ErrNoRows) || attempt == 2 {
				break
			}
			// Released between the two statements: claim again.
		}
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return trail.Errorf(trail.ECONFLICT, "A request with this Idempotency-Key is still running; retry later.")
		case err != nil:
			return err
		case r.Status != 0 && created > now.Add(-trail.IdempotencyWindow).UnixNano():
			out = &r
			return nil
		case r.Status == 0 && created > now.Add(-trail.IdempotencyClaimTTL).UnixNano():
			return trail.Errorf(trail.ECONFLICT, "A request with this Idempotency-Key is still running; retry later.")
		}
		// An expired response or an abandoned claim: claim it anew.
		_, err = tx.Exec(ctx, `UPDATE idempotent_responses SET status = 0, body = '', created_at = $2 WHERE key_hash = $1`, hash[:], now.UnixNano())
		return err
	})
	if err != nil {
		if trail.ErrorCode(err) == trail.ECONFLICT {
			return nil, err
		}
		return nil, fmt.Errorf("claim response: %w", err)
	}
	return out, nil
}

// FinishResponse stores the response of a claimed request.
func (s *IdempotencyService) FinishResponse(ctx context.Context, hash [32]byte, r *trail.StoredResponse) error {
	// Only a claim may be finished: if this request's claim expired and a
	// retry finished first, the retry's response stays.
	if _, err := s.db.pool.Exec(ctx, `UPDATE idempotent_responses SET status = $1, body = $2, created_at = $3 WHERE key_hash = $4 AND status = 0`,
		r.Status, r.Body, s.db.Now().UnixNano(), hash[:]); err != nil {
		return fmt.Errorf("finish response: %w", err)
	}
	return nil
}

// ReleaseResponse drops a claim.
func (s *IdempotencyService) ReleaseResponse(ctx context.Context, hash [32]byte) error {
	if _, err := s.db.pool.Exec(ctx, `DELETE FROM idempotent_responses WHERE key_hash = $1 AND status = 0`, hash[:]); err != nil {
		return fmt.Errorf("release response: %w", err)
	}
	return nil
}
