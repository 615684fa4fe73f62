package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// PendingLogs returns organizations whose tree is behind their log.
func (s *LogStore) PendingLogs(ctx context.Context, after string, limit int) ([]trail.LogHead, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT o.id, o.next_index, t.tree_size FROM organizations o
		LEFT JOIN log_trees t ON t.organization_id = o.id
		WHERE (t.tree_size IS NULL OR o.next_index > t.tree_size) AND o.id > $1 ORDER BY o.id LIMIT $2`, after, limit)
	return collectRows(rows, err, func(r pgx.Row) (h trail.LogHead, err error) {
		var tree *int64
		err = r.Scan(&h.OrganizationID, &h.LogSize, &tree)
		if tree != nil {
			h.TreeSize, h.HasCheckpoint = *tree, true
		}
		return h, err
	})
}

// LogHead returns how far an organization's log and tree are.
func (s *LogStore) LogHead(ctx context.Context, orgID string) (*trail.LogHead, error) {
	h := &trail.LogHead{OrganizationID: orgID}
	var tree *int64
	err := s.db.pool.QueryRow(ctx, `SELECT o.next_index, t.tree_size FROM organizations o
		LEFT JOIN log_trees t ON t.organization_id = o.id WHERE o.id = $1`, orgID).Scan(&h.LogSize, &tree)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.ErrOrganizationNotFound(orgID)
	} else if err != nil {
		return nil, fmt.Errorf("log head: %w", err)
	}
	if tree != nil {
		h.TreeSize, h.HasCheckpoint = *tree, true
	}
	return h, nil
}

// LeafHashes returns the leaf hashes of events [from, to), from the event
// rows or, for events whose partition retention dropped, from the level-0
// tiles.
func (s *LogStore) LeafHashes(ctx context.Context, orgID string, from, to int64) ([][trail.HashSize]byte, error) {
	out := make([][trail.HashSize]byte, 0, to-from)
	rows, err := s.db.pool.Query(ctx, `SELECT idx, leaf_hash FROM events WHERE organization_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`, orgID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read leaf hashes: %w", err)
	}
	defer rows.Close()
	next := from
	var gaps [][2]int64
	var found [][trail.HashSize]byte
	var at []int64
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if len(h) != trail.HashSize {
			return nil, fmt.Errorf("event %d of %s has no leaf hash", idx, orgID)
		}
		if idx > next {
			gaps = append(gaps, [2]int64{next, idx})
		}
		found, at = append(found, [trail.HashSize]byte(h)), append(at, idx)
		next = idx + 1
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if next < to {
		gaps = append(gaps, [2]int64{next, to})
	}
	if len(gaps) == 0 {
		return found, nil
	}
	// Some rows are gone (retention): merge in the tiles' leaf hashes.
	fromTiles := map[int64][trail.HashSize]byte{}
	for _, g := range gaps {
		var ids []trail.TileID
		for n := g[0] / trail.TileWidth; n <= (g[1]-1)/trail.TileWidth; n++ {
			ids = append(ids, trail.TileID{Level: 0, Index: n})
		}
		tiles, err := s.Tiles(ctx, orgID, ids)
		if err != nil {
			return nil, err
		}
		for _, t := range tiles {
			for i := g[0]; i < g[1]; i++ {
				if i/trail.TileWidth != t.Index {
					continue
				}
				off := int(i%trail.TileWidth) * trail.HashSize
				if off+trail.HashSize <= len(t.Hashes) {
					fromTiles[i] = [trail.HashSize]byte(t.Hashes[off : off+trail.HashSize])
				}
			}
		}
	}
	j := 0
	for i := from; i < to; i++ {
		if j < len(at) && at[j] == i {
			out = append(out, found[j])
			j++
		} else if h, ok := fromTiles[i]; ok {
			out = append(out, h)
		} else {
			break
		}
	}
	return out, nil
}

// Tiles returns the stored tiles among ids: one primary-key lookup per
// tile, sent in one batch. (A join with the arrays of ids gets a generic
// plan that, once the statement is prepared, may scan every tile of the
// organization: 15 ms a proof at 10 M events.)
func (s *LogStore) Tiles(ctx context.Context, orgID string, ids []trail.TileID) ([]*trail.Tile, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, id := range ids {
		b.Queue(`SELECT hashes FROM merkle_tiles WHERE organization_id = $1 AND level = $2 AND idx = $3`, orgID, int32(id.Level), id.Index)
	}
	br := s.db.pool.SendBatch(ctx, b)
	defer br.Close()
	var tiles []*trail.Tile
	for _, id := range ids {
		t := &trail.Tile{Level: id.Level, Index: id.Index}
		err := br.QueryRow().Scan(&t.Hashes)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read tiles: %w", err)
		}
		tiles = append(tiles, t)
	}
	return tiles, br.Close()
}

// AddCheckpoints stores the steps whose trees did not move, in one
// transaction. Integrators on several nodes race for a step; the row of
// log_trees decides, and the loser's step is left out. Steps are written
// in organization id order, so that two integrators cannot deadlock.
func (s *LogStore) AddCheckpoints(ctx context.Context, steps []*trail.CheckpointStep) error {
	ordered := slices.Clone(steps)
	slices.SortFunc(ordered, func(a, b *trail.CheckpointStep) int {
		return strings.Compare(a.Checkpoint.OrganizationID, b.Checkpoint.OrganizationID)
	})
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		for _, st := range ordered {
			st.Stored, st.Err = false, nil
			// A savepoint: this step alone may fail, the others go on.
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			stored, err := addStep(ctx, sp, st)
			if err != nil {
				if rerr := sp.Rollback(ctx); rerr != nil {
					return rerr
				}
				st.Err = err
				continue
			}
			if err := sp.Commit(ctx); err != nil {
				return err
			}
			st.Stored = stored
		}
		return nil
	})
	if err != nil {
		for _, st := range steps {
			st.Stored = false
		}
	}
	return err
}

// addStep stores one step unless its tree moved.
func addStep(ctx context.Context, tx pgx.Tx, st *trail.CheckpointStep) (bool, error) {
	cp := st.Checkpoint
	var tag pgconn.CommandTag
	var err error
	if st.PrevSize < 0 {
		tag, err = tx.Exec(ctx, `INSERT INTO log_trees (organization_id, tree_size) VALUES ($2, $1) ON CONFLICT DO NOTHING`, cp.Size, cp.OrganizationID)
	} else {
		tag, err = tx.Exec(ctx, `UPDATE log_trees SET tree_size = $1 WHERE organization_id = $2 AND tree_size = $3`, cp.Size, cp.OrganizationID, st.PrevSize)
	}
	if err != nil {
		return false, fmt.Errorf("move tree: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // another integrator was first
	}
	b := &pgx.Batch{}
	for _, t := range st.Tiles {
		b.Queue(`INSERT INTO merkle_tiles (organization_id, level, idx, hashes) VALUES ($1, $2, $3, $4)
			ON CONFLICT (organization_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, cp.OrganizationID, t.Level, t.Index, t.Hashes)
	}
	b.Queue(`INSERT INTO checkpoints (organization_id, tree_size, root, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
		cp.OrganizationID, cp.Size, cp.Root[:], cp.Note, cp.CreatedAt)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("store tiles and checkpoint: %w", interpretError(err))
	}
	return true, nil
}

const checkpointColumns = `organization_id, tree_size, root, note, created_at`

func scanCheckpoint(row pgx.Row) (*trail.Checkpoint, error) {
	cp := &trail.Checkpoint{}
	var root []byte
	if err := row.Scan(&cp.OrganizationID, &cp.Size, &root, &cp.Note, &cp.CreatedAt); err != nil {
		return nil, err
	}
	copy(cp.Root[:], root)
	cp.CreatedAt = cp.CreatedAt.UTC()
	return cp, nil
}

// LatestCheckpoint returns the organization's newest checkpoint.
func (s *LogStore) LatestCheckpoint(ctx context.Context, orgID string) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = $1 ORDER BY tree_size DESC LIMIT 1`, orgID))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpoint(orgID), "latest checkpoint")
}

