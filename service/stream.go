package service

import (
	"context"
	"errors"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

// Streams implements trail.StreamService: log streams, their changes
// with their own events, and the leases under which one node at a time
// delivers a stream.
type Streams struct{ *base }

var _ trail.StreamService = (*Streams)(nil)

// CreateStream stores a new stream whose first event is its own
// log_stream.created; an organization has at most trail.MaxStreams.
func (s *Streams) CreateStream(ctx context.Context, st *trail.Stream) error {
	now := s.d.Now().UTC()
	if st.ID == "" {
		st.ID = s.newID("als_")
	}
	st.State, st.CreatedAt, st.UpdatedAt, st.Generation = trail.StreamActive, now, now, 1
	err := s.d.InTx(ctx, func(x store.Executor) error {
		if _, err := x.OrganizationGet(ctx, st.OrganizationID, false); err != nil {
			return notFound(err, trail.ErrOrganizationNotFound(st.OrganizationID), "create stream")
		}
		// The own event locks the organization's head: creations of one
		// organization are serialized, so the count holds.
		if err := record(ctx, x, st.OrganizationID, st.AuditEvent(ctx, trail.ActionStreamCreated, now, nil)); err != nil {
			return err
		}
		n, err := x.StreamCount(ctx, st.OrganizationID)
		if err != nil {
			return notFound(err, nil, "create stream")
		}
		if n >= trail.MaxStreams {
			return trail.Errorf(trail.EINVALID, "The organization has %d log streams, the most it may have: delete one first.", n)
		}
		next, err := x.OrganizationNextIndex(ctx, st.OrganizationID)
		if err != nil {
			return notFound(err, nil, "create stream")
		}
		st.Cursor = next - 1 // the own event was the last one: the stream starts with it
		return notFound(x.StreamInsert(ctx, st), nil, "create stream")
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
func (s *Streams) FindStreamByID(ctx context.Context, orgID, id string) (*trail.Stream, error) {
	st, err := s.d.StreamGet(ctx, orgID, id, false)
	return st, notFound(err, trail.ErrStreamNotFound(id), "find stream")
}

// FindStreams lists streams ordered by ID.
func (s *Streams) FindStreams(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, bool, error) {
	list, err := s.d.StreamList(ctx, orgID, f)
	return page(list, notFound(err, nil, "find streams"), f)
}

// UpdateStream applies a change with its own event, in one transaction.
func (s *Streams) UpdateStream(ctx context.Context, orgID, id string, change trail.StreamChange) (*trail.Stream, error) {
	now := s.d.Now().UTC()
	var org string
	err := s.d.InTx(ctx, func(x store.Executor) error {
		st, err := lockStream(ctx, x, orgID, id)
		if err != nil {
			return notFound(err, trail.ErrStreamNotFound(id), "update stream")
		}
		if err := change.Apply(st); err != nil {
			return err
		}
		org = st.OrganizationID
		if err := record(ctx, x, org, st.AuditEvent(ctx, change.Action, now, change.Metadata)); err != nil {
			return err
		}
		return notFound(x.StreamUpdate(ctx, st, now), nil, "update stream")
	})
	if err != nil {
		return nil, err
	}
	return s.FindStreamByID(ctx, org, id)
}

// lockStream reads and locks a stream of the organization, or of any
// (orgID ""): a row lock names its organization, so the stream's is found
// first.
func lockStream(ctx context.Context, x store.Executor, orgID, id string) (*trail.Stream, error) {
	if orgID == "" {
		st, err := x.StreamGet(ctx, "", id, false)
		if err != nil {
			return nil, err
		}
		orgID = st.OrganizationID
	}
	return x.StreamGet(ctx, orgID, id, true)
}

// DeleteStream removes a stream and records log_stream.deleted.
func (s *Streams) DeleteStream(ctx context.Context, orgID, id string) error {
	now := s.d.Now().UTC()
	return s.d.InTx(ctx, func(x store.Executor) error {
		st, err := lockStream(ctx, x, orgID, id)
		if err != nil {
			return notFound(err, trail.ErrStreamNotFound(id), "delete stream")
		}
		if err := record(ctx, x, st.OrganizationID, st.AuditEvent(ctx, trail.ActionStreamDeleted, now, nil)); err != nil {
			return err
		}
		return notFound(x.StreamDelete(ctx, st.OrganizationID, st.ID), nil, "delete stream")
	})
}

// ClaimStream takes a due stream for lease under a new claim of node.
func (s *Streams) ClaimStream(ctx context.Context, node string, lease time.Duration) (*trail.Stream, error) {
	now := s.d.Now().UTC()
	st, err := s.d.StreamClaim(ctx, node+":"+ident.Claim(), now, now.Add(lease))
	return st, notFound(err, nil, "claim stream")
}

// lost tells a holder why its guarded update changed nothing: the stream
// is gone, or held by another node, or changed.
func (s *Streams) lost(ctx context.Context, st *trail.Stream) error {
	ok, err := s.d.StreamExists(ctx, st.OrganizationID, st.ID)
	switch {
	case err != nil:
		return err
	case !ok:
		return trail.ErrStreamNotFound(st.ID)
	}
	return trail.ErrStreamLost(st.ID)
}

// guardErr turns a guarded update's ErrNotFound into why it failed.
func (s *Streams) guardErr(ctx context.Context, st *trail.Stream, err error, doing string) error {
	if errors.Is(err, store.ErrNotFound) {
		return s.lost(ctx, st)
	}
	return notFound(err, nil, doing)
}

// RenewStream extends the claim and returns the stream as stored.
func (s *Streams) RenewStream(ctx context.Context, st *trail.Stream, lease time.Duration) (*trail.Stream, error) {
	cur, err := s.d.StreamRenew(ctx, st.OrganizationID, st.ID, st.Claim, s.d.Now().UTC().Add(lease))
	if err != nil {
		return nil, s.guardErr(ctx, st, err, "renew stream")
	}
	return cur, nil
}

// RecordDelivery moves the cursor after a delivery.
func (s *Streams) RecordDelivery(ctx context.Context, st *trail.Stream, next int64, n int) error {
	now := s.d.Now().UTC()
	head, err := s.d.StreamRecordDelivery(ctx, store.Guard(st), next, n, now)
	if err != nil {
		return s.guardErr(ctx, st, err, "record delivery")
	}
	st.Cursor, st.Delivered, st.State, st.LastSyncedAt, st.RetryAt, st.Lag = next, st.Delivered+int64(n), trail.StreamActive, &now, nil, max(head-next, 0)
	return nil
}

// RecordStreamFailure records a failed delivery.
func (s *Streams) RecordStreamFailure(ctx context.Context, st *trail.Stream, state, msg string, retryAt time.Time) error {
	now := s.d.Now().UTC()
	retryAt = retryAt.UTC()
	if err := s.d.StreamRecordFailure(ctx, store.Guard(st), state, msg, now, retryAt); err != nil {
		return s.guardErr(ctx, st, err, "record stream failure")
	}
	st.State, st.LastError, st.LastErrorAt, st.RetryAt = state, msg, &now, &retryAt
	return nil
}

// ReleaseStream gives up the claim.
func (s *Streams) ReleaseStream(ctx context.Context, st *trail.Stream) error {
	return notFound(s.d.StreamRelease(ctx, st.OrganizationID, st.ID, st.Claim), nil, "release stream")
}

// ReleaseNodeStreams gives up every claim of the node.
func (s *Streams) ReleaseNodeStreams(ctx context.Context, node string) (int, error) {
	n, err := s.d.StreamReleaseNode(ctx, node+":")
	return n, notFound(err, nil, "release node streams")
}
