package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// appendRequest is an append on its way through the group commit.
type appendRequest = store.AppendRequest[string]

// searchForm is what the full-text index stores of an event's text.
var searchForm = func(text string) string { return text }

// AppendEvents queues the events for the group committer and waits until
// their transaction is committed (fsync'd) or has failed.
func (s *EventService) AppendEvents(ctx context.Context, orgID string, inputs []*trail.EventInput) ([]trail.AppendResult, error) {
	return store.Append(ctx, &s.db.queue, orgID, inputs, searchForm)
}

// commit writes a group of requests in one transaction.
func (db *DB) commit(batch []*appendRequest) {
	ctx := context.Background()
	err := func() error {
		tx, err := db.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		n := 0
		for _, r := range batch {
			n += len(r.Inputs)
		}
		a, err := db.newAppender(ctx, tx, n)
		if err != nil {
			return err
		}
		for _, r := range batch {
			r.Results, r.Err = a.add(ctx, r)
			if r.Err != nil && trail.ErrorCode(r.Err) == trail.EINTERNAL {
				// add may have half-applied this request: nothing of the
				// transaction may commit.
				return r.Err
			}
		}
		if err := a.flush(ctx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		a.committed()
		return nil
	}()
	for _, r := range batch {
		if err != nil {
			r.Results, r.Err = nil, fmt.Errorf("append events: %w", interpretError(err))
		}
	}
}

// appender assigns indexes and collects rows of one transaction, then
// writes them with multi-row statements.
type appender struct {
	db      *DB
	tx      *sql.Tx
	now     time.Time
	nextSeq int64
	heads   map[string]*orgHead
	seen    map[dedupeKey]trail.AppendResult

	actions    []any // 2 values a row: organization actions not seen before
	newActions map[[2]string]bool
	events     []any // eventColumns values a row
	targets    []any // 4 values a row
	fts        []any // 2 values a row
	idem       []any // 5 values a row
	expired    []any // organization and key hash of each expired de-duplication entry
	counts     map[countKey]int64
}

// countKey is a row of event_counts.
type countKey struct {
	org, action string
	hour        int64
}

type orgHead struct{ next, stored int64 }

type dedupeKey struct {
	org  string
	hash [32]byte
}

// newAppender returns an appender for a transaction of about n events:
// its rows and de-duplication map are sized once (trail import's
// transactions hold 10,000).
func (db *DB) newAppender(ctx context.Context, tx *sql.Tx, n int) (*appender, error) {
	a := &appender{db: db, tx: tx, now: db.Now().UTC(), heads: map[string]*orgHead{}, seen: make(map[dedupeKey]trail.AppendResult, n), newActions: map[[2]string]bool{},
		counts: map[countKey]int64{}, events: make([]any, 0, n*eventColumns), fts: make([]any, 0, 2*n), idem: make([]any, 0, 5*n)}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&a.nextSeq); err != nil {
		return nil, err
	}
	a.nextSeq++
	return a, nil
}

// add assigns ids and indexes to one request's events. An unknown
// organization fails only this request.
func (a *appender) add(ctx context.Context, r *appendRequest) ([]trail.AppendResult, error) {
	orgID, inputs := r.OrgID, r.Inputs
	head, ok := a.heads[orgID]
	if !ok {
		head = &orgHead{}
		err := a.tx.QueryRowContext(ctx, `SELECT next_index FROM organizations WHERE id = ?`, orgID).Scan(&head.next)
		if err == sql.ErrNoRows {
			return nil, trail.ErrOrganizationNotFound(orgID)
		} else if err != nil {
			return nil, err
		}
		head.stored = head.next
		a.heads[orgID] = head
	}
	var lookup [][]byte
	for i := range inputs {
		if _, ok := a.seen[dedupeKey{orgID, r.Keys[i]}]; !ok {
			lookup = append(lookup, r.Keys[i][:])
		}
	}
	if err := a.loadDedupe(ctx, orgID, lookup); err != nil {
		return nil, err
	}
	results := make([]trail.AppendResult, len(inputs))
	for i, in := range inputs {
		if prev, ok := a.seen[dedupeKey{orgID, r.Keys[i]}]; ok {
			results[i] = trail.AppendResult{ID: prev.ID, Index: prev.Index, Duplicate: true}
			continue
		}
		ev := in.Stored(a.db.ids.New(a.now), orgID, head.next, a.now)
		head.next++
		data := r.Encoded[i].StoredJSON(ev.ID, orgID, ev.Index, a.now)
		seq := a.nextSeq
		a.nextSeq++
		if k := [2]string{orgID, ev.Action}; !a.newActions[k] && !a.db.actions.Has(orgID, ev.Action) {
			a.newActions[k] = true
			a.actions = append(a.actions, orgID, ev.Action)
		}
		leaf := r.Encoded[i].LeafHash(ev.ID, orgID, a.now)
		a.events = append(a.events, orgID, ev.Index, ev.ID, ev.Action, ev.Actor.ID, ev.Actor.Type, ev.Actor.Name, ev.OccurredAt.UnixNano(), string(data), leaf[:])
		for _, t := range ev.Targets {
			a.targets = append(a.targets, orgID, t.ID, t.Type, seq)
		}
		a.fts = append(a.fts, seq, r.Search[i])
		a.counts[countKey{orgID, ev.Action, ev.OccurredAt.UnixNano() / hourNanos}]++
		a.idem = append(a.idem, orgID, r.Keys[i][:], ev.ID, ev.Index, r.Encoded[i].DedupeStamp(a.now))
		res := trail.AppendResult{ID: ev.ID, Index: ev.Index}
		a.seen[dedupeKey{orgID, r.Keys[i]}] = res
		results[i] = res
	}
	return results, nil
}

