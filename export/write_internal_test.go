package export

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/trail-audit/trail"
)

// purgingLog is a log of n events in memory whose oldest events are
// purged, a few at a time, each time the export reads a page of live
// events: what retention does to an export that runs for a while.
type purgingLog struct {
	trail.EventService
	trail.LogStore
	mu     sync.Mutex
	n      int64
	purged map[int64]bool
	next   int64 // the next index to purge
	step   int64 // how many each read purges
}

func (l *purgingLog) purge() {
	for k := int64(0); k < l.step && l.next < l.n; k++ {
		l.purged[l.next] = true
		l.next++
	}
}

func (l *purgingLog) FindEvents(_ context.Context, f trail.EventFilter) (*trail.EventPage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.purge() // after this read: the next page's cursor may be gone
	start := int64(0)
	if f.After != nil {
		if !f.Raw && l.purged[*f.After] {
			return nil, trail.Errorf(trail.EINVALID, "The cursor does not point into this organization's log.")
		}
		start = *f.After + 1
	}
	page := &trail.EventPage{}
	for i := start; i < l.n; i++ {
		if l.purged[i] {
			continue
		}
		if len(page.Events) == f.Limit {
			page.HasMore = true
			break
		}
		page.Events = append(page.Events, &trail.Event{ID: fmt.Sprint(i), Index: i, Raw: "{}"})
	}
	return page, nil
}

func (l *purgingLog) FindPurgedEvents(_ context.Context, f trail.PurgedEventFilter) ([]*trail.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*trail.Event
	for i := f.After + 1; i < f.Below && len(out) < f.Limit; i++ {
		if l.purged[i] {
			out = append(out, &trail.Event{ID: fmt.Sprint(i), Index: i, Purged: true})
		}
	}
	return out, nil
}

// TestReadPages_PurgeMeanwhile: while an NDJSON export reads, retention
// purges events behind and ahead of it, its cursor included. Every index
// is written once, in order, none lost, none repeated.
func TestReadPages_PurgeMeanwhile(t *testing.T) {
	for _, step := range []int64{0, 1, 7, 999, 1000, 2500} {
		t.Run(fmt.Sprint(step), func(t *testing.T) {
			const n = 10_500
			l := &purgingLog{n: n, purged: map[int64]bool{}, step: step}
			// Some were purged before the export started.
			l.step = 300
			l.purge()
			l.step = step
			ex := &trail.Export{OrganizationID: "org_1", Format: trail.ExportNDJSON, Checkpoint: &trail.Checkpoint{Size: n}}
			var got []int64
			err := readPages(context.Background(), Source{Events: l, Logs: l}, ex, func(evs []*trail.Event) error {
				if len(evs) == 0 || len(evs) > PageSize {
					t.Fatalf("a page of %d", len(evs))
				}
				for _, ev := range evs {
					got = append(got, ev.Index)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int64, n)
			for i := range want {
				want[i] = int64(i)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d indexes written, want 0…%d once each in order (first difference near %d)", len(got), n-1, firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
