package tlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trail-audit/trail"
)

// Purger removes the contents of events past their organization's
// retention, and only with evidence (SPEC §6): a purge at time T under
// retention R removes the events below the size of a checkpoint whose
// signed timestamp is at most T − R and that occurred before T − R, after
// recording so in the organization's own log (trail.ActionEventsPurged,
// with a trail.PurgeRecord). Fsck and Verify refuse a purged event that
// no such record covers.
//
// Its first run also records, once, the events purged before purges kept
// evidence (trail.ActionPurgeLegacy in org_system, then
// trail.ActionPurgeEvidence).
type Purger struct {
	Store  trail.LogStore
	Events trail.EventService
	Key    string // the log's verifier key: a checkpoint's timestamp is checked before it authorizes a purge
	Now    func() time.Time
	// Await waits until a checkpoint covers the event of the index in
	// the organization's log; by default it polls the latest checkpoint
	// for up to AwaitRecord. A record is signed before what it purges
	// goes, so that no one ever reads a purged event its record does not
	// yet prove.
	Await func(ctx context.Context, orgID string, index int64) error
}

// AwaitRecord bounds how long a purge waits for its record to be signed;
// a purge whose record is not signed by then purges at the next run.
const AwaitRecord = 30 * time.Second

// LegacyWindow is how long after org_system's first timestamped checkpoint
// the records of events purged before purges kept evidence may be written:
// the first purge of an upgraded Trail writes them at once. One written
// later (a record removed to write them again, or appended behind Trail's
// back) counts for nothing.
const LegacyWindow = 24 * time.Hour

// Purge runs one purge.
func (p *Purger) Purge(ctx context.Context) (*trail.PurgeResult, error) {
	ctx = trail.NewContextWithCaller(ctx, trail.PurgeCaller)
	if err := p.recordLegacy(ctx, p.now()); err != nil {
		return nil, err
	}
	logs, err := p.Store.RetentionLogs(ctx)
	if err != nil {
		return nil, err
	}
	// The time of the purge, after the retentions were read: a change of
	// retention that lands meanwhile is before it, as fsck sees it.
	now := p.now()
	var bounds []trail.PurgeBound
	var errs []error
	for _, l := range logs {
		b, rec, err := p.bound(ctx, l, now)
		if err != nil {
			// This organization waits for the next run; the others go on.
			errs = append(errs, fmt.Errorf("purge %s: %w", l.OrganizationID, err))
			continue
		}
		if b == nil {
			continue
		}
		if rec == nil {
			// Nothing of it to purge: its bound authorizes nothing, and
			// lets the driver drop what holds none of its events.
			bounds = append(bounds, *b)
			continue
		}
		// Recorded first: an event is never purged without its record. A
		// run that stops after the record purges at the next one, under a
		// record of its own.
		ev := trail.AuditEvent(ctx, trail.ActionEventsPurged, now, rec.Metadata(), trail.Target{ID: l.OrganizationID, Type: "organization"})
		index, err := p.append(ctx, l.OrganizationID, ev)
		if err == nil {
			err = p.await(ctx, l.OrganizationID, index)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("purge %s: record: %w", l.OrganizationID, err))
			continue
		}
		bounds = append(bounds, *b)
	}
	res, err := p.Store.PurgeExpired(ctx, bounds)
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

func (p *Purger) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// await waits until a checkpoint covers index.
func (p *Purger) await(ctx context.Context, orgID string, index int64) error {
	if p.Await != nil {
		return p.Await(ctx, orgID, index)
	}
	ctx, cancel := context.WithTimeout(ctx, AwaitRecord)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		cp, err := p.Store.LatestCheckpoint(ctx, orgID)
		if err == nil && cp.Size > index {
			return nil
		} else if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no checkpoint covers the record (index %d) yet: %w", index, ctx.Err())
		case <-t.C:
		}
	}
}

// bound returns what a purge of the organization may remove now (nil when
// no checkpoint is old enough), and the record to write first (nil when no
// stored event is within the bound).
func (p *Purger) bound(ctx context.Context, l trail.LogRetention, now time.Time) (*trail.PurgeBound, *trail.PurgeRecord, error) {
	cutoff := now.Add(-trail.RetentionPeriod(l.RetentionDays))
	cp, err := p.Store.CheckpointAtOrBefore(ctx, l.OrganizationID, cutoff)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	if _, err := OpenCheckpoint([]byte(cp.Note), p.Key); err != nil {
		return nil, nil, fmt.Errorf("checkpoint of tree size %d: %w", cp.Size, err)
	}
	t, err := CheckpointTime([]byte(cp.Note), p.Key)
	if errors.Is(err, ErrNoTimestamp) {
		return nil, nil, nil // signed before checkpoints were timestamped: no evidence of its time
	} else if err != nil {
		return nil, nil, fmt.Errorf("checkpoint of tree size %d: %w", cp.Size, err)
	}
	if t.After(cutoff) || cp.Size == 0 {
		return nil, nil, nil
	}
	// The changes of retention stay: fsck checks each purge record's
	// retention against them. The records of events purged before purges
	// kept evidence stay as long as those events' evidence is needed:
	// always.
	b := &trail.PurgeBound{OrganizationID: l.OrganizationID, Cutoff: cutoff, Below: cp.Size, Keep: []string{trail.ActionRetentionUpdated}}
	if l.OrganizationID == trail.SystemOrganizationID {
		b.Keep = append(b.Keep, trail.ActionPurgeLegacy, trail.ActionPurgeEvidence)
	}
	ok, err := p.Store.Purgeable(ctx, *b)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return b, nil, nil
	}
	return b, &trail.PurgeRecord{RetentionDays: l.RetentionDays, Cutoff: cutoff, Below: cp.Size, CheckpointTime: t}, nil
}