// loadDedupe reads the de-duplication entries among hashes: the live
// ones into seen, the expired ones into expired, which flush deletes
// before it inserts the new entries (the expiry loop may not have yet).
func (a *appender) loadDedupe(ctx context.Context, orgID string, hashes [][]byte) error {
	cutoff := a.now.Add(-trail.IdempotencyWindow).UnixNano()
	for len(hashes) > 0 {
		chunk := hashes[:min(len(hashes), 500)]
		hashes = hashes[len(chunk):]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, orgID)
		for _, h := range chunk {
			args = append(args, h)
		}
		rows, err := a.tx.QueryContext(ctx, `SELECT key_hash, event_id, idx, created_at FROM idempotency
			WHERE organization_id = ? AND key_hash IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var hash []byte
			var r trail.AppendResult
			var created int64
			if err := rows.Scan(&hash, &r.ID, &r.Index, &created); err != nil {
				rows.Close()
				return err
			}
			if created <= cutoff {
				a.expired = append(a.expired, orgID, hash)
				continue
			}
			var k dedupeKey
			k.org = orgID
			copy(k.hash[:], hash)
			a.seen[k] = r
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (a *appender) flush(ctx context.Context) error {
	// No statement here may need undoing alone, so SQLite keeps no
	// statement journal for any (a copy of each page an earlier
	// statement of the transaction changed, made before this one changes
	// it again: 28 % of the appends' inserts into one organization,
	// BENCHMARKS.md). OR FAIL, OR IGNORE: a statement that fails fails
	// the whole transaction (commit rolls it back). The events' seq is
	// left to SQLite, which gives each new row the largest rowid plus
	// one, as add did (an explicit INTEGER PRIMARY KEY value may abort,
	// which needs the journal); the check below makes sure. An expired
	// de-duplication entry of a key used again is deleted first, rather
	// than replaced (OR REPLACE of a NOT NULL column may abort too).
	if err := a.insert(ctx, `INSERT OR FAIL INTO events (organization_id, idx, id, action, actor_id, actor_type, actor_name, occurred_at, data, leaf_hash) VALUES `, eventColumns, a.events, ""); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if len(a.events) > 0 {
		var last int64
		if err := a.tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM events`).Scan(&last); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		if last != a.nextSeq-1 {
			return fmt.Errorf("insert events: the last is at seq %d, not %d", last, a.nextSeq-1)
		}
	}
	if err := a.insert(ctx, `INSERT OR IGNORE INTO org_actions (organization_id, action) VALUES `, 2, a.actions, ""); err != nil {
		return fmt.Errorf("insert organization actions: %w", err)
	}
	if err := a.insert(ctx, `INSERT OR FAIL INTO event_targets (organization_id, target_id, target_type, seq) VALUES `, 4, a.targets, ""); err != nil {
		return fmt.Errorf("insert targets: %w", err)
	}
	if err := a.insert(ctx, `INSERT OR FAIL INTO events_fts (rowid, body) VALUES `, 2, a.fts, ""); err != nil {
		return fmt.Errorf("insert search text: %w", err)
	}
	for e := a.expired; len(e) > 0; e = e[2:] {
		if _, err := a.tx.ExecContext(ctx, `DELETE FROM idempotency WHERE organization_id = ? AND key_hash = ?`, e[0], e[1]); err != nil {
			return fmt.Errorf("delete expired idempotency keys: %w", err)
		}
	}
	if err := a.insert(ctx, `INSERT OR FAIL INTO idempotency (organization_id, key_hash, event_id, idx, created_at) VALUES `, 5, a.idem, ""); err != nil {
		return fmt.Errorf("insert idempotency keys: %w", err)
	}
	if len(a.counts) > 0 {
		rows := make([]any, 0, 4*len(a.counts))
		for k, n := range a.counts {
			rows = append(rows, k.org, k.hour, k.action, n)
		}
		if err := a.insert(ctx, `INSERT INTO event_counts (organization_id, hour, action, n) VALUES `, 4, rows,
			` ON CONFLICT (organization_id, hour, action) DO UPDATE SET n = n + excluded.n`); err != nil {
			return fmt.Errorf("count events: %w", err)
		}
		clear(a.counts)
	}
	for org, h := range a.heads {
		if h.next == h.stored {
			continue
		}
		if _, err := a.tx.ExecContext(ctx, `UPDATE organizations SET next_index = ? WHERE id = ?`, h.next, org); err != nil {
			return fmt.Errorf("update organization head: %w", err)
		}
		h.stored = h.next
	}
	a.actions, a.events, a.targets, a.fts, a.idem, a.expired = a.actions[:0], a.events[:0], a.targets[:0], a.fts[:0], a.idem[:0], a.expired[:0]
	return nil
}

