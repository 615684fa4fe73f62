package trail

import "context"

// StoredResponse is a response kept so that a retried request (same key,
// same Idempotency-Key, same body) gets the original answer.
type StoredResponse struct {
	Status int
	Body   []byte
}

// IdempotencyService keeps responses of non-event POSTs for
// IdempotencyWindow. Events have their own de-duplication (AppendEvents).
type IdempotencyService interface {
	// FindResponse returns the response stored under hash within the
	// window, or ENOTFOUND.
	FindResponse(ctx context.Context, hash [32]byte) (*StoredResponse, error)

	// SaveResponse stores a response under hash, replacing an expired one.
	SaveResponse(ctx context.Context, hash [32]byte, r *StoredResponse) error
}
