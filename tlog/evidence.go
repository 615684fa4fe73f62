package tlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/trail-audit/trail"
)

// RetentionRace is how long before a purge record a change of retention
// may still have been unknown to the purge that wrote it: a record's
// retention must be at least the smallest in force within this window.
const RetentionRace = time.Minute

// purgeEvidence collects, while fsck scans a log, its purged events and the
// purge records that must cover them (SPEC §6).
type purgeEvidence struct {
	orgID string
	runs  [][2]int64 // purged indexes, as [from, to) runs
	below int64      // every purged index below it is covered by a valid record
	// retention in force: changes by time, from the log's own events
	retention []retentionChange
	records   []purgeRecordRow
}

type retentionChange struct {
	at   time.Time
	days int
}

type purgeRecordRow struct {
	id         string
	idx        int64
	occurredAt time.Time
	rec        trail.PurgeRecord
	err        error
}

func newPurgeEvidence(orgID string) *purgeEvidence {
	return &purgeEvidence{orgID: orgID}
}

func (e *purgeEvidence) purged(i int64) {
	if n := len(e.runs); n > 0 && e.runs[n-1][1] == i {
		e.runs[n-1][1] = i + 1
		return
	}
	e.runs = append(e.runs, [2]int64{i, i + 1})
}

// row notes a stored event, in the signed tree, that says what the
// retention is or was purged; ev is its document.
func (e *purgeEvidence) row(row *trail.LogRow, ev *trail.Event) {
	switch ev.Action {
	case trail.ActionRetentionUpdated:
		days, prev, err := trail.ParseRetentionChange(ev.Metadata)
		if err != nil {
			return // not the shape of Trail's own
		}
		if len(e.retention) == 0 && prev > 0 {
			e.retention = append(e.retention, retentionChange{days: prev})
		}
		e.retention = append(e.retention, retentionChange{at: ev.OccurredAt, days: days})
	case trail.ActionEventsPurged:
		// Clients may not send this action (trail.ReservedAction); one
		// appended behind Trail's back is checked like Trail's own.
		rec, err := trail.ParsePurgeRecord(ev.OccurredAt, ev.Metadata)
		if err == nil && ev.OccurredAt.After(ev.ReceivedAt) {
			// Trail writes its record at the purge's time, before it is
			// received; a client's event of the same shape may say a later
			// time, which would purge more.
			err = fmt.Errorf("a purge record that occurred (%s) after it was received (%s)", ev.OccurredAt.Format(time.RFC3339Nano), ev.ReceivedAt.Format(time.RFC3339Nano))
		}
		e.records = append(e.records, purgeRecordRow{id: ev.ID, idx: row.Index, occurredAt: ev.OccurredAt, rec: rec, err: err})
	}
}

// minRetention returns the smallest retention in force within
// [t − RetentionRace, t].
func (e *purgeEvidence) minRetention(t time.Time) int {
	days := trail.DefaultRetentionDays
	if len(e.retention) > 0 && e.retention[0].at.IsZero() {
		days = e.retention[0].days
	}
	lowest := -1
	for _, c := range e.retention {
		if c.at.IsZero() {
			continue
		}
		if c.at.After(t) {
			break
		}
		if !c.at.After(t.Add(-RetentionRace)) {
			days = c.days // in force at the window's start
			continue
		}
		if lowest < 0 || c.days < lowest {
			lowest = c.days
		}
	}
	if lowest < 0 || days < lowest {
		return days
	}
	return lowest
}

