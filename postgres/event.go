package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/text/unicode/norm"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// appendRequest is an append on its way through the group commit.
type appendRequest = store.AppendRequest[pgtype.TSVector]

// searchForm is what the full-text index stores of an event's text.
var searchForm = func(text string) pgtype.TSVector { return searchVector(searchWords(text)) }

// AppendEvents queues the events for a group committer and waits until
// their transaction is committed (and, with synchronous_commit on, flushed
// to the WAL on disk) or has failed.
func (s *EventService) AppendEvents(ctx context.Context, orgID string, inputs []*trail.EventInput) ([]trail.AppendResult, error) {
	return store.Append(ctx, &s.db.queue, orgID, inputs, searchForm)
}

// commit writes a group of requests in one transaction. When the month's
// partition is missing (the maintenance task has not run, or the clock
// jumped), it creates it and tries once more.
func (db *DB) commit(batch []*appendRequest) {
	if db.citus {
		if groups := byOrganization(batch); len(groups) > 1 {
			db.commitApart(groups)
			return
		}
	}
	a, err := db.commitOnce(batch)
	if isMissingPartition(err) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.ensurePartitions(ctx, a.now)
		cancel()
		if err == nil {
			a, err = db.commitOnce(batch)
		}
	}
	if err != nil && len(batch) > 1 && isDataError(err) {
		// Something in one request's data was refused: commit each
		// request on its own, so that it fails alone.
		for _, r := range batch {
			db.commit([]*appendRequest{r})
		}
		return
	}
	if err == nil {
		a.committed()
	}
	for _, r := range batch {
		if err != nil {
			r.Results, r.Err = nil, fmt.Errorf("append events: %w", interpretError(err))
		}
	}
}

// citusCommitsAtOnce bounds the transactions of one group commit that
// run at once on Citus (one per organization).
const citusCommitsAtOnce = 8

// byOrganization splits a group commit by organization, each part in the
// order of the batch.
func byOrganization(batch []*appendRequest) [][]*appendRequest {
	var groups [][]*appendRequest
	at := map[string]int{}
	for _, r := range batch {
		i, ok := at[r.OrgID]
		if !ok {
			i = len(groups)
			at[r.OrgID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

// commitApart commits each organization's requests in a transaction of
// its own, several at once. On Citus a transaction that locked the head
// rows of organizations on two shards would need a multi-shard row lock,
// which Citus refuses; one organization's rows are on one shard, so its
// transaction is routed to one worker and commits there alone.
func (db *DB) commitApart(groups [][]*appendRequest) {
	sem := make(chan struct{}, citusCommitsAtOnce)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			db.commit(g)
		}()
	}
	wg.Wait()
}

// isDataError reports whether PostgreSQL refused a value (SQLSTATE class
// 22, data exception) rather than the transaction failing as a whole.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "22")
}

func (db *DB) commitOnce(batch []*appendRequest) (*appender, error) {
	ctx := context.Background()
	a := db.newAppender(nil)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		a.tx = tx
		orgs := make([]string, 0, len(batch))
		for _, r := range batch {
			orgs = append(orgs, r.OrgID)
		}
		if err := a.lockHeads(ctx, orgs); err != nil {
			return err
		}
		if err := a.loadDedupe(ctx, batch); err != nil {
			return err
		}
		for _, r := range batch {
			r.Results, r.Err = a.add(r)
			if r.Err != nil && trail.ErrorCode(r.Err) == trail.EINTERNAL {
				return r.Err
			}
		}
		return a.flush(ctx)
	})
	return a, err
}

// isMissingPartition reports whether err says that no partition takes a
// row.
func isMissingPartition(err error) bool {
	var pe *pgconn.PgError
	// A check violation without a constraint is partition routing's; a
	// Citus worker reports it as an internal error on the shard.
	return errors.As(err, &pe) && (pe.Code == "23514" && pe.ConstraintName == "" ||
		pe.Code == "XX000" && strings.HasPrefix(pe.Message, "no partition of relation"))
}

