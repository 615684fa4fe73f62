package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// RecentWindow is how many of an organization's newest events a date-range
// query scans in index order before it switches to the occurred_at index.
const RecentWindow = 1000

// FindEvents returns one page of the organization's events.
//
// Every plan reads event seqs (the table's rowid, which grows with the
// organization's index) in order from one index and stops after the page:
// the most selective filter drives, each of its values is read from its own
// index range, and the ranges are merged here. The other filters are
// conditions on the rows read. Only then are the page's events loaded.
func (s *EventService) FindEvents(ctx context.Context, f trail.EventFilter) (*trail.EventPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	// One read transaction: every query below sees the same snapshot, so
	// merged ranges cannot disagree about which events exist.
	pool := s.db.reader
	if f.Raw {
		pool = s.db.scanner
	}
	tx, err := pool.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	defer tx.Rollback()
	q := &eventQuery{db: tx, f: f, n: f.Limit + 1, window: s.db.RecentWindow}
	q.desc = !f.Ascending
	if f.Before != nil {
		q.desc = !q.desc
	}
	if f.Raw && !q.desc && len(f.TargetIDs)+len(f.TargetTypes)+len(f.ActorIDs)+len(f.Actions) == 0 && f.Query == "" {
		// Index order from the cursor's index: no seq to look up, and the
		// cursor need not be an event any more.
		q.cursorIdx = f.After
		return q.rawScan(ctx)
	}
	if c := f.After; c != nil || f.Before != nil {
		if c == nil {
			c = f.Before
		}
		q.cursorIdx = c
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM events WHERE organization_id = ? AND idx = ?`, f.OrganizationID, *c).Scan(&seq)
		if err == sql.ErrNoRows && f.Raw && f.After != nil && !q.desc {
			// The cursor was purged: start before the first event after it.
			err = tx.QueryRowContext(ctx, `SELECT seq - 1 FROM events WHERE organization_id = ? AND idx > ? ORDER BY idx LIMIT 1`, f.OrganizationID, *c).Scan(&seq)
			if err == sql.ErrNoRows {
				return &trail.EventPage{}, nil
			}
		}
		if err == sql.ErrNoRows {
			return nil, trail.ErrCursorOutsideLog()
		} else if err != nil {
			return nil, fmt.Errorf("find events: cursor: %w", err)
		}
		q.cursorSeq = &seq
	}
	seqs, err := q.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	page := &trail.EventPage{}
	if len(seqs) > f.Limit {
		seqs, page.HasMore = seqs[:f.Limit], true
	}
	if page.Events, err = load(ctx, tx, seqs, f.Raw); err != nil {
		return nil, err
	}
	if f.Before != nil {
		for i, j := 0, len(page.Events)-1; i < j; i, j = i+1, j-1 {
			page.Events[i], page.Events[j] = page.Events[j], page.Events[i]
		}
	}
	return page, nil
}

// rawScan reads a page of an export with no filter that an index drives:
// the events in index order after the cursor, the period and the actor
// names and types conditions on each row, the stored JSON with them, in
// one pass.
func (q *eventQuery) rawScan(ctx context.Context) (*trail.EventPage, error) {
	where := []cond{{"e.organization_id = ?", []any{q.f.OrganizationID}}}
	if q.cursorIdx != nil {
		where = append(where, cond{"e.idx > ?", []any{*q.cursorIdx}})
	}
	clause, args := joinConds(append(where, q.conds("")...))
	var events []*trail.Event
	if err := scanInto(ctx, q.db, store.RawEventRow(q.f.OrganizationID, &events), `SELECT e.idx, e.id, e.occurred_at, e.data FROM events e INDEXED BY events_org_idx WHERE `+clause+
		` ORDER BY e.idx LIMIT ?`, append(args, q.n)...); err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	return store.EventPage(events, q.f.Limit), nil
}

// load reads the events of seqs, in that order, decoded or (raw) as
// stored.
func load(ctx context.Context, tx *sql.Tx, seqs []int64, raw bool) ([]*trail.Event, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	// Seqs that are most of a range (a page of one organization's
	// events) are read with one range scan of the table, others one by
	// one.
	const cols = "seq, idx, id, occurred_at, data"
	lo, hi, ok := store.MostlyRange(seqs)
	q, args := `SELECT `+cols+` FROM events WHERE seq BETWEEN ? AND ?`, []any{lo, hi}
	if !ok {
		q, args = `SELECT `+cols+` FROM events WHERE seq IN (`+placeholders(len(seqs))+`)`, make([]any, len(seqs))
		for i, seq := range seqs {
			args[i] = seq
		}
	}
	l := store.NewLoader(seqs, raw)
	if err := scanInto(ctx, tx, l.Row(true), q, args...); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	return l.Events(), nil
}

type eventQuery struct {
	db        *sql.Tx
	f         trail.EventFilter
	n         int  // rows wanted: the page and one more
	desc      bool // scan direction
	cursorIdx *int64
	cursorSeq *int64
	window    int // see RecentWindow
}

// cond is a SQL condition with its arguments.
type cond struct {
	sql  string
	args []any
}

// joinConds joins conditions with AND, and their arguments in order.
func joinConds(conds []cond) (string, []any) {
	var parts []string
	var args []any
	for _, c := range conds {
		parts = append(parts, c.sql)
		args = append(args, c.args...)
	}
	return strings.Join(parts, " AND "), args
}

func inCond(col string, vals []string) cond {
	c := cond{sql: col + " IN (" + placeholders(len(vals)) + ")"}
	for _, v := range vals {
		c.args = append(c.args, v)
	}
	return c
}

// conds returns the filter conditions on e, leaving out the driver's.
func (q *eventQuery) conds(driver string) []cond {
	f := q.f
	var cs []cond
	if len(f.Actions) > 0 && driver != "actions" {
		var ors []string
		var args []any
		var exact []string
		for _, a := range f.Actions {
			if p, ok := strings.CutSuffix(a, ".*"); ok {
				ors = append(ors, "(e.action >= ? AND e.action < ?)")
				args = append(args, p+".", p+"/") // '/' follows '.'
			} else {
				exact = append(exact, a)
			}
		}
		if len(exact) > 0 {
			c := inCond("e.action", exact)
			ors, args = append(ors, c.sql), append(args, c.args...)
		}
		cs = append(cs, cond{"(" + strings.Join(ors, " OR ") + ")", args})
	}
	if len(f.ActorIDs) > 0 && driver != "actor_ids" {
		cs = append(cs, inCond("e.actor_id", f.ActorIDs))
	}
	if len(f.ActorNames) > 0 {
		cs = append(cs, inCond("e.actor_name", f.ActorNames))
	}
	if len(f.ActorTypes) > 0 {
		cs = append(cs, inCond("e.actor_type", f.ActorTypes))
	}
	if len(f.TargetIDs) > 0 && driver != "target_ids" {
		c := inCond("x.target_id", f.TargetIDs)
		cs = append(cs, cond{"EXISTS (SELECT 1 FROM event_targets x WHERE x.organization_id = e.organization_id AND x.seq = e.seq AND " + c.sql + ")", c.args})
	}
	if len(f.TargetTypes) > 0 && driver != "targets" {
		c := inCond("x.target_type", f.TargetTypes)
		cs = append(cs, cond{"EXISTS (SELECT 1 FROM event_targets x WHERE x.organization_id = e.organization_id AND x.seq = e.seq AND " + c.sql + ")", c.args})
	}
	if f.RangeStart != nil {
		cs = append(cs, cond{"+e.occurred_at >= ?", []any{f.RangeStart.UnixNano()}})
	}
	if f.RangeEnd != nil {
		cs = append(cs, cond{"+e.occurred_at < ?", []any{f.RangeEnd.UnixNano()}})
	}
	if fq := ftsQuery(f.Query); fq != "" && driver != "q" {
		cs = append(cs, cond{"e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)", []any{fq}})
	}
	return cs
}

func (q *eventQuery) order() (op, dir string) {
	if q.desc {
		return "<", "DESC"
	}
	return ">", "ASC"
}

// seqQuery runs one ordered read of seqs: from, the driver's conditions,
// the other filters and the cursor on seqCol.
func (q *eventQuery) seqQuery(ctx context.Context, sel, from string, driver []cond, others []cond, seqCol string, limit int) ([]int64, error) {
	op, dir := q.order()
	where := append([]cond{}, driver...)
	if q.cursorSeq != nil {
		where = append(where, cond{seqCol + " " + op + " ?", []any{*q.cursorSeq}})
	}
	where = append(where, others...)
	return q.seqs(ctx, "SELECT "+sel+" FROM "+from, where, " ORDER BY "+seqCol+" "+dir+" LIMIT ?", limit)
}

// seqs runs head WHERE conds tail and returns the first column as seqs.
func (q *eventQuery) seqs(ctx context.Context, head string, conds []cond, tail string, tailArgs ...any) ([]int64, error) {
	where, args := joinConds(conds)
	rows, err := q.db.QueryContext(ctx, head+" WHERE "+where+tail, append(args, tailArgs...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out = append(out, seq)
	}
	return out, rows.Err()
}

// merge unions ordered seq lists into one, in scan order, without
// duplicates, keeping at most n.
func (q *eventQuery) merge(lists [][]int64) []int64 {
	seen := map[int64]bool{}
	var all []int64
	for _, l := range lists {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				all = append(all, s)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if q.desc {
			return all[i] > all[j]
		}
		return all[i] < all[j]
	})
	if len(all) > q.n {
		all = all[:q.n]
	}
	return all
}

// perValue reads each value's ordered range and merges them.
func (q *eventQuery) perValue(ctx context.Context, vals []string, read func(v string) ([]int64, error)) ([]int64, error) {
	var lists [][]int64
	for _, v := range vals {
		l, err := read(v)
		if err != nil {
			return nil, err
		}
		lists = append(lists, l)
	}
	return q.merge(lists), nil
}

func (q *eventQuery) run(ctx context.Context) ([]int64, error) {
	f := q.f
	org := cond{"e.organization_id = ?", []any{f.OrganizationID}}
	switch {
	case len(f.TargetIDs) > 0, len(f.TargetTypes) > 0 && len(f.ActorIDs) == 0 && len(f.Actions) == 0 && f.Query == "":
		driver, col, vals := "target_ids", "t.target_id", f.TargetIDs
		if len(vals) == 0 {
			driver, col, vals = "targets", "t.target_type", f.TargetTypes
		}
		others := q.conds(driver)
		return q.perValue(ctx, store.Dedupe(vals), func(v string) ([]int64, error) {
			// An event may name the same target (or type) several times.
			return q.seqQuery(ctx, "DISTINCT t.seq", "event_targets t JOIN events e ON e.seq = t.seq",
				[]cond{{"t.organization_id = ?", []any{f.OrganizationID}}, {col + " = ?", []any{v}}}, others, "t.seq", q.n)
		})
	case len(f.ActorIDs) > 0:
		others := q.conds("actor_ids")
		return q.perValue(ctx, store.Dedupe(f.ActorIDs), func(v string) ([]int64, error) {
			return q.seqQuery(ctx, "e.seq", "events e INDEXED BY events_org_actor", []cond{org, {"e.actor_id = ?", []any{v}}}, others, "e.seq", q.n)
		})
	case f.Query != "" && ftsQuery(f.Query) != "":
		return q.seqQuery(ctx, "f.rowid", "events_fts f JOIN events e ON e.seq = f.rowid",
			[]cond{{"events_fts MATCH ?", []any{ftsQuery(f.Query)}}, org}, q.conds("q"), "f.rowid", q.n)
	case len(f.Actions) > 0:
		actions, err := q.expandActions(ctx)
		if err != nil {
			return nil, err
		}
		others := q.conds("actions")
		return q.perValue(ctx, actions, func(v string) ([]int64, error) {
			return q.seqQuery(ctx, "e.seq", "events e INDEXED BY events_org_action", []cond{org, {"e.action = ?", []any{v}}}, others, "e.seq", q.n)
		})
	case (f.RangeStart != nil || f.RangeEnd != nil) && f.Raw:
		// An export pages through its whole period: in index order, the
		// period a condition on each row (a page by days would read a
		// page of every day).
		return q.idxScan(ctx, q.conds(""), 0)
	case f.RangeStart != nil || f.RangeEnd != nil:
		// The newest events first: a range that covers them fills the page
		// from a short scan in index order.
		recent, err := q.idxScan(ctx, q.conds(""), q.window)
		if err != nil || len(recent) >= q.n {
			return recent, err
		}
		return q.byDay(ctx)
	default:
		return q.idxScan(ctx, q.conds(""), 0)
	}
}

// dayNanos is one day in the unit of occurred_at.
const dayNanos = 86400000000000

// MaxRangeDays is the most days a date range reads one by one; a longer
// range reads the day index in one pass and sorts.
const MaxRangeDays = 400

// byDay reads a date range from events_org_day: each day's events come in
// commit order, so each day is read up to the page and the days merged.
func (q *eventQuery) byDay(ctx context.Context) ([]int64, error) {
	f := q.f
	org := cond{"e.organization_id = ?", []any{f.OrganizationID}}
	day := "e.occurred_at / " + strconv.FormatInt(dayNanos, 10)
	// The range is cut to the organization's first and last day, read from
	// either end of the index.
	edge := func(dir string) (int64, bool, error) {
		var d int64
		err := q.db.QueryRowContext(ctx, `SELECT `+day+` FROM events e INDEXED BY events_org_day WHERE e.organization_id = ? ORDER BY `+day+` `+dir+` LIMIT 1`, f.OrganizationID).Scan(&d)
		if err == sql.ErrNoRows {
			return 0, false, nil
		}
		return d, err == nil, err
	}
	lo, ok, err := edge("ASC")
	if !ok {
		return nil, err
	}
	hi, _, err := edge("DESC")
	if err != nil {
		return nil, err
	}
	if f.RangeStart != nil {
		lo = max(lo, f.RangeStart.UnixNano()/dayNanos)
	}
	if f.RangeEnd != nil {
		hi = min(hi, (f.RangeEnd.UnixNano()-1)/dayNanos)
	}
	if lo > hi {
		return nil, nil
	}
	others := q.conds("")
	if hi-lo+1 > MaxRangeDays {
		return q.seqQuery(ctx, "e.seq", "events e INDEXED BY events_org_day",
			[]cond{org, {day + " BETWEEN ? AND ?", []any{lo, hi}}}, others, "e.seq", q.n)
	}
	// Inside the index, occurred_at is a column: compare it there (no "+",
	// which would send each row to the table).
	var dayOthers []cond
	for _, c := range others {
		dayOthers = append(dayOthers, cond{strings.Replace(c.sql, "+e.occurred_at", "e.occurred_at", 1), c.args})
	}
	days := make([]string, 0, hi-lo+1)
	for d := lo; d <= hi; d++ {
		days = append(days, strconv.FormatInt(d, 10))
	}
	return q.perValue(ctx, days, func(d string) ([]int64, error) {
		n, _ := strconv.ParseInt(d, 10, 64)
		return q.seqQuery(ctx, "e.seq", "events e INDEXED BY events_org_day", []cond{org, {day + " = ?", []any{n}}}, dayOthers, "e.seq", q.n)
	})
}

// idxScan reads in index order from events_org_idx; window > 0 limits the
// scan to that many indexes from the cursor (or the log's end).
func (q *eventQuery) idxScan(ctx context.Context, others []cond, window int) ([]int64, error) {
	op, dir := q.order()
	where := []cond{{"e.organization_id = ?", []any{q.f.OrganizationID}}}
	if q.cursorIdx != nil {
		where = append(where, cond{"e.idx " + op + " ?", []any{*q.cursorIdx}})
	}
	if window > 0 {
		switch {
		case q.desc && q.cursorIdx != nil:
			where = append(where, cond{"e.idx >= ?", []any{*q.cursorIdx - int64(window)}})
		case q.desc:
			where = append(where, cond{"e.idx >= (SELECT next_index FROM organizations WHERE id = ?) - ?", []any{q.f.OrganizationID, window}})
		case q.cursorIdx != nil:
			where = append(where, cond{"e.idx <= ?", []any{*q.cursorIdx + int64(window)}})
		default:
			where = append(where, cond{"e.idx < ?", []any{window}})
		}
	}
	where = append(where, others...)
	return q.seqs(ctx, "SELECT e.seq FROM events e INDEXED BY events_org_idx", where, " ORDER BY e.idx "+dir+" LIMIT ?", q.n)
}

// expandActions turns exact actions and prefixes into the organization's
// exact actions.
func (q *eventQuery) expandActions(ctx context.Context) ([]string, error) {
	return store.ExpandActions(ctx, q.f.Actions, func(ctx context.Context, lo, hi string) ([]string, error) {
		rows, err := q.db.QueryContext(ctx, `SELECT action FROM org_actions WHERE organization_id = ? AND action >= ? AND action < ?`, q.f.OrganizationID, lo, hi)
		return collect(rows, err, func(r interface{ Scan(...any) error }) (s string, err error) { return s, r.Scan(&s) })
	})
}

// hourNanos is one hour in the unit of occurred_at, event_counts' unit.
const hourNanos = int64(time.Hour)

// CountEvents counts the matching events in buckets aligned on the Unix
// epoch. With no filter but actions and buckets of whole hours, the hours
// within the period are summed from event_counts and only the period's
// partial first and last hours are counted from the events; otherwise the
// events are counted, driven by the target ids, actors or words when the
// filter has them (as FindEvents) and else by the period's days in
// events_org_day (which holds occurred_at).
func (s *EventService) CountEvents(ctx context.Context, f trail.EventFilter, bucket time.Duration) ([]int64, error) {
	h, err := store.NewHistogram(f, bucket)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer tx.Rollback()
	sum := func(query string, args ...any) error {
		if err := scanInto(ctx, tx, h.Row(), query, args...); err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		return nil
	}
	events := func(from, to int64, _ bool) error {
		g := f
		fromT, toT := time.Unix(0, from), time.Unix(0, to)
		g.RangeStart, g.RangeEnd = &fromT, &toT
		q := &eventQuery{f: g}
		// The driver is chosen as FindEvents chooses it, named so that
		// the planner cannot prefer a scan of the organization with the
		// few selected seqs as a condition on each row: the events of the
		// target ids, of the actors, of the words (the last two through
		// their own conditions in q.conds), or else of the period's days.
		table, driver := "events e INDEXED BY events_org_day", ""
		conds := []cond{{"e.organization_id = ?", []any{f.OrganizationID}}}
		switch {
		case len(f.TargetIDs) > 0:
			c := inCond("x.target_id", f.TargetIDs)
			table, driver = "events e", "target_ids"
			conds = []cond{{"+e.organization_id = ?", []any{f.OrganizationID}},
				{"e.seq IN (SELECT x.seq FROM event_targets x WHERE x.organization_id = ? AND " + c.sql + ")", append([]any{f.OrganizationID}, c.args...)}}
		case len(f.ActorIDs) > 0:
			table = "events e INDEXED BY events_org_actor"
		case ftsQuery(f.Query) != "":
			table, conds[0].sql = "events e", "+e.organization_id = ?"
		default:
			conds = append(conds, cond{"e.occurred_at / 86400000000000 BETWEEN ? AND ?", []any{from / dayNanos, (to - 1) / dayNanos}})
		}
		where, args := joinConds(append(conds, q.conds(driver)...))
		return sum(`SELECT e.occurred_at / ?, COUNT(*) FROM `+table+` WHERE `+where+` GROUP BY 1`, append([]any{h.Width}, args...)...)
	}
	hours := func(h0, h1 int64) error {
		q := &eventQuery{f: trail.EventFilter{Actions: f.Actions}}
		where, args := joinConds(append([]cond{{"e.organization_id = ? AND e.hour >= ? AND e.hour < ?", []any{f.OrganizationID, h0, h1}}}, q.conds("")...))
		return sum(`SELECT e.hour / ?, SUM(e.n) FROM event_counts e WHERE `+where+` GROUP BY 1`, append([]any{h.Width / int64(time.Hour)}, args...)...)
	}
	return h.Count(store.OnlyActions(f, ftsQuery(f.Query) != ""), events, hours)
}