// check validates the records and that they (or the legacy record) cover
// every purged event. A record that does not hold authorizes nothing and
// is a warning (the events it would cover are then purged without
// evidence, which fails).
func (e *purgeEvidence) check(ctx context.Context, store trail.LogStore, vkey string, legacy trail.LegacyPurges) ([]string, error) {
	bad := func(index int64, id, format string, args ...any) error {
		return &FsckProblem{OrganizationID: e.orgID, Index: index, ID: id, Reason: fmt.Sprintf(format, args...)}
	}
	var warnings []string
	slices.SortStableFunc(e.retention, func(a, b retentionChange) int { return a.at.Compare(b.at) })
	for _, r := range e.records {
		err := r.err
		if err == nil {
			err = e.holds(ctx, store, vkey, r)
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("event index %d (id %s): a purge record that authorizes nothing: %v", r.idx, r.id, err))
			continue
		}
		e.below = max(e.below, r.rec.Below)
	}
	var legacyUsed int64
	for _, run := range e.runs {
		from := max(run[0], e.below)
		if from >= run[1] {
			continue
		}
		if legacy.OrganizationID == "" || from >= legacy.Below {
			return warnings, bad(from, "", "purged without evidence: no purge record in the log covers it (a purge at time T may remove only events below a checkpoint whose signed time is at most T less the retention): its contents were removed behind Trail's back")
		}
		to := min(run[1], legacy.Below)
		legacyUsed += to - from
		if to < run[1] {
			return warnings, bad(to, "", "purged without evidence: no purge record in the log covers it, and it is past the events purged before purges kept evidence (below index %d)", legacy.Below)
		}
	}
	if legacyUsed > legacy.Events {
		return warnings, bad(-1, "", "%d events are purged without a purge record below index %d, but org_system's log records %d purged before purges kept evidence: some were removed behind Trail's back", legacyUsed, legacy.Below, legacy.Events)
	}
	return warnings, nil
}

// holds checks a purge record against the log: its retention was in
// force, it names a checkpoint before itself that is signed and
// timestamped early enough, and it was written when it says (no later
// than the first checkpoint that covers it was signed).
func (e *purgeEvidence) holds(ctx context.Context, store trail.LogStore, vkey string, r purgeRecordRow) error {
	if min := e.minRetention(r.occurredAt); r.rec.RetentionDays < min {
		return fmt.Errorf("its retention is %d days, but the log's retention then was %d days", r.rec.RetentionDays, min)
	}
	if r.rec.Below > r.idx {
		return fmt.Errorf("it names a checkpoint of tree size %d, beyond itself", r.rec.Below)
	}
	signed, ok, err := coveringTime(ctx, store, vkey, e.orgID, r.idx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("no timestamped checkpoint covers it")
	}
	if r.occurredAt.After(signed.Add(trail.RecordSkew)) {
		return fmt.Errorf("it says it occurred at %s, after the first checkpoint that covers it was signed (%s)", r.occurredAt.Format(time.RFC3339Nano), signed.Format(time.RFC3339))
	}
	cp, err := store.FindCheckpoint(ctx, e.orgID, r.rec.Below)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		return fmt.Errorf("the checkpoint of tree size %d it names is not stored", r.rec.Below)
	} else if err != nil {
		return err
	}
	if err := checkEvidence(cp.Note, vkey, r.rec); err != nil {
		return fmt.Errorf("its checkpoint (tree size %d): %v", r.rec.Below, err)
	}
	return nil
}

// checkEvidence checks the checkpoint a purge record names: signed by the
// log's key, timestamped no later than the record's cutoff, at the time
// the record states.
func checkEvidence(note, vkey string, rec trail.PurgeRecord) error {
	opened, err := OpenCheckpoint([]byte(note), vkey)
	if err != nil {
		return err
	}
	if opened.Size != rec.Below {
		return fmt.Errorf("it signs tree size %d", opened.Size)
	}
	t, err := CheckpointTime([]byte(note), vkey)
	if err != nil {
		return err
	}
	if t.After(rec.Cutoff) {
		return fmt.Errorf("it was signed at %s, after the purge's cutoff %s", t.Format(time.RFC3339), rec.Cutoff.Format(time.RFC3339Nano))
	}
	if !t.Equal(rec.CheckpointTime) {
		return fmt.Errorf("it was signed at %s, the record says %s", t.Format(time.RFC3339), rec.CheckpointTime.Format(time.RFC3339))
	}
	return nil
}

