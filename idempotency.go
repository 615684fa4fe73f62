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

// ResponseKey names a stored response: the hash of the request (its API
// key, method, path, Idempotency-Key and body) and the organization of its
// API key ("" for an instance-wide key), which places the row on a
// distributed database.
type ResponseKey struct {
	OrganizationID string
	Hash           [32]byte
}

// IdempotencyService keeps responses of non-event POSTs for
// IdempotencyWindow. Events have their own de-duplication (AppendEvents).
type IdempotencyService interface {
	// ClaimResponse returns the response stored under k, if any; or,
	// when there is none, claims k for this request and returns nil. A
	// key claimed by a request that is still running is ECONFLICT.
	ClaimResponse(ctx context.Context, k ResponseKey) (*StoredResponse, error)

	// FinishResponse stores the claimed request's response.
	FinishResponse(ctx context.Context, k ResponseKey, r *StoredResponse) error

	// ReleaseResponse drops a claim whose request failed, so that a retry
	// runs again.
	ReleaseResponse(ctx context.Context, k ResponseKey) error
}
