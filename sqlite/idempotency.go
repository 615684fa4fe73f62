package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/trail-audit/trail"
)

// IdempotencyService implements trail.IdempotencyService on SQLite. A
// claimed request is a row with status 0.
type IdempotencyService struct{ db *DB }

var _ trail.IdempotencyService = (*IdempotencyService)(nil)

// NewIdempotencyService returns an IdempotencyService on db.
func NewIdempotencyService(db *DB) *IdempotencyService { return &IdempotencyService{db: db} }

// ClaimResponse replays, refuses or claims, in one write transaction.
func (s *IdempotencyService) ClaimResponse(ctx context.Context, hash [32]byte) (*trail.StoredResponse, error) {
	now := s.db.Now()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var r trail.StoredResponse
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT status, body, created_at FROM idempotent_responses WHERE key_hash = ?`, hash[:]).Scan(&r.Status, &r.Body, &created)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return nil, fmt.Errorf("claim response: %w", err)
	case r.Status != 0 && created > now.Add(-trail.IdempotencyWindow).UnixNano():
		return &r, nil
	case r.Status == 0 && created > now.Add(-trail.IdempotencyClaimTTL).UnixNano():
		return nil, trail.Errorf(trail.ECONFLICT, "A request with this Idempotency-Key is still running; retry later.")
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO idempotent_responses (key_hash, status, body, created_at) VALUES (?, 0, x'', ?)
		ON CONFLICT (key_hash) DO UPDATE SET status = 0, body = x'', created_at = excluded.created_at`, hash[:], now.UnixNano()); err != nil {
		return nil, fmt.Errorf("claim response: %w", err)
	}
	return nil, tx.Commit()
}

// FinishResponse stores the response of a claimed request.
func (s *IdempotencyService) FinishResponse(ctx context.Context, hash [32]byte, r *trail.StoredResponse) error {
	// Only a claim may be finished: if this request's claim expired and a
	// retry finished first, the retry's response stays.
	if _, err := s.db.writer.ExecContext(ctx, `UPDATE idempotent_responses SET status = ?, body = ?, created_at = ? WHERE key_hash = ? AND status = 0`,
		r.Status, r.Body, s.db.Now().UnixNano(), hash[:]); err != nil {
		return fmt.Errorf("finish response: %w", err)
	}
	return nil
}

// ReleaseResponse drops a claim.
func (s *IdempotencyService) ReleaseResponse(ctx context.Context, hash [32]byte) error {
	if _, err := s.db.writer.ExecContext(ctx, `DELETE FROM idempotent_responses WHERE key_hash = ? AND status = 0`, hash[:]); err != nil {
		return fmt.Errorf("release response: %w", err)
	}
	return nil
}