// LoadLegacyPurges reads, from org_system's log, the first record of each
// organization's events purged before purges kept evidence, among those
// before the first trail.ActionPurgeEvidence marker and signed within
// LegacyWindow of org_system's first timestamped checkpoint (the upgrade:
// one written later, or appended behind Trail's back since, counts for
// nothing).
func LoadLegacyPurges(ctx context.Context, events trail.EventService, logs trail.LogStore, vkey string) (map[string]trail.LegacyPurges, error) {
	out := map[string]trail.LegacyPurges{}
	t0, ok, err := firstTimestamp(ctx, logs, vkey, trail.SystemOrganizationID)
	if err != nil || !ok {
		return out, err
	}
	f := trail.EventFilter{OrganizationID: trail.SystemOrganizationID, Actions: []string{trail.ActionPurgeLegacy, trail.ActionPurgeEvidence},
		Ascending: true, Limit: 1000}
	for {
		page, err := events.FindEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			if ev.Actor.ID != trail.PurgeCaller.Actor.ID || ev.Actor.Type != trail.PurgeCaller.Actor.Type {
				continue
			}
			if ev.Action == trail.ActionPurgeEvidence {
				return out, nil
			}
			l, err := trail.ParseLegacyPurges(ev)
			if err != nil {
				continue
			}
			if _, seen := out[l.OrganizationID]; seen {
				continue
			}
			signed, ok, err := coveringTime(ctx, logs, vkey, trail.SystemOrganizationID, ev.Index)
			if err != nil {
				return nil, err
			}
			if ok && !signed.After(t0.Add(LegacyWindow)) {
				out[l.OrganizationID] = l
			}
		}
		if !page.HasMore || len(page.Events) == 0 {
			return out, nil
		}
		after := page.Events[len(page.Events)-1].Index
		f.After = &after
	}
}

// PurgeEvidence is what an export carries beside its purged events, on the
// first purged line of each page (member "purge_evidence"), so that
// Verify can tell a purge Trail recorded from contents removed behind its
// back (SPEC §6).
type PurgeEvidence struct {
	// Record is the purge record with the largest evidence checkpoint
	// among those in the export's tree, as an export line (the stored
	// event with its proof in the export's checkpoint), and Checkpoint
	// the signed, timestamped checkpoint it names.
	Record     json.RawMessage `json:"record,omitempty"`
	Checkpoint string          `json:"checkpoint,omitempty"`
	// Signed is the first checkpoint that covers the record, whose
	// timestamp shows the record was written when it says.
	Signed string `json:"signed,omitempty"`
	// Legacy is org_system's record of the organization's events purged
	// before purges kept evidence, with its proof in Checkpoint, a
	// checkpoint of org_system's log.
	Legacy *LegacyEvidence `json:"legacy,omitempty"`
}

// LegacyEvidence is a record of org_system's log with its proof.
type LegacyEvidence struct {
	Record     json.RawMessage `json:"record"`
	Checkpoint string          `json:"checkpoint"`
}

