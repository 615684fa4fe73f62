package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/trail-audit/trail"
)

// IdempotencyService implements trail.IdempotencyService on SQLite.
type IdempotencyService struct{ db *DB }

var _ trail.IdempotencyService = (*IdempotencyService)(nil)

// NewIdempotencyService returns an IdempotencyService on db.
func NewIdempotencyService(db *DB) *IdempotencyService { return &IdempotencyService{db: db} }

// FindResponse returns a live stored response.
func (s *IdempotencyService) FindResponse(ctx context.Context, hash [32]byte) (*trail.StoredResponse, error) {
	cutoff := s.db.Now().Add(-trail.IdempotencyWindow).UnixNano()
	var r trail.StoredResponse
	err := s.db.reader.QueryRowContext(ctx, `SELECT status, body FROM idempotent_responses WHERE key_hash = ? AND created_at > ?`, hash[:], cutoff).Scan(&r.Status, &r.Body)
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "No stored response.")
	} else if err != nil {
		return nil, fmt.Errorf("find response: %w", err)
	}
	return &r, nil
}

// SaveResponse stores a response.
func (s *IdempotencyService) SaveResponse(ctx context.Context, hash [32]byte, r *trail.StoredResponse) error {
	_, err := s.db.writer.ExecContext(ctx, `INSERT INTO idempotent_responses (key_hash, status, body, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_hash) DO UPDATE SET status = excluded.status, body = excluded.body, created_at = excluded.created_at`,
		hash[:], r.Status, r.Body, s.db.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("save response: %w", err)
	}
	return nil
}
