package store

import (
	"context"
	"encoding/json"
	"fmt"
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

// Mark remembers pairs after their transaction committed.
func (k *KnownActions) Mark(pairs [][2]string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]map[string]bool{}
	}
	for _, p := range pairs {
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