// FindCheckpoint returns the checkpoint of one tree size.
func (s *LogStore) FindCheckpoint(ctx context.Context, orgID string, size int64) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = $1 AND tree_size = $2`, orgID, size))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpointOfSize(orgID, size), "find checkpoint")
}

// FindCheckpoints returns checkpoints of sizes above after, in size order.
func (s *LogStore) FindCheckpoints(ctx context.Context, orgID string, after int64, limit int) ([]*trail.Checkpoint, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = $1 AND tree_size > $2 ORDER BY tree_size LIMIT $3`, orgID, after, limit)
	return collectRows(rows, err, scanCheckpoint)
}

// ScanLog calls fn for each event row of the organization from index from
// on, in index order, checking each row's columns against its document.
// Purged events come in their place, with the leaf hash kept in the tree.
func (s *LogStore) ScanLog(ctx context.Context, orgID string, scan trail.LogScan) error {
	from, fn := scan.From, scan.Row
	tx, err := s.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	prows, err := tx.Query(ctx, `SELECT idx, id FROM purged_events WHERE organization_id = $1 AND idx >= $2 ORDER BY idx`, orgID, from)
	purged, err := collectRows(prows, err, func(row pgx.Row) (*trail.LogRow, error) {
		r := &trail.LogRow{Purged: true}
		return r, row.Scan(&r.Index, &r.ID)
	})
	if err != nil {
		return fmt.Errorf("read purged events: %w", err)
	}
	emitPurged := func(before int64) error {
		for len(purged) > 0 && purged[0].Index < before {
			r := purged[0]
			h, err := s.tileLeaf(ctx, orgID, r.Index)
			if err != nil {
				return err
			}
			if h == nil {
				r.Mismatch = "purged, and its leaf hash is not in the tree"
			}
			copy(r.LeafHash[:], h)
			if err := fn(r); err != nil {
				return err
			}
			purged = purged[1:]
		}
		return nil
	}
	ix := &trail.LogIndexes{Counts: map[trail.HourAction]int64{}, Days: map[int64]int64{}}
	last := from - 1
	for {
		page, err := scanPage(ctx, tx, orgID, last)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		var targets map[int64][]trail.Target
		if scan.Indexes != nil {
			// From just after the previous page: target rows between two
			// events (of none) are counted too.
			if targets, err = s.targetRows(ctx, tx, orgID, last+1, page[len(page)-1].row.Index); err != nil {
				return err
			}
		}
		for _, e := range page {
			row := e.row
			if err := emitPurged(row.Index); err != nil {
				return err
			}
			row.Data = []byte(e.data)
			copy(row.LeafHash[:], e.leaf)
			row.Mismatch = rowMismatch(e.org, row, e.received, e.action, e.actorID, e.actorType, e.name, e.occurred, e.day, e.targetIDs, e.targetTypes, e.data, e.leaf)
			if targets != nil {
				row.Targets = targets[row.Index]
				delete(targets, row.Index)
				stored := e.search
				row.Search = func(text string) (string, error) { return compareLexemes(stored, text), nil }
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		for _, ts := range targets {
			ix.OrphanTargets += int64(len(ts)) // rows of an index that is no event
		}
		last = page[len(page)-1].row.Index
		if len(page) < scanPageSize {
			break
		}
	}
	if err := emitPurged(math.MaxInt64); err != nil {
		return err
	}
	if scan.Indexes == nil {
		return nil
	}
	if err := readIndexes(ctx, tx, orgID, from, last, ix); err != nil {
		return err
	}
	return scan.Indexes(ix)
}

// scanPageSize is how many rows a page of ScanLog holds: each page is
// read whole before the next statement (one connection runs one at a
// time), all in the transaction's snapshot.
const scanPageSize = 1000

// eventRow is an events row as ScanLog reads it, every column kept to be
// checked against the document.
type eventRow struct {
	row                                   *trail.LogRow
	org, action, actorID, actorType, name string
	data                                  string
	received                              time.Time
	occurred                              int64
	day                                   int32
	targetIDs, targetTypes                []string
	search                                pgtype.TSVector
	leaf                                  []byte
}

// scanPage reads the page of event rows after index last.
func scanPage(ctx context.Context, tx pgx.Tx, orgID string, last int64) ([]*eventRow, error) {
	rows, err := tx.Query(ctx, `SELECT organization_id, idx, received_at, id, action, actor_id, actor_type, actor_name,
			occurred_at, occurred_day, target_ids, target_types, search, data, leaf_hash
		FROM events WHERE organization_id = $1 AND idx > $2 ORDER BY idx LIMIT $3`, orgID, last, scanPageSize)
	if err != nil {
		return nil, fmt.Errorf("scan log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*eventRow, error) {
		e := &eventRow{row: &trail.LogRow{}}
		return e, r.Scan(&e.org, &e.row.Index, &e.received, &e.row.ID, &e.action, &e.actorID, &e.actorType, &e.name,
			&e.occurred, &e.day, &e.targetIDs, &e.targetTypes, &e.search, &e.data, &e.leaf)
	})
}

// readIndexes reads the organization's indexes that are not rows of its
// events for fsck: target rows outside [from, last], the hourly counts,
// the by-day index and the actions catalogue.
func readIndexes(ctx context.Context, tx pgx.Tx, orgID string, from, last int64, ix *trail.LogIndexes) error {
	// Target rows before the first index read or after the last.
	var outside int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM event_targets WHERE organization_id = $1 AND (idx < $2 OR idx > $3)`, orgID, from, last).Scan(&outside); err != nil {
		return fmt.Errorf("read target rows: %w", err)
	}
	ix.OrphanTargets += outside
	queries := map[string]string{
		store.ReadHourlyCounts: `SELECT hour, action, n FROM event_counts WHERE organization_id = $1 AND n <> 0`,
		store.ReadByDay:        `SELECT occurred_day, count(*) FROM events WHERE organization_id = $1 GROUP BY occurred_day`,
		store.ReadActions:      `SELECT action FROM org_actions WHERE organization_id = $1`,
	}
	for _, r := range store.IndexReads(ix) {
		if err := scanInto(ctx, tx, r.Row, queries[r.What], orgID); err != nil {
			return fmt.Errorf("read %s: %w", r.What, err)
		}
	}
	return nil
}

// targetRows reads the rows of event_targets of events [lo, hi], by index.
func (s *LogStore) targetRows(ctx context.Context, tx pgx.Tx, orgID string, lo, hi int64) (map[int64][]trail.Target, error) {
	out := map[int64][]trail.Target{}
	var idx int64
	var t trail.Target
	err := scanInto(ctx, tx, store.Row{Dest: []any{&idx, &t.ID, &t.Type}, Add: func() error { out[idx] = append(out[idx], t); return nil }}, `SELECT idx, target_id, target_type FROM event_targets WHERE organization_id = $1 AND idx >= $2 AND idx <= $3`, orgID, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read target rows: %w", err)
	}
	return out, nil
}

// scanInto reads the rows of a query into row.
func scanInto(ctx context.Context, tx interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, row store.Row, q string, args ...any) error {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, row.Dest, row.Add)
	return err
}

// compareLexemes compares a stored search vector with the words of text
// as the driver makes them (searchWords, searchVector).
func compareLexemes(stored pgtype.TSVector, text string) string {
	want := map[string]bool{}
	for _, l := range searchVector(searchWords(text)).Lexemes {
		want[l.Word] = true
	}
	got := map[string]bool{}
	for _, l := range stored.Lexemes {
		got[l.Word] = true
	}
	missing, extra := false, false
	for w := range want {
		missing = missing || !got[w]
	}
	for w := range got {
		extra = extra || !want[w]
	}
	switch {
	case missing && extra:
		return trail.SearchDifferent
	case missing:
		return trail.SearchMissing
	case extra:
		return trail.SearchExtra
	}
	return ""
}

// tileLeaf returns the leaf hash at index from the level-0 tile, or nil
// when the tree does not hold it.
func (s *LogStore) tileLeaf(ctx context.Context, orgID string, index int64) ([]byte, error) {
	tiles, err := s.Tiles(ctx, orgID, []trail.TileID{{Level: 0, Index: index / trail.TileWidth}})
	if err != nil {
		return nil, err
	}
	off := int(index%trail.TileWidth) * trail.HashSize
	if len(tiles) != 1 || len(tiles[0].Hashes) < off+trail.HashSize {
		return nil, nil
	}
	return tiles[0].Hashes[off : off+trail.HashSize], nil
}

// RetentionLogs returns the organizations whose tree has events.
func (s *LogStore) RetentionLogs(ctx context.Context) ([]trail.LogRetention, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT o.id, o.retention_days, t.tree_size FROM organizations o
		JOIN log_trees t ON t.organization_id = o.id WHERE t.tree_size > 0 ORDER BY o.id`)
	return collectRows(rows, err, func(r pgx.Row) (o trail.LogRetention, err error) {
		return o, r.Scan(&o.OrganizationID, &o.RetentionDays, &o.TreeSize)
	})
}

// CheckpointAtOrBefore returns the newest checkpoint created in t's second
// or before.
func (s *LogStore) CheckpointAtOrBefore(ctx context.Context, orgID string, t time.Time) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE organization_id = $1 AND created_at < $2 ORDER BY created_at DESC, tree_size DESC LIMIT 1`, orgID, t.Truncate(time.Second).Add(time.Second)))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpointBefore(orgID, t), "checkpoint before")
}

// Purgeable reports whether an event within the bound is still stored.
func (s *LogStore) Purgeable(ctx context.Context, b trail.PurgeBound) (bool, error) {
	cutoff := b.Cutoff.UnixNano()
	var ok bool
	if err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events
		WHERE organization_id = $1 AND occurred_day <= $2 AND occurred_at < $3 AND idx < $4 AND action <> ALL ($5::text[]))`,
		b.OrganizationID, int32(cutoff/dayNanos), cutoff, b.Below, keepList(b.Keep)).Scan(&ok); err != nil {
		return false, fmt.Errorf("purgeable: %w", err)
	}
	return ok, nil
}