// appender assigns indexes under the organizations' head-row locks and
// collects the rows of one transaction, then writes them (flush): events
// and targets with COPY or, for a small commit on Citus, as VALUES; the
// other tables with one statement each.
type appender struct {
	db    *DB
	tx    pgx.Tx
	now   time.Time
	heads map[string]*orgHead
	seen  map[dedupeKey]trail.AppendResult

	newActions map[[2]string]bool
	counts     map[countKey]int64 // events by hour and action, for event_counts
	events     [][]any            // rows of events, in the order of eventColumns
	targets    [][]any            // rows of event_targets, in the order of targetColumns
	idem       struct {
		org, eventID []string
		hash         [][]byte
		idx, created []int64
	}
}

var eventColumns = []string{"organization_id", "idx", "received_at", "id", "action", "actor_id", "actor_type", "actor_name",
	"occurred_at", "occurred_day", "target_ids", "target_types", "search", "data", "leaf_hash"}

var targetColumns = []string{"organization_id", "target_id", "target_type", "idx", "received_at"}

type orgHead struct{ next, stored int64 }

// countKey is a row of event_counts.
type countKey struct {
	org, action string
	hour        int64
}

// hourNanos is one hour in the unit of occurred_at, event_counts' unit.
const hourNanos = int64(time.Hour)

type dedupeKey struct {
	org  string
	hash [32]byte
}

func (db *DB) newAppender(tx pgx.Tx) *appender {
	return &appender{db: db, tx: tx, now: db.Now().UTC(), heads: map[string]*orgHead{},
		seen: map[dedupeKey]trail.AppendResult{}, newActions: map[[2]string]bool{}, counts: map[countKey]int64{}}
}

