package tlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/trail-audit/trail"
)

// IndexReport counts what fsck found wrong in the secondary indexes that
// read paths rely on, compared with the stored documents (SPEC §6): an
// event whose entry is missing hides it from the filters and pages that
// use that index.
type IndexReport struct {
	Targets Mismatches // events' rows in the target index (target_ids, targets filters)
	Search  Mismatches // events' entries in the full-text index (q)
	Counts  Mismatches // hours × actions of the hourly counts (the histogram)
	Days    Mismatches // days of the by-day index (periods)
	Actions Mismatches // actions of the actions catalogue (action prefixes)
	// FirstIndex and FirstID name the first event found with a bad
	// entry (-1 when only counts or orphans are bad), and First says how.
	FirstIndex int64
	FirstID    string
	First      string
}

// Mismatches counts entries missing from an index, held in it but not in
// the documents (extra), and held with another value (different).
type Mismatches struct {
	Missing, Extra, Different int64
}

func (m Mismatches) bad() bool { return m.Missing+m.Extra+m.Different > 0 }

func (m Mismatches) String() string {
	return fmt.Sprintf("%d missing, %d extra, %d different", m.Missing, m.Extra, m.Different)
}

// Bad reports whether anything was found.
func (r *IndexReport) Bad() bool {
	return r.Targets.bad() || r.Search.bad() || r.Counts.bad() || r.Days.bad() || r.Actions.bad()
}

// String sums up the report.
func (r *IndexReport) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		m    Mismatches
	}{{"target rows", r.Targets}, {"full-text entries", r.Search}, {"hourly counts", r.Counts}, {"by-day index", r.Days}, {"actions catalogue", r.Actions}} {
		if p.m.bad() {
			parts = append(parts, p.name+": "+p.m.String())
		}
	}
	return strings.Join(parts, "; ")
}

// indexCheck compares, while fsck scans a log, each event's index entries
// with its document, and sums up what the documents say the
// organization-wide indexes must hold.
type indexCheck struct {
	report  IndexReport
	counts  map[trail.HourAction]int64
	days    map[int64]int64
	actions map[string]bool
	done    bool
}

func newIndexCheck() *indexCheck {
	return &indexCheck{report: IndexReport{FirstIndex: -1}, counts: map[trail.HourAction]int64{}, days: map[int64]int64{}, actions: map[string]bool{}}
}

func (c *indexCheck) firstBad(row *trail.LogRow, how string) {
	if c.report.FirstIndex < 0 {
		c.report.FirstIndex, c.report.FirstID, c.report.First = row.Index, row.ID, how
	}
}

// decodeRow decodes a stored event's document, numbers kept as written.
func decodeRow(row *trail.LogRow) (*trail.Event, error) {
	var ev trail.Event
	dec := json.NewDecoder(bytes.NewReader(row.Data))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

// row checks a stored (not purged) event's entries; ev is its document.
func (c *indexCheck) row(row *trail.LogRow, ev *trail.Event) error {
	ns := ev.OccurredAt.UnixNano()
	c.counts[trail.HourAction{Hour: ns / int64(time.Hour), Action: ev.Action}]++
	c.days[ns/int64(24*time.Hour)]++
	c.actions[ev.Action] = true

	type target struct{ id, typ string }
	want := map[target]int{}
	for _, t := range ev.Targets {
		want[target{t.ID, t.Type}]++
	}
	missing, extra := false, false
	for _, t := range row.Targets {
		k := target{t.ID, t.Type}
		if want[k] > 0 {
			want[k]--
		} else {
			extra = true
		}
	}
	for _, n := range want {
		missing = missing || n > 0
	}
	switch {
	case missing && extra:
		c.report.Targets.Different++
		c.firstBad(row, "its target rows are not its targets")
	case missing:
		c.report.Targets.Missing++
		c.firstBad(row, "target rows of it are missing: filters by target do not find it")
	case extra:
		c.report.Targets.Extra++
		c.firstBad(row, "it has target rows of targets it does not have")
	}
	if row.Search == nil {
		return nil
	}
	switch how, err := row.Search(trail.SearchText(ev)); {
	case err != nil:
		return err
	case how == trail.SearchMissing:
		c.report.Search.Missing++
		c.firstBad(row, "words of it are missing from the full-text index: a search (q) does not find it")
	case how == trail.SearchExtra:
		c.report.Search.Extra++
		c.firstBad(row, "the full-text index holds words for it that it does not have")
	case how == trail.SearchDifferent:
		c.report.Search.Different++
		c.firstBad(row, "its full-text entry is not its words")
	}
	return nil
}

// finish compares the organization-wide indexes with what the documents
// gave.
func (c *indexCheck) finish(ix *trail.LogIndexes) error {
	c.done = true
	c.report.Targets.Extra += ix.OrphanTargets
	compare(&c.report.Counts, c.counts, ix.Counts)
	compare(&c.report.Days, c.days, ix.Days)
	have := map[string]bool{}
	for _, a := range ix.Actions {
		have[a] = true
	}
	for _, a := range slices.Sorted(maps.Keys(c.actions)) {
		if !have[a] {
			c.report.Actions.Missing++
			if c.report.First == "" {
				c.report.First = fmt.Sprintf("the action %q is not in the actions catalogue: filters by its prefix do not find its events", a)
			}
		}
	}
	if c.report.First == "" && (c.report.Counts.bad() || c.report.Days.bad()) {
		c.report.First = "the counts of the histogram or the by-day index differ from the events"
	}
	if c.report.First == "" && ix.OrphanTargets > 0 {
		c.report.First = fmt.Sprintf("%d target rows belong to no event", ix.OrphanTargets)
	}
	return nil
}

func compare[K comparable](m *Mismatches, want, got map[K]int64) {
	for k, n := range want {
		switch g := got[k]; {
		case g == 0:
			m.Missing++
		case g != n:
			m.Different++
		}
	}
	for k, g := range got {
		if g != 0 && want[k] == 0 {
			m.Extra++
		}
	}
}

// nonCanonicalNumber is NonCanonicalNumber of a decoded document: numbers
// are only in metadata.
func nonCanonicalNumber(ev *trail.Event) (path, number string) {
	check := func(p string, md trail.Metadata) bool {
		for _, k := range slices.Sorted(maps.Keys(md)) {
			if n, ok := md[k].(json.Number); ok {
				if c, err := jcs.Transform([]byte(n)); err != nil || string(c) != string(n) {
					path, number = p+"/"+trail.EscapePointer(k), string(n)
					return true
				}
			}
		}
		return false
	}
	if check("/actor/metadata", ev.Actor.Metadata) {
		return path, number
	}
	for i, t := range ev.Targets {
		if check(fmt.Sprintf("/targets/%d/metadata", i), t.Metadata) {
			return path, number
		}
	}
	check("/metadata", ev.Metadata)
	return path, number
}
