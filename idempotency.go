package trail

import (
	"context"
	"time"
)

// StoredResponse is a response kept so that a retried request (same key,
// same Idempotency-Key, same body) gets the original answer.
type StoredResponse struct {
	Status int
	Body   []byte
}

// IdempotencyClaimTTL is how long a claimed request may run before a retry
// may claim it again (the first attempt died before it finished).
const IdempotencyClaimTTL = time.Minute

// IdempotencyService keeps responses of non-event POSTs for
// IdempotencyWindow. Events have their own de-duplication (AppendEvents).
type IdempotencyService interface {
	// ClaimResponse returns the response stored under hash, if any; or,
	// when there is none, claims hash for this request and returns nil. A
	// hash claimed by a request that is still running is ECONFLICT.
	ClaimResponse(ctx context.Context, hash [32]byte) (*StoredResponse, error)

	// FinishResponse stores the claimed request's response.
	FinishResponse(ctx context.Context, hash [32]byte, r *StoredResponse) error

	// ReleaseResponse drops a claim whose request failed, so that a retry
	// runs again.
	ReleaseResponse(ctx context.Context, hash [32]byte) error
}
