package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/groupcommit"
)

// What both drivers do alike around their own SQL: written once here.

// KnownActions caches which (organization, action) pairs are in the
// organization's action catalogue, so that an append inserts a pair only
// the first time. The zero value is empty and ready.
type KnownActions struct {
	mu sync.Mutex
	m  map[string]map[string]bool
}

// Has reports whether the pair is known to be stored.
func (k *KnownActions) Has(org, action string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[org][action]
}

// Mark remembers pairs (organization, action) after their transaction
// committed.
func (k *KnownActions) Mark(pairs map[[2]string]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]map[string]bool{}
	}
	for p := range pairs {
		m := k.m[p[0]]
		if m == nil {
			m = map[string]bool{}
			k.m[p[0]] = m
		}
		m[p[1]] = true
	}
}

// DecodeEvent decodes a stored event document (numbers kept as written).
func DecodeEvent(data string) (*trail.Event, error) {
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	var ev trail.Event
	if err := dec.Decode(&ev); err != nil {
		return nil, fmt.Errorf("decode stored event: %w", err)
	}
	return &ev, nil
}

// ExpandActions replaces each "prefix.*" of a filter's actions by the
// organization's actions under prefix (read by the driver's actionsUnder,
// which gets the half-open range [prefix., prefix/)), and removes
// repeats, keeping the first of each.
func ExpandActions(ctx context.Context, actions []string, actionsUnder func(ctx context.Context, lo, hi string) ([]string, error)) ([]string, error) {
	var out []string
	for _, a := range actions {
		p, ok := strings.CutSuffix(a, ".*")
		if !ok {
			out = append(out, a)
			continue
		}
		names, err := actionsUnder(ctx, p+".", p+"/")
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
	}
	return Dedupe(out), nil
}