func (p *Purger) append(ctx context.Context, orgID string, ev *trail.EventInput) (int64, error) {
	res, err := p.Events.AppendEvents(ctx, orgID, []*trail.EventInput{ev})
	if err != nil {
		return 0, err
	}
	return res[0].Index, res[0].Err
}

// recordLegacy records, once, how many of each organization's events were
// purged before purges kept evidence: below the size of its newest
// checkpoint that carries no timestamp. The records go to org_system's
// log, then the marker that closes them; only records before the first
// marker count (a marker removed to record again is a gap fsck finds).
func (p *Purger) recordLegacy(ctx context.Context, now time.Time) error {
	done, err := p.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: trail.SystemOrganizationID, Actions: []string{trail.ActionPurgeEvidence}, Limit: 1})
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return nil // no org_system yet: nothing was ever purged
	} else if err != nil {
		return fmt.Errorf("purge evidence: %w", err)
	}
	if len(done.Events) > 0 {
		return nil
	}
	// Only at the upgrade: long after org_system's first timestamped
	// checkpoint, the marker should be there; it is not recorded again.
	if t0, ok, err := firstTimestamp(ctx, p.Store, p.Key, trail.SystemOrganizationID); err != nil {
		return err
	} else if ok && now.Sub(t0) > LegacyWindow {
		// The marker was removed (trail fsck finds the gap in org_system's
		// log): nothing is recorded again; purges go on, with evidence.
		return nil
	}
	logs, err := p.Store.RetentionLogs(ctx)
	if err != nil {
		return err
	}
	for _, l := range logs {
		below, err := p.untimestamped(ctx, l.OrganizationID)
		if err != nil {
			return fmt.Errorf("purge evidence of %s: %w", l.OrganizationID, err)
		}
		if below == 0 {
			continue
		}
		n, err := p.Store.CountPurged(ctx, l.OrganizationID, below)
		if err != nil {
			return err
		}
		rec := trail.LegacyPurges{OrganizationID: l.OrganizationID, Below: below, Events: n}
		ev := trail.AuditEvent(ctx, trail.ActionPurgeLegacy, now, rec.Metadata(), trail.Target{ID: l.OrganizationID, Type: "organization"})
		if _, err := p.append(ctx, trail.SystemOrganizationID, ev); err != nil {
			return fmt.Errorf("purge evidence of %s: %w", l.OrganizationID, err)
		}
	}
	ev := trail.AuditEvent(ctx, trail.ActionPurgeEvidence, now, nil, trail.Target{ID: trail.SystemOrganizationID, Type: "organization"})
	_, err = p.append(ctx, trail.SystemOrganizationID, ev)
	return err
}

// untimestamped returns the tree size of the organization's newest
// checkpoint that carries no timestamp, 0 when none.
func (p *Purger) untimestamped(ctx context.Context, orgID string) (int64, error) {
	cp, err := p.Store.LatestCheckpoint(ctx, orgID)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if _, err := CheckpointTime([]byte(cp.Note), p.Key); errors.Is(err, ErrNoTimestamp) {
		return cp.Size, nil // none is timestamped yet
	}
	var below int64
	after := int64(-1)
	for after < cp.Size {
		cps, err := p.Store.FindCheckpoints(ctx, orgID, after, 1000)
		if err != nil {
			return 0, err
		}
		if len(cps) == 0 {
			break
		}
		for _, c := range cps {
			if _, err := CheckpointTime([]byte(c.Note), p.Key); errors.Is(err, ErrNoTimestamp) {
				below = c.Size
			} else {
				return below, nil // the first timestamped one: every later one is too
			}
		}
		after = cps[len(cps)-1].Size
	}
	return below, nil
}

// firstTimestamp returns the signed time of the organization's first
// timestamped checkpoint; ok is false when none is.
func firstTimestamp(ctx context.Context, store trail.LogStore, vkey, orgID string) (time.Time, bool, error) {
	after := int64(-1)
	for {
		cps, err := store.FindCheckpoints(ctx, orgID, after, 1000)
		if err != nil {
			return time.Time{}, false, err
		}
		if len(cps) == 0 {
			return time.Time{}, false, nil
		}
		for _, c := range cps {
			if t, err := CheckpointTime([]byte(c.Note), vkey); err == nil {
				return t, true, nil
			}
		}
		after = cps[len(cps)-1].Size
	}
}

// coveringTime returns the signed time of the first checkpoint that
// covers index; ok is false when none does or it has no timestamp.
func coveringTime(ctx context.Context, store trail.LogStore, vkey, orgID string, index int64) (time.Time, bool, error) {
	cps, err := store.FindCheckpoints(ctx, orgID, index, 1)
	if err != nil || len(cps) == 0 {
		return time.Time{}, false, err
	}
	t, err := CheckpointTime([]byte(cps[0].Note), vkey)
	if err != nil {
		return time.Time{}, false, nil
	}
	return t, true, nil
}