// eventColumns is how many values an event's row of a.events holds.
const eventColumns = 10

// insert writes rows of width values in statements of up to 500 rows.
func (a *appender) insert(ctx context.Context, head string, width int, values []any, tail string) error {
	const rowsPerStatement = 500
	row := "(" + placeholders(width) + ")"
	for len(values) > 0 {
		n := min(len(values)/width, rowsPerStatement)
		var sb strings.Builder
		sb.Grow(len(head) + n*(len(row)+2) + len(tail))
		sb.WriteString(head)
		for i := 0; i < n; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(row)
		}
		sb.WriteString(tail)
		if _, err := a.tx.ExecContext(ctx, sb.String(), values[:n*width]...); err != nil {
			return err
		}
		values = values[n*width:]
	}
	return nil
}

// committed is called after the transaction committed.
func (a *appender) committed() { a.db.actions.Mark(a.newActions) }

// appendOwn appends one of Trail's own audit events inside tx.
func (db *DB) appendOwn(ctx context.Context, tx *sql.Tx, orgID string, in *trail.EventInput) error {
	a, err := db.newAppender(ctx, tx, 1)
	if err != nil {
		return err
	}
	if _, err := a.add(ctx, store.NewAppendRequest(orgID, []*trail.EventInput{in}, searchForm)); err != nil {
		return err
	}
	return a.flush(ctx)
}

// FindEventByID returns one event of the organization.
func (s *EventService) FindEventByID(ctx context.Context, orgID, id string) (*trail.Event, error) {
	return store.FindEvent(ctx, orgID, id, func(ctx context.Context) (data string, err error) {
		if orgID == "" {
			err = s.db.reader.QueryRowContext(ctx, `SELECT data FROM events WHERE id = ?`, id).Scan(&data)
		} else {
			err = s.db.reader.QueryRowContext(ctx, `SELECT data FROM events WHERE id = ? AND organization_id = ?`, id, orgID).Scan(&data)
		}
		return data, noRows(err)
	}, func(ctx context.Context, ev *trail.Event) error {
		// The event's contents were purged: its id, index and leaf hash.
		return noRows(s.db.reader.QueryRowContext(ctx, `SELECT organization_id, idx FROM purged_events WHERE id = ?`, id).Scan(&ev.OrganizationID, &ev.Index))
	}, func(ctx context.Context, ev *trail.Event) error {
		leaves, err := NewLogStore(s.db).tileLeaves(ctx, ev.OrganizationID, nil, ev.Index, ev.Index+1)
		if len(leaves) == 1 {
			ev.PurgedLeafHash = leaves[0][:]
		}
		return err
	})
}

// FindPurgedEvents returns purged events of an index range, and of a
// period by when they occurred (those purged before that was kept count
// as in every period).
func (s *LogStore) FindPurgedEvents(ctx context.Context, f trail.PurgedEventFilter) ([]*trail.Event, error) {
	q := `SELECT idx, id FROM purged_events WHERE organization_id = ? AND idx > ? AND idx < ?`
	args := []any{f.OrganizationID, f.After, f.Below}
	if f.RangeStart != nil {
		q += ` AND (occurred_at IS NULL OR occurred_at >= ?)`
		args = append(args, f.RangeStart.UnixNano())
	}
	if f.RangeEnd != nil {
		q += ` AND (occurred_at IS NULL OR occurred_at < ?)`
		args = append(args, f.RangeEnd.UnixNano())
	}
	rows, err := s.db.reader.QueryContext(ctx, q+` ORDER BY idx LIMIT ?`, append(args, max(f.Limit, 1))...)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (*trail.Event, error) {
		ev := &trail.Event{OrganizationID: f.OrganizationID, Purged: true}
		return ev, r.Scan(&ev.Index, &ev.ID)
	})
}

// ftsQuery turns q into an FTS5 query in which every word is a quoted
// phrase, so that no FTS5 syntax reaches the engine.
func ftsQuery(q string) string {
	var parts []string
	for _, w := range strings.Fields(q) {
		parts = append(parts, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(parts, " AND ")
}