// keepList is a list for a text[] parameter: never nil (NULL).
func keepList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// CountPurged counts the organization's purged events below an index.
func (s *LogStore) CountPurged(ctx context.Context, orgID string, below int64) (int64, error) {
	var n int64
	if err := s.db.pool.QueryRow(ctx, `SELECT count(*) FROM purged_events WHERE organization_id = $1 AND idx < $2`, orgID, below).Scan(&n); err != nil {
		return 0, fmt.Errorf("count purged: %w", err)
	}
	return n, nil
}

// PurgeExpired removes the contents of the events within the bounds:
// whole monthly partitions whose every event is within its
// organization's bound, then rows.
func (s *LogStore) PurgeExpired(ctx context.Context, bounds []trail.PurgeBound) (*trail.PurgeResult, error) {
	res := &trail.PurgeResult{}
	if len(bounds) == 0 {
		return res, nil
	}
	conn, err := s.db.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(7357, hashtext(current_schema() || '.purge'))`).Scan(&locked); err != nil {
		return nil, fmt.Errorf("purge lock: %w", err)
	}
	if !locked {
		return res, nil // another node is purging
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7357, hashtext(current_schema() || '.purge'))`)

	// Whole partitions first (their rows need no row purge); a failure
	// there does not stop the row purge, and is returned after it.
	partErr := s.dropExpiredPartitions(ctx, conn, bounds, res)
	const batch = 5000
	for _, b := range bounds {
		cutoff := b.Cutoff.UnixNano()
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			// One statement: the rows go, their targets go, their ids
			// are kept, the hourly counts lose them.
			var n int64
			err := conn.QueryRow(ctx, `WITH d AS (
					DELETE FROM events WHERE (organization_id, idx, received_at) IN (
						SELECT organization_id, idx, received_at FROM events
						WHERE organization_id = $1 AND occurred_day <= $2 AND occurred_at < $3 AND idx < $4 AND action <> ALL ($6::text[]) LIMIT $5)
					RETURNING organization_id, idx, id, action, occurred_at, received_at, target_ids),
				t AS (
					DELETE FROM event_targets et USING (SELECT organization_id, idx, received_at, unnest(target_ids) AS target_id FROM d) x
					WHERE et.organization_id = x.organization_id AND et.target_id = x.target_id AND et.idx = x.idx AND et.received_at = x.received_at),
				p AS (
					INSERT INTO purged_events (organization_id, idx, id, occurred_at) SELECT organization_id, idx, id, occurred_at FROM d ON CONFLICT DO NOTHING
					RETURNING organization_id, idx),
				c AS (
					-- Only the events whose ids are kept now: a partition
					-- whose ids were kept (and counts taken) by a drop that
					-- then failed is not counted twice.
					UPDATE event_counts ec SET n = ec.n - x.n
					FROM (SELECT d.organization_id, d.occurred_at / 3600000000000 AS hour, d.action, count(*) AS n
						FROM d JOIN p ON p.organization_id = d.organization_id AND p.idx = d.idx GROUP BY 1, 2, 3) x
					WHERE ec.organization_id = x.organization_id AND ec.hour = x.hour AND ec.action = x.action)
				SELECT count(*) FROM d`,
				b.OrganizationID, int32(cutoff/dayNanos), cutoff, b.Below, batch, keepList(b.Keep)).Scan(&n)
			if err != nil {
				return res, fmt.Errorf("purge %s: %w", b.OrganizationID, err)
			}
			res.Events += n
			if n < batch {
				break
			}
		}
		if _, err := conn.Exec(ctx, `DELETE FROM event_counts WHERE organization_id = $1 AND hour <= $2 AND n <= 0`, b.OrganizationID, cutoff/hourNanos); err != nil {
			return res, fmt.Errorf("purge %s: counts: %w", b.OrganizationID, err)
		}
	}
	if partErr != nil {
		return res, fmt.Errorf("drop expired partitions: %w", partErr)
	}
	return res, nil
}

