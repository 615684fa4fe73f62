package service

import (
	"context"
	"errors"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Idempotency implements trail.IdempotencyService: a response is
// replayed for trail.IdempotencyWindow, and a claim holds for
// trail.IdempotencyClaimTTL.
type Idempotency struct{ *base }

var _ trail.IdempotencyService = (*Idempotency)(nil)

// ClaimResponse replays, refuses or claims, in one transaction.
func (s *Idempotency) ClaimResponse(ctx context.Context, k trail.ResponseKey) (*trail.StoredResponse, error) {
	now := s.d.Now()
	var out *trail.StoredResponse
	err := s.d.InTx(ctx, func(x store.Executor) error {
		r, claimed, err := x.ResponseClaimOrGet(ctx, k, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return trail.ErrIdempotentRunning() // claimed and released meanwhile, again and again
		case err != nil:
			return err
		case claimed:
			return nil
		case r.Status != 0 && r.CreatedAt.After(now.Add(-trail.IdempotencyWindow)):
			out = &r.StoredResponse
			return nil
		case r.Status == 0 && r.CreatedAt.After(now.Add(-trail.IdempotencyClaimTTL)):
			return trail.ErrIdempotentRunning()
		}
		// An expired response or an abandoned claim: claim it anew.
		return x.ResponseReclaim(ctx, k, now)
	})
	if err != nil {
		return nil, notFound(err, nil, "claim response")
	}
	return out, nil
}

// FinishResponse stores the response of a claimed request. Only a claim
// may be finished: if this request's claim expired and a retry finished
// first, the retry's response stays.
func (s *Idempotency) FinishResponse(ctx context.Context, k trail.ResponseKey, r *trail.StoredResponse) error {
	return notFound(s.d.ResponseFinish(ctx, k, r, s.d.Now()), nil, "finish response")
}

// ReleaseResponse drops a claim.
func (s *Idempotency) ReleaseResponse(ctx context.Context, k trail.ResponseKey) error {
	return notFound(s.d.ResponseRelease(ctx, k), nil, "release response")
}
