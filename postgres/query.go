package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// RecentWindow is how many of an organization's newest events a date-range
// query scans in index order before it reads the range day by day.
const RecentWindow = 1000

// MaxRangeDays is the most days a date range reads one by one; a longer
// range scans in index order.
const MaxRangeDays = 400

// dayNanos is one day in the unit of occurred_at.
const dayNanos = 86400000000000

// FindEvents returns one page of the organization's events.
//
// Every plan reads indexes that end in idx, in idx order, and stops after
// the page: the most selective filter drives, each of its values is read
// from its own index range in a LATERAL subquery, and the ranges are
// merged by the database. The other filters are conditions on the rows
// read. All statements of a page run in one REPEATABLE READ transaction,
// so they see one snapshot.
func (s *EventService) FindEvents(ctx context.Context, f trail.EventFilter) (*trail.EventPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Raw && f.Ascending && f.Before == nil && len(f.TargetIDs)+len(f.TargetTypes)+len(f.ActorIDs)+len(f.Actions) == 0 && strings.TrimSpace(f.Query) == "" {
		return s.rawScan(ctx, f)
	}
	tx, err := s.db.beginQuery(ctx)
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	defer tx.Rollback(context.Background())
	q := &eventQuery{tx: tx, f: f, n: f.Limit + 1, window: s.db.RecentWindow, searchWindow: s.db.SearchWindow}
	q.desc = !f.Ascending
	if f.Before != nil {
		q.desc = !q.desc
	}
	if c := f.After; c != nil || f.Before != nil {
		if c == nil {
			c = f.Before
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM events WHERE organization_id = $1 AND idx = $2`, f.OrganizationID, *c).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) && f.Raw && f.After != nil && !q.desc {
			// The cursor was purged: the page starts after it all the same.
			err = nil
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, trail.ErrCursorOutsideLog()
		} else if err != nil {
			return nil, fmt.Errorf("find events: cursor: %w", err)
		}
		q.cursor = c
	}
	idxs, err := q.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	page := &trail.EventPage{}
	if len(idxs) > f.Limit {
		idxs, page.HasMore = idxs[:f.Limit], true
	}
	if page.Events, err = load(ctx, tx, f.OrganizationID, idxs, f.Raw); err != nil {
		return nil, err
	}
	if f.Before != nil {
		for i, j := 0, len(page.Events)-1; i < j; i, j = i+1, j-1 {
			page.Events[i], page.Events[j] = page.Events[j], page.Events[i]
		}
	}
	return page, nil
}

// load reads the events of idxs, in that order.
// rawScan reads a page of an export with no filter that an index drives:
// the events in index order after the cursor (which need not be an event
// any more), the other filters conditions on each row, the stored JSON
// with them: one query, no transaction (a page needs no snapshot shared
// with another query).
func (s *EventService) rawScan(ctx context.Context, f trail.EventFilter) (*trail.EventPage, error) {
	q := &eventQuery{f: f, n: f.Limit + 1, cursor: f.After}
	cs := q.conds("")
	var events []*trail.Event
	if err := scanInto(ctx, s.db.pool, store.RawEventRow(f.OrganizationID, &events),
		`SELECT e.idx, e.id, e.occurred_at, e.data FROM events e WHERE `+strings.Join(cs, " AND ")+` ORDER BY e.idx LIMIT `+q.arg(q.n), q.args...); err != nil {
		return nil, fmt.Errorf("find events: %w", err)
	}
	return store.EventPage(events, f.Limit), nil
}

func load(ctx context.Context, tx pgx.Tx, orgID string, idxs []int64, raw bool) ([]*trail.Event, error) {
	if len(idxs) == 0 {
		return nil, nil
	}
	// Indexes that are most of a range (a page of an export) are read with
	// one range scan of each partition's key, others one by one.
	q, args := `SELECT idx, id, occurred_at, data FROM events WHERE organization_id = $1 AND idx = ANY($2)`, []any{orgID, idxs}
	if lo, hi, ok := store.MostlyRange(idxs); ok {
		q, args = `SELECT idx, id, occurred_at, data FROM events WHERE organization_id = $1 AND idx BETWEEN $2 AND $3`, []any{orgID, lo, hi}
	}
	l := store.NewLoader(idxs, raw)
	if err := scanInto(ctx, tx, l.Row(false), q, args...); err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	return l.Events(), nil
}

type eventQuery struct {
	tx           pgx.Tx
	f            trail.EventFilter
	n            int  // rows wanted: the page and one more
	desc         bool // scan direction
	cursor       *int64
	window       int // see RecentWindow
	searchWindow int // see SearchWindow
	args         []any
	// unindexedSearch writes q's condition so that no index serves it.
	unindexedSearch bool
	// unindexedAction does the same for the event types.
	unindexedAction bool
}

// beginQuery begins the read-only REPEATABLE READ transaction of a query
// whose statements are planned for their own parameters: a filter's plan
// depends on its values (a rare word is read through the search index, a
// common one is not), and the generic plan that PostgreSQL would switch to
// after a statement's fifth run cannot know them (measured: a word over 30
// days counted in 503 ms by the generic plan, 69 ms by its own).
func (db *DB) beginQuery(ctx context.Context) (pgx.Tx, error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}

// arg adds a parameter and returns its placeholder.
func (q *eventQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// conds returns the conditions on e of every filter but the driver's, and
// the cursor's.
func (q *eventQuery) conds(driver string) []string {
	f := q.f
	cs := []string{"e.organization_id = " + q.arg(f.OrganizationID)}
	if q.cursor != nil {
		op, _ := q.order()
		cs = append(cs, "e.idx "+op+" "+q.arg(*q.cursor))
	}
	if len(f.Actions) > 0 && driver != "actions" {
		action := "e.action"
		if q.unindexedAction {
			action = "(e.action || '')"
		}
		var ors, exact []string
		for _, a := range f.Actions {
			if p, ok := strings.CutSuffix(a, ".*"); ok {
				ors = append(ors, "("+action+" >= "+q.arg(p+".")+" AND "+action+" < "+q.arg(p+"/")+")") // '/' follows '.'
			} else {
				exact = append(exact, a)
			}
		}
		if len(exact) > 0 {
			ors = append(ors, action+" = ANY("+q.arg(exact)+"::text[])")
		}
		cs = append(cs, "("+strings.Join(ors, " OR ")+")")
	}
	if len(f.ActorIDs) > 0 && driver != "actor_ids" {
		cs = append(cs, "e.actor_id = ANY("+q.arg(f.ActorIDs)+"::text[])")
	}
	if len(f.ActorNames) > 0 && driver != "actor_names" {
		cs = append(cs, "e.actor_name = ANY("+q.arg(f.ActorNames)+"::text[])")
	}
	if len(f.ActorTypes) > 0 && driver != "actor_types" {
		cs = append(cs, "e.actor_type = ANY("+q.arg(f.ActorTypes)+"::text[])")
	}
	if len(f.TargetIDs) > 0 && driver != "target_ids" {
		cs = append(cs, "e.target_ids && "+q.arg(f.TargetIDs)+"::text[]")
	}
	if len(f.TargetTypes) > 0 && driver != "targets" {
		cs = append(cs, "e.target_types && "+q.arg(f.TargetTypes)+"::text[]")
	}
	if f.RangeStart != nil {
		cs = append(cs, "e.occurred_at >= "+q.arg(f.RangeStart.UnixNano()))
	}
	if f.RangeEnd != nil {
		cs = append(cs, "e.occurred_at < "+q.arg(f.RangeEnd.UnixNano()))
	}
	if strings.TrimSpace(f.Query) != "" {
		if lit, ok := tsqueryLiteral(f.Query); ok && q.unindexedSearch {
			// Not a condition the GIN index can serve: the planner walks
			// the index order.
			cs = append(cs, "COALESCE(e.search @@ "+q.arg(lit)+"::tsquery, false)")
		} else if ok {
			cs = append(cs, "e.search @@ "+q.arg(lit)+"::tsquery")
		} else {
			cs = append(cs, "false")
		}
	}
	return cs
}

func (q *eventQuery) order() (op, dir string) {
	if q.desc {
		return "<", "DESC"
	}
	return ">", "ASC"
}

// perValue reads, for each value, the first n idxs of
// "SELECT e.idx FROM from WHERE col = value AND conds ORDER BY e.idx" and
// merges them, in one statement.
func (q *eventQuery) perValue(ctx context.Context, from, col, idxCol string, vals []string, driver string) ([]int64, error) {
	op, dir := q.order()
	v := q.arg(vals)
	cs := q.conds(driver)
	if q.cursor != nil && idxCol != "e.idx" {
		cs = append(cs, idxCol+" "+op+" "+q.arg(*q.cursor))
	}
	n := q.arg(q.n)
	sql := `SELECT DISTINCT s.idx FROM unnest(` + v + `::text[]) AS v(val) CROSS JOIN LATERAL (
		SELECT DISTINCT ` + idxCol + ` AS idx FROM ` + from + ` WHERE ` + col + ` = v.val AND ` + strings.Join(cs, " AND ") + `
		ORDER BY ` + idxCol + ` ` + dir + ` LIMIT ` + n + `) s
		ORDER BY s.idx ` + dir + ` LIMIT ` + n
	return q.idxs(ctx, sql)
}

func (q *eventQuery) idxs(ctx context.Context, sql string) ([]int64, error) {
	rows, err := q.tx.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, err
	}
	q.args = nil
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func (q *eventQuery) run(ctx context.Context) ([]int64, error) {
	f := q.f
	switch {
	case len(f.TargetIDs) > 0, len(f.TargetTypes) > 0 && len(f.ActorIDs) == 0 && len(f.Actions) == 0 && strings.TrimSpace(f.Query) == "":
		driver, col, vals := "target_ids", "t.target_id", f.TargetIDs
		if len(vals) == 0 {
			driver, col, vals = "targets", "t.target_type", f.TargetTypes
		}
		from := `event_targets t JOIN events e ON e.organization_id = t.organization_id AND e.idx = t.idx AND e.received_at = t.received_at`
		// The index order is t's: the organization and the cursor repeat
		// on t.
		return q.perValue(ctx, from+` AND t.organization_id = `+q.arg(f.OrganizationID), col, "t.idx", store.Dedupe(vals), driver)
	case len(f.ActorIDs) > 0:
		return q.perValue(ctx, "events e", "e.actor_id", "e.idx", store.Dedupe(f.ActorIDs), "actor_ids")
	case strings.TrimSpace(f.Query) != "":
		return q.search(ctx)
	case len(f.Actions) > 0:
		actions, err := q.expandActions(ctx)
		if err != nil {
			return nil, err
		}
		return q.perValue(ctx, "events e", "e.action", "e.idx", actions, "actions")
	case len(f.ActorNames) > 0:
		return q.perValue(ctx, "events e", "e.actor_name", "e.idx", store.Dedupe(f.ActorNames), "actor_names")
	case (f.RangeStart != nil || f.RangeEnd != nil) && f.Raw:
		// An export pages through its whole period: in index order, the
		// period a condition on each row (a page by days would read a
		// page of every day).
		return q.scan(ctx, q.conds(""))
	case f.RangeStart != nil || f.RangeEnd != nil:
		// The newest events first: a range that covers them fills the page
		// from a short scan in index order.
		recent, _, err := q.recent(ctx, int64(q.window))
		if err != nil || len(recent) >= q.n {
			return recent, err
		}
		return q.byDay(ctx)
	case len(f.ActorTypes) > 0:
		// Types are few and common: their index helps a rare one, and
		// costs no more than the log's order for a common one.
		return q.perValue(ctx, "events e", "e.actor_type", "e.idx", store.Dedupe(f.ActorTypes), "actor_types")
	default:
		return q.scan(ctx, q.conds(""))
	}
}

// scan reads in index order with the conditions.
func (q *eventQuery) scan(ctx context.Context, cs []string) ([]int64, error) {
	_, dir := q.order()
	return q.idxs(ctx, `SELECT e.idx FROM events e WHERE `+strings.Join(cs, " AND ")+` ORDER BY e.idx `+dir+` LIMIT `+q.arg(q.n))
}

// recent scans the window of w indexes next to the cursor (or the log's
// end) in index order. It returns the events found and the bound of the
// window: the events beyond it are those with an index below bound (newest
// first) or above it (oldest first).
func (q *eventQuery) recent(ctx context.Context, w int64) ([]int64, int64, error) {
	cs := q.conds("")
	var bound int64
	switch {
	case q.desc && q.cursor != nil:
		bound = *q.cursor - w
	case q.desc:
		// An unknown organization has an empty log: no error, no events.
		if err := q.tx.QueryRow(ctx, `SELECT COALESCE((SELECT next_index FROM organizations WHERE id = $1), 0)`, q.f.OrganizationID).Scan(&bound); err != nil {
			return nil, 0, err
		}
		bound -= w
	case q.cursor != nil:
		bound = *q.cursor + w
	default:
		bound = w - 1
	}
	if q.desc {
		cs = append(cs, "e.idx >= "+q.arg(bound))
	} else {
		cs = append(cs, "e.idx <= "+q.arg(bound))
	}
	idxs, err := q.scan(ctx, cs)
	return idxs, bound, err
}

// SearchWindow is how many of the newest events (from the cursor) q reads
// in index order before it turns to the full-text index.
const SearchWindow = 8192

// MaxSearchWindows bounds the second step of q in index order, in windows.
const MaxSearchWindows = 8

// search reads q in steps. First the window next to the cursor in index
// order, testing each event's words: a common word fills the page there,
// from pages that are likely cached. If the window found some events but
// not a page, their rate says how far to read on in index order; a word
// that is rarer than that (or absent from the window) is read through the
// GIN index beyond the window, which fetches every event that has it.
// (PostgreSQL's planner cannot make this choice for phrases, whose words
// it takes as independent.)
func (q *eventQuery) search(ctx context.Context) ([]int64, error) {
	cursor := q.cursor
	defer func() { q.cursor = cursor }()
	q.unindexedSearch = true
	w := int64(q.searchWindow)
	found, bound, err := q.recent(ctx, w)
	if err != nil || len(found) >= q.n {
		q.unindexedSearch = false
		return found, err
	}
	if k := int64(len(found)); k > 0 {
		// Twice the events that, at the window's rate, hold the rest of
		// the page; at most MaxSearchWindows windows.
		if more := 2 * (int64(q.n) - k) * w / k; more <= MaxSearchWindows*w {
			q.cursor = &bound
			var next []int64
			next, bound, err = q.recent(ctx, more)
			if err != nil {
				return nil, err
			}
			found = append(found, next...)
			if len(found) >= q.n {
				q.unindexedSearch = false
				return found[:q.n], nil
			}
		}
	}
	q.unindexedSearch = false
	q.cursor = &bound
	cs := q.conds("")
	_, dir := q.order()
	rest, err := q.idxs(ctx, `SELECT e.idx FROM events e WHERE `+strings.Join(cs, " AND ")+` ORDER BY e.idx `+dir+` LIMIT `+q.arg(q.n-len(found)))
	return append(found, rest...), err
}

// byDay reads a date range from events_org_day: each day's events in index
// order up to the page, the days merged by the database.
func (q *eventQuery) byDay(ctx context.Context) ([]int64, error) {
	f := q.f
	var lo, hi *int64
	err := q.tx.QueryRow(ctx, `SELECT (SELECT occurred_day FROM events WHERE organization_id = $1 ORDER BY occurred_day LIMIT 1),
		(SELECT occurred_day FROM events WHERE organization_id = $1 ORDER BY occurred_day DESC LIMIT 1)`, f.OrganizationID).Scan(&lo, &hi)
	if err != nil || lo == nil {
		return nil, err
	}
	from, to := *lo, *hi
	if f.RangeStart != nil {
		from = max(from, f.RangeStart.UnixNano()/dayNanos)
	}
	if f.RangeEnd != nil {
		to = min(to, (f.RangeEnd.UnixNano()-1)/dayNanos)
	}
	if from > to {
		return nil, nil
	}
	if to-from+1 > MaxRangeDays {
		return q.scan(ctx, q.conds(""))
	}
	_, dir := q.order()
	d := `generate_series(` + q.arg(from) + `::integer, ` + q.arg(to) + `::integer)`
	cs := q.conds("")
	n := q.arg(q.n)
	return q.idxs(ctx, `SELECT s.idx FROM `+d+` AS d(day) CROSS JOIN LATERAL (
		SELECT e.idx FROM events e WHERE e.occurred_day = d.day AND `+strings.Join(cs, " AND ")+`
		ORDER BY e.idx `+dir+` LIMIT `+n+`) s
		ORDER BY s.idx `+dir+` LIMIT `+n)
}

// expandActions turns exact actions and prefixes into the organization's
// exact actions.
func (q *eventQuery) expandActions(ctx context.Context) ([]string, error) {
	return store.ExpandActions(ctx, q.f.Actions, func(ctx context.Context, lo, hi string) ([]string, error) {
		rows, err := q.tx.Query(ctx, `SELECT action FROM org_actions WHERE organization_id = $1 AND action >= $2 AND action < $3`, q.f.OrganizationID, lo, hi)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	})
}

// CountEvents counts the matching events in buckets aligned on the Unix
// epoch. With no filter but actions and buckets of whole hours, the hours
// within the period are summed from event_counts and only the period's
// partial first and last hours are counted from the events; otherwise the
// events are counted (a target id through event_targets).
func (s *EventService) CountEvents(ctx context.Context, f trail.EventFilter, bucket time.Duration) ([]int64, error) {
	f.After, f.Before = nil, nil
	h, err := store.NewHistogram(f, bucket)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.beginQuery(ctx)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer tx.Rollback(context.Background())
	sum := func(query string, args ...any) error {
		if err := scanInto(ctx, tx, h.Row(), query, args...); err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		return nil
	}
	// events counts the events from from to to. edge: the ragged end of a
	// range (under an hour) with only event types as filters. Its events
	// are found in events_org_day, which holds occurred_at (an index-only
	// scan of one day), and only they are read for their type; left to
	// itself, the planner would read the types' events of all time
	// through events_org_action, or every event of the day (measured at
	// 10 M events: 5.5 s and 454 ms for half an hour, against 32 ms).
	events := func(from, to int64, edge bool) error {
		g := f
		fromT, toT := time.Unix(0, from).UTC(), time.Unix(0, to).UTC()
		g.RangeStart, g.RangeEnd = &fromT, &toT
		edge = edge && len(f.Actions) > 0
		q := &eventQuery{f: g, unindexedAction: edge}
		sel := "SELECT e.occurred_at / " + q.arg(h.Width) + ", count(*) FROM events e WHERE "
		conds := q.conds("target_ids")
		days := q.arg(int32(from/dayNanos)) + " AND " + q.arg(int32((to-1)/dayNanos))
		if edge {
			conds = append(conds, "e.idx = ANY(ARRAY(SELECT d.idx FROM events d WHERE d.organization_id = "+q.arg(f.OrganizationID)+
				" AND d.occurred_day BETWEEN "+days+" AND d.occurred_at >= "+q.arg(from)+" AND d.occurred_at < "+q.arg(to)+"))")
		} else {
			conds = append(conds, "e.occurred_day BETWEEN "+days)
		}
		if len(f.TargetIDs) > 0 {
			conds = append(conds, "(e.organization_id, e.idx) IN (SELECT x.organization_id, x.idx FROM event_targets x WHERE x.organization_id = "+
				q.arg(f.OrganizationID)+" AND x.target_id = ANY("+q.arg(f.TargetIDs)+"::text[]))")
		}
		return sum(sel+strings.Join(conds, " AND ")+" GROUP BY 1", q.args...)
	}
	hours := func(h0, h1 int64) error {
		q := &eventQuery{f: trail.EventFilter{OrganizationID: f.OrganizationID, Actions: f.Actions}}
		conds := append(q.conds(""), "e.hour >= "+q.arg(h0), "e.hour < "+q.arg(h1))
		return sum("SELECT e.hour / "+q.arg(h.Width/hourNanos)+", sum(e.n)::bigint FROM event_counts e WHERE "+strings.Join(conds, " AND ")+" GROUP BY 1", q.args...)
	}
	return h.Count(store.OnlyActions(f, strings.TrimSpace(f.Query) != ""), events, hours)
}