// dropExpiredPartitions drops the monthly partitions whose every event is
// past the longest retention of any organization. An event's occurred_at
// is at most MaxFutureSkew after its received_at, so a partition whose
// month ended before now − longest retention − MaxFutureSkew holds only
// expired events. It also finishes what an interrupted run left: a
// partition whose detach did not complete, or a detached one not dropped.
func (s *LogStore) dropExpiredPartitions(ctx context.Context, conn *pgxpool.Conn, bounds []trail.PurgeBound, res *trail.PurgeResult) error {
	// A partition is a candidate when its month ended before the earliest
	// cutoff less the future skew (an event's occurred_at is at most
	// MaxFutureSkew after its received_at); it is dropped only when each
	// of its events is within its organization's bound.
	orgs, belows, cutoffs := make([]string, len(bounds)), make([]int64, len(bounds)), make([]int64, len(bounds))
	var keepOrgs, keepActions []string
	horizon := bounds[0].Cutoff
	for i, b := range bounds {
		orgs[i], belows[i], cutoffs[i] = b.OrganizationID, b.Below, b.Cutoff.UnixNano()
		for _, a := range b.Keep {
			keepOrgs, keepActions = append(keepOrgs, b.OrganizationID), append(keepActions, a)
		}
		if b.Cutoff.Before(horizon) {
			horizon = b.Cutoff
		}
	}
	horizon = horizon.Add(-trail.MaxFutureSkew)
	// Every monthly table of either partitioned table, attached or not.
	rows, err := conn.Query(ctx, `SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND (c.relname LIKE 'events\_p%' OR c.relname LIKE 'event\_targets\_p%')`)
	if err != nil {
		return fmt.Errorf("list partitions: %w", err)
	}
	attached := map[string]bool{}
	months := map[string]bool{}
	for rows.Next() {
		var name string
		var att bool
		if err := rows.Scan(&name, &att); err != nil {
			rows.Close()
			return err
		}
		month := name[strings.LastIndex(name, "_p")+2:]
		m, err := time.Parse("200601", month)
		if err != nil || m.AddDate(0, 1, 0).After(horizon) {
			continue // not one of Trail's monthly tables, or not expired
		}
		attached[name], months[month] = att, true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, month := range slices.Sorted(maps.Keys(months)) {
		evs := "events_p" + month
		if _, ok := attached[evs]; ok {
			// Only when every event is within its organization's bound:
			// below a timestamped checkpoint old enough, recorded in the
			// organization's log (SPEC §6). (One that is not, of an
			// organization with a longer retention or a stuck integrator,
			// keeps the partition; its rows are purged one by one.)
			var outside bool
			if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s e
				LEFT JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS b(org, below, cutoff) ON b.org = e.organization_id
				WHERE b.org IS NULL OR e.idx >= b.below OR e.occurred_at >= b.cutoff
				OR (e.organization_id, e.action) IN (SELECT * FROM unnest($4::text[], $5::text[])))`, pgx.Identifier{evs}.Sanitize()),
				orgs, belows, cutoffs, keepList(keepOrgs), keepList(keepActions)).Scan(&outside); err != nil {
				return err
			}
			if outside {
				continue
			}
			// The ids are kept and the hourly counts lose the events in
			// one statement; a run that stops before the drop does it
			// again for the ids not kept yet only.
			var n int64
			err := conn.QueryRow(ctx, fmt.Sprintf(`WITH ins AS (
					INSERT INTO purged_events (organization_id, idx, id, occurred_at) SELECT organization_id, idx, id, occurred_at FROM %[1]s
					ON CONFLICT DO NOTHING RETURNING organization_id, idx),
				c AS (
					UPDATE event_counts ec SET n = ec.n - x.n
					FROM (SELECT e.organization_id, e.occurred_at / 3600000000000 AS hour, e.action, count(*) AS n
						FROM %[1]s e JOIN ins ON ins.organization_id = e.organization_id AND ins.idx = e.idx GROUP BY 1, 2, 3) x
					WHERE ec.organization_id = x.organization_id AND ec.hour = x.hour AND ec.action = x.action)
				SELECT count(*) FROM ins`, pgx.Identifier{evs}.Sanitize())).Scan(&n)
			if err != nil {
				return fmt.Errorf("keep ids of %s: %w", evs, err)
			}
			res.Events += n
		}
		for _, table := range partitioned {
			p := table + "_p" + month
			att, ok := attached[p]
			if !ok {
				continue
			}
			if att {
				if err := detachPartition(ctx, conn, s.db.citus, table, p); err != nil {
					return err
				}
			}
			if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s`, pgx.Identifier{p}.Sanitize())); err != nil {
				return fmt.Errorf("drop %s: %w", p, err)
			}
		}
		res.Partitions++
	}
	return nil
}