// Dedupe removes repeated values, keeping the first of each.
func Dedupe(vals []string) []string {
	seen := make(map[string]bool, len(vals))
	var out []string
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// AppendRequest is one caller's events on their way through a driver's
// group commit (internal/groupcommit): normalized and encoded once, with
// their de-duplication keys and the driver's search form S of each, in
// the caller's goroutine, so that the committers do less.
type AppendRequest[S any] struct {
	OrgID   string
	Inputs  []*trail.EventInput
	Encoded []*trail.EncodedInput
	Keys    [][32]byte // de-duplication keys (trail.EncodedInput.DedupeKey)
	Search  []S        // search form of trail.SearchText
	// Results and Err are the outcome, set by the driver's commit.
	Results []trail.AppendResult
	Err     error
}

// NewAppendRequest prepares inputs for a commit; search makes the
// driver's search form of an event's text.
func NewAppendRequest[S any](orgID string, inputs []*trail.EventInput, search func(text string) S) *AppendRequest[S] {
	r := &AppendRequest[S]{OrgID: orgID, Inputs: inputs, Encoded: make([]*trail.EncodedInput, len(inputs)), Keys: make([][32]byte, len(inputs)), Search: make([]S, len(inputs))}
	for i, in := range inputs {
		in.Normalize()
		r.Encoded[i] = in.Encode()
		r.Keys[i] = r.Encoded[i].DedupeKey(orgID)
		r.Search[i] = search(trail.SearchText(in.Stored("", orgID, 0, time.Time{})))
	}
	return r
}

// Size is how many events the request holds (groupcommit.Queue.Size).
func (r *AppendRequest[S]) Size() int { return len(r.Inputs) }

// Append is trail.EventService.AppendEvents over a driver's queue: it
// waits until the events' transaction has committed or failed.
func Append[S any](ctx context.Context, q *groupcommit.Queue[*AppendRequest[S]], orgID string, inputs []*trail.EventInput, search func(string) S) ([]trail.AppendResult, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	r := NewAppendRequest(orgID, inputs, search)
	if err := q.Do(ctx, r); err != nil {
		return nil, err
	}
	return r.Results, r.Err
}

// Row is how a driver reads the rows of a query whose handling is a
// rule: it scans each row into Dest, then calls Add.
type Row struct {
	Dest []any
	Add  func() error
}

// IndexRead is one read of an organization's indexes for fsck: What it
// reads (the driver's SQL is keyed by it; errors name it) and its Row.
type IndexRead struct {
	What string
	Row  Row
}

// Index reads, in order: rows (hour, action, n) of the hourly counts,
// (day, n) of the by-day index, (action) of the actions catalogue.
const (
	ReadHourlyCounts = "hourly counts"
	ReadByDay        = "the by-day index"
	ReadActions      = "the actions catalogue"
)

// IndexReads are the reads that fill ix's Counts, Days and Actions.
func IndexReads(ix *trail.LogIndexes) []IndexRead {
	var k trail.HourAction
	var day, n int64
	var a string
	return []IndexRead{
		{ReadHourlyCounts, Row{[]any{&k.Hour, &k.Action, &n}, func() error { ix.Counts[k] += n; return nil }}},
		{ReadByDay, Row{[]any{&day, &n}, func() error { ix.Days[day] = n; return nil }}},
		{ReadActions, Row{[]any{&a}, func() error { ix.Actions = append(ix.Actions, a); return nil }}},
	}
}

// BucketRow reads rows (bucket, count) into counts, whose first bucket
// is b0; a row outside counts is left out.
func BucketRow(counts []int64, b0 int64) Row {
	var b, c int64
	return Row{[]any{&b, &c}, func() error {
		if i := b - b0; i >= 0 && i < int64(len(counts)) {
			counts[i] += c
		}
		return nil
	}}
}

// ListQuery pages a list by its key (trail.ListFilter): it adds to base
// (a query ending in a WHERE clause) the key's bound, the order and the
// limit (one more row than the page, to know whether more follow).
// bound is the value compared with key, nil for the filter's own cursor;
// param writes the driver's n-th parameter.
func ListQuery(base, key string, args []any, f trail.ListFilter, bound any, param func(n int) string) (string, []any) {
	if c, greater, ok := f.Bound(); ok {
		op := "<"
		if greater {
			op = ">"
		}
		if bound == nil {
			bound = c
		}
		args = append(args, bound)
		base += " AND " + key + " " + op + " " + param(len(args))
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	return base + " ORDER BY " + key + " " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1), args
}

// RawEventRow reads rows (index, id, occurred_at in Unix nanoseconds,
// stored document) into events of orgID appended to *out.
func RawEventRow(orgID string, out *[]*trail.Event) Row {
	var idx, occurred int64
	var id, raw string
	return Row{[]any{&idx, &id, &occurred, &raw}, func() error {
		*out = append(*out, &trail.Event{OrganizationID: orgID, Index: idx, ID: id, OccurredAt: time.Unix(0, occurred).UTC(), Raw: raw})
		return nil
	}}
}

// EventPage is a page of events read with one more than limit: the extra
// one only says that more follow.
func EventPage(events []*trail.Event, limit int) *trail.EventPage {
	page := &trail.EventPage{Events: events}
	if len(events) > limit {
		page.Events, page.HasMore = events[:limit], true
	}
	return page
}

// MostlyRange reports whether keys are most of the range [lo, hi] they
// span (a page of one organization's events), which a driver reads with
// one range scan rather than key by key.
func MostlyRange(keys []int64) (lo, hi int64, ok bool) {
	lo, hi = slices.Min(keys), slices.Max(keys)
	return lo, hi, hi-lo < 2*int64(len(keys))
}

// Loader collects the events of a page read by their keys (a driver's
// row key, or their index) and gives them in the page's order, decoded
// or (Raw) as stored.
type Loader struct {
	keys []int64
	raw  bool
	by   map[int64]*trail.Event
}

// NewLoader loads the events of keys.
func NewLoader(keys []int64, raw bool) *Loader {
	l := &Loader{keys: keys, raw: raw, by: make(map[int64]*trail.Event, len(keys))}
	for _, k := range keys {
		l.by[k] = nil
	}
	return l
}

// Row reads rows (key, index, id, occurred_at in Unix nanoseconds,
// document), or without key (the index is the key); a row whose key is
// not in the page is left out.
func (l *Loader) Row(withKey bool) Row {
	var key, idx, occurred int64
	var id, data string
	dest := []any{&idx, &id, &occurred, &data}
	if withKey {
		dest = append([]any{&key}, dest...)
	}
	return Row{dest, func() error {
		if !withKey {
			key = idx
		}
		if _, wanted := l.by[key]; !wanted {
			return nil // in the range, not in the page
		}
		if l.raw {
			l.by[key] = &trail.Event{ID: id, Index: idx, OccurredAt: time.Unix(0, occurred).UTC(), Raw: data}
			return nil
		}
		ev, err := DecodeEvent(data)
		l.by[key] = ev
		return err
	}}
}

// Events returns the events read, in the keys' order.
func (l *Loader) Events() []*trail.Event {
	out := make([]*trail.Event, 0, len(l.keys))
	for _, k := range l.keys {
		if ev := l.by[k]; ev != nil {
			out = append(out, ev)
		}
	}
	return out
}

// Found returns a row a driver looked up: v, or notFound when there was
// no row (err is ErrNotFound), or err with what was being done.
func Found[T any](v T, err error, notFound error, doing string) (T, error) {
	var zero T
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, ErrNotFound):
		return zero, notFound
	}
	return zero, fmt.Errorf("%s: %w", doing, err)
}

// WithCheckpoint sets an export's checkpoint, the one of its tree size
// (nil while it has none), found by the driver's find.
func WithCheckpoint(ctx context.Context, ex *trail.Export, treeSize *int64, find func(ctx context.Context, orgID string, size int64) (*trail.Checkpoint, error)) (*trail.Export, error) {
	if treeSize != nil {
		cp, err := find(ctx, ex.OrganizationID, *treeSize)
		if err != nil {
			return nil, fmt.Errorf("export %s: checkpoint: %w", ex.ID, err)
		}
		ex.Checkpoint = cp
	}
	return ex, nil
}

