package trail

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// A retention purge removes an event's contents only with evidence that
// anyone holding the verifier key can check (SPEC §6): a purge at time T
// under retention R may remove the events below the size of a checkpoint
// whose signed time is at most T − R, that occurred before T − R, and it is
// recorded in the organization's own log first, as an ActionEventsPurged
// event whose metadata is a PurgeRecord. Events purged before Trail kept
// this evidence are listed, per organization, by ActionPurgeLegacy events
// in org_system's log, written once, before the ActionPurgeEvidence event
// that marks the change.
const (
	// ActionEventsPurged records a purge run in the organization's log,
	// before the purge removes anything.
	ActionEventsPurged = "audit_log_events.purged"
	// ActionPurgeLegacy records, in org_system, how many of an
	// organization's events were purged before purges kept evidence.
	ActionPurgeLegacy = "audit_log_purge.legacy_recorded"
	// ActionPurgeEvidence marks, in org_system, that every purge from then
	// on keeps evidence; ActionPurgeLegacy events after the first of these
	// count for nothing.
	ActionPurgeEvidence = "audit_log_purge.evidence_started"
)

// ReservedAction reports whether action names one of Trail's own events
// that the evidence of purges rests on (a purge record, a change of
// retention, the records of events purged before purges kept evidence):
// clients may not send events of these actions (SPEC §3), so that fsck
// and verify never take a client's event for Trail's.
func ReservedAction(action string) bool {
	switch action {
	case ActionEventsPurged, ActionPurgeLegacy, ActionPurgeEvidence, ActionRetentionUpdated:
		return true
	}
	return false
}

// RecordSkew bounds how much later than the signed timestamp of the first
// checkpoint that covers it an own record may say it occurred: the
// timestamp is in whole seconds, and the checkpoint is signed after the
// record is written. A record that says a later time was not written when
// it claims (it could otherwise claim a later cutoff, and purge more).
const RecordSkew = 2 * time.Second

// PurgeCaller is the caller of a purge's own events.
var PurgeCaller = &Caller{
	Actor:   Actor{ID: "trail-retention", Type: "system", Name: "retention purge"},
	Context: EventContext{Location: "local"},
}

// PurgeBound says which events of an organization a purge may remove:
// those below index Below (the size of a checkpoint whose signed time is
// at most Cutoff) that occurred before Cutoff.
type PurgeBound struct {
	OrganizationID string
	Cutoff         time.Time
	Below          int64
	Keep           []string // actions whose events are never purged
}

// PurgeRecord is the metadata of an ActionEventsPurged event: under which
// retention, up to which time and index, on the strength of which
// checkpoint. The event's occurred_at is the purge's time T; Cutoff is
// T − RetentionDays days.
type PurgeRecord struct {
	RetentionDays  int
	Cutoff         time.Time
	Below          int64     // the evidence checkpoint's tree size
	CheckpointTime time.Time // its signed time, at most Cutoff
}

// Metadata returns the record as event metadata.
func (r PurgeRecord) Metadata() Metadata {
	return Metadata{
		"retention_period_in_days": json.Number(strconv.Itoa(r.RetentionDays)),
		"purged_before":            r.Cutoff.UTC().Format(time.RFC3339Nano),
		"below_index":              json.Number(strconv.FormatInt(r.Below, 10)),
		"checkpoint_time":          r.CheckpointTime.UTC().Format(time.RFC3339),
	}
}

// ParsePurgeRecord reads the record of an ActionEventsPurged event and
// checks it against the event's own time: Cutoff must be occurredAt less
// the retention.
func ParsePurgeRecord(occurredAt time.Time, md Metadata) (PurgeRecord, error) {
	var r PurgeRecord
	days, err := mdInt(md, "retention_period_in_days")
	if err != nil {
		return r, err
	}
	r.RetentionDays = int(days)
	if r.Below, err = mdInt(md, "below_index"); err != nil {
		return r, err
	}
	if r.Cutoff, err = mdTime(md, "purged_before"); err != nil {
		return r, err
	}
	if r.CheckpointTime, err = mdTime(md, "checkpoint_time"); err != nil {
		return r, err
	}
	if !ValidRetention(r.RetentionDays) || r.Below < 0 {
		return r, fmt.Errorf("a purge record with retention %d days below index %d", r.RetentionDays, r.Below)
	}
	if want := occurredAt.Add(-RetentionPeriod(r.RetentionDays)); !r.Cutoff.Equal(want) {
		return r, fmt.Errorf("a purge record at %s under %d days purges before %s, not %s", occurredAt.Format(time.RFC3339Nano), r.RetentionDays, r.Cutoff.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if r.CheckpointTime.After(r.Cutoff) {
		return r, fmt.Errorf("a purge record names a checkpoint of %s, after its cutoff %s", r.CheckpointTime.Format(time.RFC3339), r.Cutoff.Format(time.RFC3339Nano))
	}
	return r, nil
}

// ErrNoCheckpointBefore is LogStore.CheckpointAtOrBefore's ENOTFOUND.
func ErrNoCheckpointBefore(orgID string, t time.Time) error {
	return Errorf(ENOTFOUND, "No checkpoint of '%s' before %s.", orgID, t.Format(time.RFC3339))
}

// ParseRetentionChange reads the metadata of an ActionRetentionUpdated
// event: the retention it set and the one before (0 when not recorded).
func ParseRetentionChange(md Metadata) (days, previous int, err error) {
	d, err := mdInt(md, "retention_period_in_days")
	if err != nil {
		return 0, 0, err
	}
	p, _ := mdInt(md, "previous_retention_period_in_days")
	return int(d), int(p), nil
}

// RetentionPeriod is a retention of days as a duration.
func RetentionPeriod(days int) time.Duration { return time.Duration(days) * 24 * time.Hour }

// LegacyPurges is the metadata of an ActionPurgeLegacy event, whose one
// target is the organization: Events of its events below index Below were
// purged before purges kept evidence.
type LegacyPurges struct {
	OrganizationID string
	Below          int64
	Events         int64
}

// Metadata returns the record as event metadata.
func (l LegacyPurges) Metadata() Metadata {
	return Metadata{
		"below_index": json.Number(strconv.FormatInt(l.Below, 10)),
		"events":      json.Number(strconv.FormatInt(l.Events, 10)),
	}
}

// ParseLegacyPurges reads an ActionPurgeLegacy event.
func ParseLegacyPurges(ev *Event) (LegacyPurges, error) {
	l := LegacyPurges{}
	if len(ev.Targets) != 1 || ev.Targets[0].Type != "organization" {
		return l, fmt.Errorf("a legacy purge record without its organization")
	}
	l.OrganizationID = ev.Targets[0].ID
	var err error
	if l.Below, err = mdInt(ev.Metadata, "below_index"); err != nil {
		return l, err
	}
	if l.Events, err = mdInt(ev.Metadata, "events"); err != nil {
		return l, err
	}
	return l, nil
}

func mdInt(md Metadata, key string) (int64, error) {
	var s string
	switch v := md[key].(type) {
	case json.Number:
		s = string(v)
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("metadata %s: want an integer", key)
	}
	return n, nil
}

func mdTime(md Metadata, key string) (time.Time, error) {
	s, _ := md[key].(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("metadata %s: want an RFC 3339 time", key)
	}
	return t.UTC(), nil
}