// lockHeads locks the head rows of the organizations, in id order so that
// concurrent transactions cannot deadlock, and reads their next index.
// Until the transaction ends, no other transaction on any node appends to
// these organizations: that makes every index unique and gapless.
// A commit of one organization (every commit on Citus) names it alone,
// so that Citus routes the lock to its shard.
func (a *appender) lockHeads(ctx context.Context, orgs []string) error {
	q, arg := `SELECT id, next_index FROM organizations WHERE id = ANY($1) ORDER BY id FOR UPDATE`, any(orgs)
	if orgs = slices.Compact(slices.Sorted(slices.Values(orgs))); len(orgs) == 1 {
		q, arg = `SELECT id, next_index FROM organizations WHERE id = $1 FOR UPDATE`, orgs[0]
	}
	rows, err := a.tx.Query(ctx, q, arg)
	if err != nil {
		return fmt.Errorf("lock organization heads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		h := &orgHead{}
		if err := rows.Scan(&id, &h.next); err != nil {
			return err
		}
		h.stored = h.next
		a.heads[id] = h
	}
	return rows.Err()
}

// loadDedupe reads the live de-duplication entries of the batch's events.
// It runs after lockHeads: an entry committed by another node before the
// lock was granted is visible here.
func (a *appender) loadDedupe(ctx context.Context, batch []*appendRequest) error {
	var orgs []string
	var hashes [][]byte
	for _, r := range batch {
		if a.heads[r.OrgID] == nil {
			continue
		}
		for i := range r.Inputs {
			orgs, hashes = append(orgs, r.OrgID), append(hashes, r.Keys[i][:])
		}
	}
	if len(orgs) == 0 {
		return nil
	}
	cutoff := a.now.Add(-trail.IdempotencyWindow).UnixNano()
	q, org := `SELECT i.organization_id, i.key_hash, i.event_id, i.idx FROM idempotency i
		JOIN unnest($1::text[], $2::bytea[]) AS k(org, hash) ON i.organization_id = k.org AND i.key_hash = k.hash
		WHERE i.created_at > $3`, any(orgs)
	if len(a.heads) == 1 {
		// One organization (every commit on Citus): named, so that Citus
		// routes the read to its shard rather than join on every one.
		q, org = `SELECT i.organization_id, i.key_hash, i.event_id, i.idx FROM idempotency i
			WHERE i.organization_id = $1 AND i.key_hash = ANY ($2::bytea[]) AND i.created_at > $3`, orgs[0]
	}
	rows, err := a.tx.Query(ctx, q, org, hashes, cutoff)
	if err != nil {
		return fmt.Errorf("read de-duplication keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k dedupeKey
		var hash []byte
		var r trail.AppendResult
		if err := rows.Scan(&k.org, &hash, &r.ID, &r.Index); err != nil {
			return err
		}
		copy(k.hash[:], hash)
		a.seen[k] = r
	}
	return rows.Err()
}

// add assigns ids and indexes to one request's events. An unknown
// organization fails only this request.
func (a *appender) add(r *appendRequest) ([]trail.AppendResult, error) {
	orgID := r.OrgID
	head := a.heads[orgID]
	if head == nil {
		return nil, trail.ErrOrganizationNotFound(orgID)
	}
	results := make([]trail.AppendResult, len(r.Inputs))
	for i, in := range r.Inputs {
		key := dedupeKey{orgID, r.Keys[i]}
		if prev, ok := a.seen[key]; ok {
			results[i] = trail.AppendResult{ID: prev.ID, Index: prev.Index, Duplicate: true}
			continue
		}
		ev := in.Stored(a.db.ids.New(a.now), orgID, head.next, a.now)
		head.next++
		data := r.Encoded[i].StoredJSON(ev.ID, orgID, ev.Index, a.now)
		if k := [2]string{orgID, ev.Action}; !a.newActions[k] && !a.db.actions.Has(orgID, ev.Action) {
			a.newActions[k] = true
		}
		ids, types := make([]string, len(ev.Targets)), make([]string, len(ev.Targets))
		for j, t := range ev.Targets {
			ids[j], types[j] = t.ID, t.Type
			a.targets = append(a.targets, []any{orgID, t.ID, t.Type, ev.Index, a.now})
		}
		ns := ev.OccurredAt.UnixNano()
		a.counts[countKey{orgID, ev.Action, ns / hourNanos}]++
		leaf := r.Encoded[i].LeafHash(ev.ID, orgID, a.now)
		a.events = append(a.events, []any{orgID, ev.Index, a.now, ev.ID, ev.Action, ev.Actor.ID, ev.Actor.Type, ev.Actor.Name,
			ns, int32(ns / dayNanos), ids, types, r.Search[i], string(data), leaf[:]})
		a.idem.org, a.idem.hash, a.idem.eventID, a.idem.idx = append(a.idem.org, orgID), append(a.idem.hash, key.hash[:]), append(a.idem.eventID, ev.ID), append(a.idem.idx, ev.Index)
		a.idem.created = append(a.idem.created, r.Encoded[i].DedupeStamp(a.now))
		r := trail.AppendResult{ID: ev.ID, Index: ev.Index}
		a.seen[key] = r
		results[i] = r
	}
	return results, nil
}

// flush writes the collected rows: events and targets with binary COPY,
// the rest, and the new heads, in one more round trip. On Citus, a commit
// of fewer than DB.citusCopyAt events inserts its rows as VALUES in that
// round trip instead: Citus makes any transaction that COPYs into a
// distributed table a two-phase commit (PREPARE on the worker, a commit
// record on the coordinator, COMMIT PREPARED), whereas rows of one
// organization inserted as values are routed to its shard and the
// transaction commits on that worker alone. Larger commits pay the two
// phases and gain more from COPY than they lose.
func (a *appender) flush(ctx context.Context) error {
	b := &pgx.Batch{}
	if a.db.citus {
		if len(a.events) < a.db.citusCopyAt {
			queueValues(b, insertEvents, a.events, "")
			queueValues(b, insertTargets, a.targets, "")
		} else if err := a.copyRows(ctx); err != nil {
			return err
		}
		a.queueRouted(b)
	} else {
		if err := a.copyRows(ctx); err != nil {
			return err
		}
		a.queueUnnest(b)
	}
	var ids []string
	var nexts []int64
	for id, h := range a.heads {
		if h.next != h.stored {
			ids, nexts = append(ids, id), append(nexts, h.next)
			h.stored = h.next
		}
	}
	switch {
	case len(ids) == 1: // routed to the organization's shard on Citus
		b.Queue(`UPDATE organizations SET next_index = $2 WHERE id = $1`, ids[0], nexts[0])
	case len(ids) > 1:
		b.Queue(`UPDATE organizations o SET next_index = u.n FROM unnest($1::text[], $2::bigint[]) AS u(id, n) WHERE o.id = u.id`, ids, nexts)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := a.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	a.events, a.targets = nil, nil
	a.idem.org, a.idem.hash, a.idem.eventID, a.idem.idx, a.idem.created = nil, nil, nil, nil, nil
	return nil
}

// The INSERTs of eventColumns and targetColumns, without their rows.
var (
	insertEvents  = "INSERT INTO events (" + strings.Join(eventColumns, ", ") + ") VALUES "
	insertTargets = "INSERT INTO event_targets (" + strings.Join(targetColumns, ", ") + ") VALUES "
)

// copyRows writes the collected events and targets with binary COPY.
func (a *appender) copyRows(ctx context.Context) error {
	if len(a.events) > 0 {
		if _, err := a.tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromRows(a.events)); err != nil {
			return fmt.Errorf("write events: %w", err)
		}
	}
	if len(a.targets) > 0 {
		if _, err := a.tx.CopyFrom(ctx, pgx.Identifier{"event_targets"}, targetColumns, pgx.CopyFromRows(a.targets)); err != nil {
			return fmt.Errorf("write targets: %w", err)
		}
	}
	return nil
}

// queueUnnest queues the writes of the de-duplication keys, the new
// actions and the hourly counts, each table in one statement over arrays.
func (a *appender) queueUnnest(b *pgx.Batch) {
	if len(a.idem.org) > 0 {
		b.Queue(`INSERT INTO idempotency (organization_id, key_hash, event_id, idx, created_at)
			SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::bigint[])
			ON CONFLICT (organization_id, key_hash) DO UPDATE SET event_id = excluded.event_id, idx = excluded.idx, created_at = excluded.created_at`,
			a.idem.org, a.idem.hash, a.idem.eventID, a.idem.idx, a.idem.created)
	}
	if len(a.newActions) > 0 {
		var orgs, actions []string
		for k := range a.newActions {
			orgs, actions = append(orgs, k[0]), append(actions, k[1])
		}
		b.Queue(`INSERT INTO org_actions (organization_id, action) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`, orgs, actions)
	}
	if len(a.counts) > 0 {
		var orgs, actions []string
		var hours, ns []int64
		for k, n := range a.counts {
			orgs, actions, hours, ns = append(orgs, k.org), append(actions, k.action), append(hours, k.hour), append(ns, n)
		}
		b.Queue(`INSERT INTO event_counts (organization_id, hour, action, n) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[])
			ON CONFLICT (organization_id, hour, action) DO UPDATE SET n = event_counts.n + excluded.n`, orgs, hours, actions, ns)
		clear(a.counts)
	}
}

// queueRouted queues the same writes as queueUnnest as INSERTs of rows
// (VALUES), which Citus routes to the shard of their organization; an
// INSERT … SELECT from arrays goes through the coordinator and may reach
// every worker, making each commit a two-phase one.
func (a *appender) queueRouted(b *pgx.Batch) {
	var rows [][]any
	for i := range a.idem.org {
		rows = append(rows, []any{a.idem.org[i], a.idem.hash[i], a.idem.eventID[i], a.idem.idx[i], a.idem.created[i]})
	}
	queueValues(b, `INSERT INTO idempotency (organization_id, key_hash, event_id, idx, created_at) VALUES `, rows,
		` ON CONFLICT (organization_id, key_hash) DO UPDATE SET event_id = excluded.event_id, idx = excluded.idx, created_at = excluded.created_at`)
	rows = nil
	for k := range a.newActions {
		rows = append(rows, []any{k[0], k[1]})
	}
	queueValues(b, `INSERT INTO org_actions (organization_id, action) VALUES `, rows, ` ON CONFLICT DO NOTHING`)
	rows = nil
	for k, n := range a.counts {
		rows = append(rows, []any{k.org, k.hour, k.action, n})
	}
	queueValues(b, `INSERT INTO event_counts (organization_id, hour, action, n) VALUES `, rows,
		` ON CONFLICT (organization_id, hour, action) DO UPDATE SET n = event_counts.n + excluded.n`)
	clear(a.counts)
}

// queueValues queues insert (ending in VALUES) with the rows as
// parameters, then suffix, in statements of at most 60,000 parameters
// (PostgreSQL takes 65,535).
func queueValues(b *pgx.Batch, insert string, rows [][]any, suffix string) {
	if len(rows) == 0 {
		return
	}
	per := 60000 / len(rows[0])
	for len(rows) > 0 {
		part := rows[:min(per, len(rows))]
		rows = rows[len(part):]
		var q strings.Builder
		q.WriteString(insert)
		args := make([]any, 0, len(part)*len(part[0]))
		for i, r := range part {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for j, v := range r {
				if j > 0 {
					q.WriteByte(',')
				}
				args = append(args, v)
				fmt.Fprintf(&q, "$%d", len(args))
			}
			q.WriteByte(')')
		}
		q.WriteString(suffix)
		b.Queue(q.String(), args...)
	}
}

// committed is called after the transaction committed.
func (a *appender) committed() { a.db.actions.Mark(a.newActions) }

// appendOwn appends one of Trail's own audit events inside tx. The caller
// commits; the organization's head row stays locked until then.
func (db *DB) appendOwn(ctx context.Context, tx pgx.Tx, orgID string, in *trail.EventInput) error {
	a := db.newAppender(tx)
	if err := a.lockHeads(ctx, []string{orgID}); err != nil {
		return err
	}
	r := store.NewAppendRequest(orgID, []*trail.EventInput{in}, searchForm)
	if err := a.loadDedupe(ctx, []*appendRequest{r}); err != nil {
		return err
	}
	if _, err := a.add(r); err != nil {
		return err
	}
	return a.flush(ctx)
}

// FindEventByID returns one event of the organization.
func (s *EventService) FindEventByID(ctx context.Context, orgID, id string) (*trail.Event, error) {
	return store.FindEvent(ctx, orgID, id, func(ctx context.Context) (data string, err error) {
		q, args := `SELECT data FROM events WHERE id = $1 AND organization_id = $2`, []any{id, orgID}
		if orgID == "" {
			q, args = `SELECT data FROM events WHERE id = $1`, []any{id}
		}
		return data, noRows(s.db.pool.QueryRow(ctx, q, args...).Scan(&data))
	}, func(ctx context.Context, ev *trail.Event) error {
		// The event's contents were purged: its id, index and leaf hash.
		return noRows(s.db.pool.QueryRow(ctx, `SELECT organization_id, idx FROM purged_events WHERE id = $1`, id).Scan(&ev.OrganizationID, &ev.Index))
	}, func(ctx context.Context, ev *trail.Event) (err error) {
		ev.PurgedLeafHash, err = NewLogStore(s.db).tileLeaf(ctx, ev.OrganizationID, ev.Index)
		return err
	})
}

// Limits of PostgreSQL's tsvector: longer words cannot be stored, later
// positions are stored as the last one, and a word keeps at most
// maxPositions positions.
const (
	maxWordBytes = 2047
	maxPosition  = 16383
	maxPositions = 255
)

// searchVector returns the tsvector of words, each at its position (from
// 1), with lexemes sorted and unique as PostgreSQL keeps them. Trail builds
// it rather than a PostgreSQL text-search parser, so that what is stored
// and what is asked (tsqueryLiteral) split words alike, and because it is
// cheaper.
func searchVector(words []string) pgtype.TSVector {
	// Sort the words' positions (not the words: moving pointers costs
	// write barriers) by word, then by position.
	order := make([]int32, 0, len(words))
	for i, w := range words {
		if len(w) <= maxWordBytes {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := strings.Compare(words[a], words[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	v := pgtype.TSVector{Valid: true}
	positions := make([]pgtype.TSVectorPosition, len(order))
	for i, o := range order {
		pos := uint16(min(int(o)+1, maxPosition))
		positions[i].Position = pos
		n := len(v.Lexemes)
		if n > 0 && v.Lexemes[n-1].Word == words[o] {
			// Positions past maxPosition are all maxPosition; PostgreSQL
			// refuses a repeated position.
			if p := &v.Lexemes[n-1].Positions; len(*p) < maxPositions && (*p)[len(*p)-1].Position < pos {
				*p = (*p)[:len(*p)+1]
				(*p)[len(*p)-1] = positions[i]
			}
			continue
		}
		v.Lexemes = append(v.Lexemes, pgtype.TSVectorLexeme{Word: words[o], Positions: positions[i : i+1 : len(order)]})
	}
	return v
}

// tsqueryLiteral returns q as a tsquery in which each whitespace-separated
// word of q is a phrase of its search words and all phrases must match.
// ok is false when a word cannot match anything: it has no letters or
// digits, or a word too long to be stored.
func tsqueryLiteral(q string) (lit string, ok bool) {
	var b strings.Builder
	for _, field := range strings.Fields(q) {
		words := searchWords(field)
		if len(words) == 0 {
			return "", false
		}
		if b.Len() > 0 {
			b.WriteString(" & ")
		}
		b.WriteByte('(')
		for i, w := range words {
			if len(w) > maxWordBytes {
				return "", false
			}
			if i > 0 {
				b.WriteString(" <-> ")
			}
			quoteLexeme(&b, w)
		}
		b.WriteByte(')')
	}
	return b.String(), b.Len() > 0
}

// quoteLexeme writes a lexeme in quotes, as tsvector and tsquery input
// want it.
func quoteLexeme(b *strings.Builder, w string) {
	b.WriteByte('\'')
	for _, r := range w {
		if r == '\'' || r == '\\' {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
}

// searchWords splits s into the words q matches, as SQLite's FTS5
// unicode61 tokenizer (remove_diacritics 1) does, so that both drivers
// find the same events: a word is a run of letters, digits and
// private-use characters, case-folded; combining diacritical marks
// (U+0300–U+036F) are dropped; a Latin letter with one diacritic becomes
// its base letter ("café" → "cafe", but "việt" stays); every other
// character separates words (so "हिन्दी" is ह, न, द, as in FTS5).
func searchWords(s string) []string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
		})
	}
	var words []string
	var w strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x300 && r <= 0x36f:
			// a combining diacritical mark: dropped
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r):
			w.WriteRune(foldRune(r))
		case w.Len() > 0:
			words = append(words, w.String())
			w.Reset()
		}
	}
	if w.Len() > 0 {
		words = append(words, w.String())
	}
	return words
}

// foldRune case-folds r and takes the diacritic off a Latin letter that
// has exactly one.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return unicode.ToLower(r)
	}
	r = unicode.ToLower(unicode.ToUpper(r)) // final sigma and title case fold too
	if unicode.Is(unicode.Latin, r) {
		if d := []rune(norm.NFD.String(string(r))); len(d) == 2 && unicode.Is(unicode.Mn, d[1]) {
			return d[0]
		}
	}
	return r
}