// FindPurgeEvidence gathers the evidence for the purged events of an
// organization's export made against the checkpoint of size treeSize;
// nil when the organization has none.
//
// vkey, when given, checks the timestamps of the candidate records'
// checkpoints, so that a record that does not hold is not chosen.
func FindPurgeEvidence(ctx context.Context, events trail.EventService, logs trail.LogStore, vkey, orgID string, treeSize int64) (*PurgeEvidence, error) {
	out := &PurgeEvidence{}
	var best *trail.Event
	var bestBelow int64
	var bestSigned string
	f := trail.EventFilter{OrganizationID: orgID, Actions: []string{trail.ActionEventsPurged}, Ascending: true, Limit: 1000}
	for {
		page, err := events.FindEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			if ev.Index >= treeSize {
				continue
			}
			rec, err := trail.ParsePurgeRecord(ev.OccurredAt, ev.Metadata)
			if err != nil || rec.Below <= bestBelow || rec.Below > ev.Index || ev.OccurredAt.After(ev.ReceivedAt) {
				continue
			}
			cps, err := logs.FindCheckpoints(ctx, orgID, ev.Index, 1)
			if err != nil {
				return nil, err
			}
			if len(cps) == 0 || cps[0].Size > treeSize {
				continue // not signed yet within the export's tree
			}
			if cp, err := logs.FindCheckpoint(ctx, orgID, rec.Below); err != nil {
				continue
			} else if vkey != "" {
				if checkEvidence(cp.Note, vkey, rec) != nil {
					continue
				}
				if t, err := CheckpointTime([]byte(cps[0].Note), vkey); err != nil || ev.OccurredAt.After(t.Add(trail.RecordSkew)) {
					continue
				}
			}
			best, bestBelow, bestSigned = ev, rec.Below, cps[0].Note
		}
		if !page.HasMore || len(page.Events) == 0 {
			break
		}
		after := page.Events[len(page.Events)-1].Index
		f.After = &after
	}
	if best != nil {
		line, err := provenLine(ctx, events, logs, orgID, best, treeSize)
		if err != nil {
			return nil, err
		}
		cp, err := logs.FindCheckpoint(ctx, orgID, bestBelow)
		if err != nil {
			return nil, fmt.Errorf("purge evidence: %w", err)
		}
		out.Record, out.Checkpoint, out.Signed = line, cp.Note, bestSigned
	}
	legacy, err := events.FindEvents(ctx, trail.EventFilter{OrganizationID: trail.SystemOrganizationID, Actions: []string{trail.ActionPurgeLegacy},
		TargetIDs: []string{orgID}, Ascending: true, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(legacy.Events) == 1 {
		scp, err := logs.LatestCheckpoint(ctx, trail.SystemOrganizationID)
		if err != nil {
			return nil, fmt.Errorf("purge evidence: %w", err)
		}
		if legacy.Events[0].Index < scp.Size {
			line, err := provenLine(ctx, events, logs, trail.SystemOrganizationID, legacy.Events[0], scp.Size)
			if err != nil {
				return nil, err
			}
			out.Legacy = &LegacyEvidence{Record: line, Checkpoint: scp.Note}
		}
	}
	if out.Record == nil && out.Legacy == nil {
		return nil, nil
	}
	return out, nil
}

// provenLine returns an event as stored, with its proof in the tree of
// treeSize, as an export line without its newline.
func provenLine(ctx context.Context, events trail.EventService, logs trail.LogStore, orgID string, ev *trail.Event, treeSize int64) (json.RawMessage, error) {
	idx := ev.Index - 1
	page, err := events.FindEvents(ctx, trail.EventFilter{OrganizationID: orgID, Raw: true, Ascending: true, Limit: 1, After: &idx})
	if err != nil {
		return nil, err
	}
	if len(page.Events) != 1 || page.Events[0].Index != ev.Index {
		return nil, fmt.Errorf("purge evidence: event %d of %s not found", ev.Index, orgID)
	}
	hashes, err := NewBatchProver(logs, orgID, treeSize).Prove(ctx, ev.Index)
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimRight([]byte(page.Events[0].Raw), " \n")
	proof, err := json.Marshal(lineProof{TreeSize: treeSize, Hashes: hashes})
	if err != nil {
		return nil, err
	}
	b := append(raw[:len(raw)-1:len(raw)-1], `,"proof":`...)
	b = append(b, proof...)
	return append(b, '}'), nil
}

// evidenceCheck is what Verify learned of the purge evidence of a file.
type evidenceCheck struct {
	below        int64 // purged events below it are covered by a valid record
	legacyBelow  int64
	legacyEvents int64
	legacyUsed   int64
	seen         map[string]bool // evidence objects already checked, verbatim
}

// add checks an evidence object against the export's checkpoint cp.
func (c *evidenceCheck) add(raw json.RawMessage, cp *OpenedCheckpoint, vkey string) error {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[string(raw)] {
		return nil
	}
	var e PurgeEvidence
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("purge_evidence: %v", err)
	}
	orgID := cp.OrganizationID()
	if e.Record != nil {
		ev, err := provenEvent(e.Record, cp)
		if err != nil {
			return fmt.Errorf("purge_evidence record: %v", err)
		}
		if ev.OrganizationID != orgID || ev.Action != trail.ActionEventsPurged || ev.Actor.ID != trail.PurgeCaller.Actor.ID || ev.Actor.Type != trail.PurgeCaller.Actor.Type {
			return fmt.Errorf("purge_evidence record: index %d is not a purge record of %s", ev.Index, orgID)
		}
		rec, err := trail.ParsePurgeRecord(ev.OccurredAt, ev.Metadata)
		if err != nil {
			return fmt.Errorf("purge_evidence record: %v", err)
		}
		if ev.OccurredAt.After(ev.ReceivedAt) || rec.Below > ev.Index {
			return fmt.Errorf("purge_evidence record: index %d does not hold as a purge record", ev.Index)
		}
		signed, err := OpenCheckpoint([]byte(e.Signed), vkey)
		if err != nil {
			return fmt.Errorf("purge_evidence signed: %v", err)
		}
		if signed.Origin != cp.Origin || signed.Size <= ev.Index {
			return fmt.Errorf("purge_evidence signed: not a checkpoint of this log that covers index %d", ev.Index)
		}
		if t, err := CheckpointTime([]byte(e.Signed), vkey); err != nil {
			return fmt.Errorf("purge_evidence signed: %v", err)
		} else if ev.OccurredAt.After(t.Add(trail.RecordSkew)) {
			return fmt.Errorf("purge_evidence record: index %d says it occurred at %s, after a checkpoint that covers it was signed (%s)", ev.Index, ev.OccurredAt.Format(time.RFC3339Nano), t.Format(time.RFC3339))
		}
		opened, err := OpenCheckpoint([]byte(e.Checkpoint), vkey)
		if err != nil {
			return fmt.Errorf("purge_evidence checkpoint: %v", err)
		}
		if opened.Origin != cp.Origin {
			return fmt.Errorf("purge_evidence checkpoint: of log %q, not %q", opened.Origin, cp.Origin)
		}
		if err := checkEvidence(e.Checkpoint, vkey, rec); err != nil {
			return fmt.Errorf("purge_evidence checkpoint: %v", err)
		}
		c.below = max(c.below, rec.Below)
	}
	if e.Legacy != nil {
		scp, err := OpenCheckpoint([]byte(e.Legacy.Checkpoint), vkey)
		if err != nil {
			return fmt.Errorf("purge_evidence legacy checkpoint: %v", err)
		}
		if want := strings.TrimSuffix(cp.Origin, orgID) + trail.SystemOrganizationID; scp.Origin != want {
			return fmt.Errorf("purge_evidence legacy checkpoint: of log %q, not %q", scp.Origin, want)
		}
		ev, err := provenEvent(e.Legacy.Record, scp)
		if err != nil {
			return fmt.Errorf("purge_evidence legacy record: %v", err)
		}
		if ev.Action != trail.ActionPurgeLegacy || ev.Actor.ID != trail.PurgeCaller.Actor.ID {
			return fmt.Errorf("purge_evidence legacy record: index %d is not a legacy purge record", ev.Index)
		}
		l, err := trail.ParseLegacyPurges(ev)
		if err != nil || l.OrganizationID != orgID {
			return fmt.Errorf("purge_evidence legacy record: index %d is not of %s", ev.Index, orgID)
		}
		if c.legacyBelow != 0 && (l.Below != c.legacyBelow || l.Events != c.legacyEvents) {
			return fmt.Errorf("purge_evidence legacy record: two different records")
		}
		c.legacyBelow, c.legacyEvents = l.Below, l.Events
	}
	c.seen[string(raw)] = true
	return nil
}