// Histogram is a count of events in buckets (trail.EventService's
// CountEvents) that a driver fills with its SQL: which parts of the range
// it counts from the events and which from the hourly counts is decided
// here (Count).
type Histogram struct {
	Counts            []int64
	B0                int64 // the first bucket's number since the epoch
	Start, End, Width int64 // the range and a bucket's width, in nanoseconds
}

// NewHistogram checks the filter's range and bucket (trail.Buckets).
func NewHistogram(f trail.EventFilter, bucket time.Duration) (*Histogram, error) {
	n, err := trail.Buckets(f, bucket)
	if err != nil {
		return nil, err
	}
	h := &Histogram{Counts: make([]int64, n), Width: int64(bucket), Start: f.RangeStart.UnixNano(), End: f.RangeEnd.UnixNano()}
	h.B0 = h.Start / h.Width
	return h, nil
}

// Row reads rows (bucket, count) into the histogram.
func (h *Histogram) Row() Row { return BucketRow(h.Counts, h.B0) }

// OnlyActions reports whether f filters by nothing but actions (and its
// range): hasText says whether its q asks for words, as the driver
// reads q.
func OnlyActions(f trail.EventFilter, hasText bool) bool {
	return len(f.ActorIDs)+len(f.ActorNames)+len(f.ActorTypes)+len(f.TargetIDs)+len(f.TargetTypes) == 0 && !hasText
}

// hourNanos is an hour in nanoseconds.
const hourNanos = int64(time.Hour)

// Count fills the histogram: with buckets of whole hours and only
// actions as filters, the whole hours within the range are summed from
// the hourly counts (hours, [h0, h1) in hours since the epoch) and only
// the range's ragged ends (under an hour each, edge) are counted from the
// events; otherwise every event of the range is counted (events).
func (h *Histogram) Count(onlyActions bool, events func(from, to int64, edge bool) error, hours func(h0, h1 int64) error) ([]int64, error) {
	h0, h1 := (h.Start+hourNanos-1)/hourNanos, h.End/hourNanos
	if h.Width%hourNanos != 0 || !onlyActions || h0 >= h1 {
		if h.Start < h.End {
			if err := events(h.Start, h.End, false); err != nil {
				return nil, err
			}
		}
		return h.Counts, nil
	}
	for _, r := range [][2]int64{{h.Start, h0 * hourNanos}, {h1 * hourNanos, h.End}} {
		if r[0] < r[1] {
			if err := events(r[0], r[1], true); err != nil {
				return nil, err
			}
		}
	}
	if err := hours(h0, h1); err != nil {
		return nil, err
	}
	return h.Counts, nil
}

// FindEvent is trail.EventService's FindEventByID over a driver's
// lookups: doc reads the stored document (ErrNotFound when there is
// none); else purged reads the purged event's organization and index, and
// leaf its leaf hash. Another organization's event is not found.
func FindEvent(ctx context.Context, orgID, id string, doc func(context.Context) (string, error),
	purged, leaf func(ctx context.Context, ev *trail.Event) error) (*trail.Event, error) {
	data, err := doc(ctx)
	switch {
	case err == nil:
		return DecodeEvent(data)
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("find event: %w", err)
	}
	ev := &trail.Event{ID: id, Purged: true}
	err = purged(ctx, ev)
	switch {
	case errors.Is(err, ErrNotFound) || err == nil && orgID != "" && ev.OrganizationID != orgID:
		return nil, trail.ErrEventNotFound(id)
	case err != nil:
		return nil, fmt.Errorf("find event: %w", err)
	}
	return ev, leaf(ctx, ev)
}

// Migrations are a driver's migration files (migrations/*.sql in fsys),
// in the order they apply: the first is version 1.
func Migrations(fsys fs.FS) []string {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err) // the pattern is valid: Glob cannot fail
	}
	sort.Strings(names)
	return names
}

// DefaultMaxCommitEvents is the most events one transaction takes.
const DefaultMaxCommitEvents = groupcommit.DefaultMaxEvents

// AppendQueue is a driver's group-commit queue of appends.
type AppendQueue[S any] = groupcommit.Queue[*AppendRequest[S]]

// StartAppends starts q with committers that write batches of at most
// maxEvents events with commit; *onCommit (the driver's DB.OnCommit, read
// at each batch, as it may be set after the start), if set, is told of
// each batch, and after, if set, runs after it.
func StartAppends[S any](q *AppendQueue[S], committers, maxEvents int, commit func([]*AppendRequest[S]), onCommit *func(events, requests int, took time.Duration), after func()) {
	*q = AppendQueue[S]{Size: (*AppendRequest[S]).Size, MaxEvents: maxEvents, Commit: commit,
		Committed: func(events, requests int, took time.Duration) {
			if f := *onCommit; f != nil {
				f(events, requests, took)
			}
			if after != nil {
				after()
			}
		}}
	q.Start(groupcommit.DefaultLength, committers)
}