// detachPartition detaches a partition with DETACH … CONCURRENTLY, which
// lets reads and writes of the other partitions go on (and cannot run in a
// transaction block). A detach that an earlier run began and did not
// finish is finished with FINALIZE.
//
// Citus has no DETACH … CONCURRENTLY: there the partition (and its shards)
// is detached in one statement, which waits for the statements on the
// partitioned table to end.
func detachPartition(ctx context.Context, conn *pgxpool.Conn, citus bool, table, p string) error {
	if citus {
		if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s`, table, pgx.Identifier{p}.Sanitize())); err != nil {
			return fmt.Errorf("detach %s: %w", p, err)
		}
		return nil
	}
	_, err := conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s CONCURRENTLY`, table, pgx.Identifier{p}.Sanitize()))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55000" { // object_not_in_prerequisite_state: a pending detach
		_, err = conn.Exec(ctx, fmt.Sprintf(`ALTER TABLE %s DETACH PARTITION %s FINALIZE`, table, pgx.Identifier{p}.Sanitize()))
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", p, err)
	}
	return nil
}

// rowMismatch compares the columns of an event row with what they were
// derived from: its document.
func rowMismatch(org string, row *trail.LogRow, received time.Time, action, actorID, actorType, actorName string,
	occurred int64, day int32, targetIDs, targetTypes []string, data string, leaf []byte) string {
	var problems []string
	if len(leaf) != trail.HashSize {
		problems = append(problems, "leaf_hash is not a SHA-256 hash")
	}
	ev, err := store.DecodeEvent(data)
	if err != nil {
		return strings.Join(append(problems, "data is not a stored event"), "; ")
	}
	ids, types := make([]string, len(ev.Targets)), make([]string, len(ev.Targets))
	for i, t := range ev.Targets {
		ids[i], types[i] = t.ID, t.Type
	}
	ns := ev.OccurredAt.UnixNano()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"id", row.ID, ev.ID}, {"organization_id", org, ev.OrganizationID}, {"idx", row.Index, ev.Index},
		{"received_at", received.UTC(), ev.ReceivedAt.Truncate(time.Microsecond)},
		{"action", action, ev.Action}, {"actor_id", actorID, ev.Actor.ID}, {"actor_type", actorType, ev.Actor.Type},
		{"actor_name", actorName, ev.Actor.Name}, {"occurred_at", occurred, ns}, {"occurred_day", day, int32(ns / dayNanos)},
		{"target_ids", strings.Join(targetIDs, "\x00"), strings.Join(ids, "\x00")},
		{"target_types", strings.Join(targetTypes, "\x00"), strings.Join(types, "\x00")},
	} {
		if c.got != c.want {
			problems = append(problems, fmt.Sprintf("column %s (%v) differs from the document's (%v)", c.name, c.got, c.want))
		}
	}
	return strings.Join(problems, "; ")
}