// covers checks a purged event's index against the evidence seen so far.
func (c *evidenceCheck) covers(index int64) error {
	if index < c.below {
		return nil
	}
	if index < c.legacyBelow {
		c.legacyUsed++
		if c.legacyUsed > c.legacyEvents {
			return fmt.Errorf("purged without evidence: more purged events than the %d org_system's log records as purged before purges kept evidence", c.legacyEvents)
		}
		return nil
	}
	return errors.New("purged without evidence: no purge record in the file covers it (a purge at time T may remove only events below a checkpoint whose signed time is at most T less the retention): its contents were removed behind Trail's back")
}

// provenEvent reads an export line of an event and checks that it is in
// the checkpoint's tree at its index.
func provenEvent(line json.RawMessage, cp *OpenedCheckpoint) (*trail.Event, error) {
	members, err := parseObject(line)
	if err != nil {
		return nil, err
	}
	leaf, err := leafHashMembers(members)
	if err != nil {
		return nil, err
	}
	var ev trail.Event
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	var lp lineProof
	if err := json.Unmarshal(members["proof"], &lp); err != nil || lp.TreeSize != cp.Size {
		return nil, fmt.Errorf("index %d has no proof in the checkpoint of tree size %d", ev.Index, cp.Size)
	}
	if ev.Index < 0 || ev.Index >= cp.Size || proof.VerifyInclusion(hasher, uint64(ev.Index), uint64(cp.Size), leaf[:], lp.Hashes, cp.Root[:]) != nil {
		return nil, fmt.Errorf("index %d is not in the checkpoint's tree", ev.Index)
	}
	return &ev, nil
}