// FindPurgedEvents returns purged events of an index range, and of a
// period by when they occurred (those purged before that was kept count
// as in every period).
func (s *LogStore) FindPurgedEvents(ctx context.Context, f trail.PurgedEventFilter) ([]*trail.Event, error) {
	var start, end *int64
	if f.RangeStart != nil {
		n := f.RangeStart.UnixNano()
		start = &n
	}
	if f.RangeEnd != nil {
		n := f.RangeEnd.UnixNano()
		end = &n
	}
	rows, err := s.db.pool.Query(ctx, `SELECT idx, id FROM purged_events
		WHERE organization_id = $1 AND idx > $2 AND idx < $3
		AND ($4::bigint IS NULL OR occurred_at IS NULL OR occurred_at >= $4)
		AND ($5::bigint IS NULL OR occurred_at IS NULL OR occurred_at < $5)
		ORDER BY idx LIMIT $6`, f.OrganizationID, f.After, f.Below, start, end, max(f.Limit, 1))
	return collectRows(rows, err, func(r pgx.Row) (*trail.Event, error) {
		ev := &trail.Event{OrganizationID: f.OrganizationID, Purged: true}
		return ev, r.Scan(&ev.Index, &ev.ID)
	})
}

// Setting returns an instance setting, "" when unset.
func (s *LogStore) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read setting: %w", err)
	}
	return v, nil
}

// SetSetting stores a setting unless it is set, and returns what is
// stored.
func (s *LogStore) SetSetting(ctx context.Context, name, value string) (string, error) {
	if _, err := s.db.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("store setting: %w", err)
	}
	return s.Setting(ctx, name)
}
