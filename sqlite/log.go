package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// PendingLogs returns organizations whose tree is behind their log.
func (s *LogStore) PendingLogs(ctx context.Context, after string, limit int) ([]trail.LogHead, error) {
	rows, err := s.db.reader.QueryContext(ctx, `SELECT id, next_index, tree_size FROM organizations
		WHERE (tree_size IS NULL OR next_index > tree_size) AND id > ? ORDER BY id LIMIT ?`, after, limit)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (h trail.LogHead, err error) {
		var tree sql.NullInt64
		err = r.Scan(&h.OrganizationID, &h.LogSize, &tree)
		h.TreeSize, h.HasCheckpoint = tree.Int64, tree.Valid
		return h, err
	})
}

// LogHead returns how far an organization's log and tree are.
func (s *LogStore) LogHead(ctx context.Context, orgID string) (*trail.LogHead, error) {
	h := &trail.LogHead{OrganizationID: orgID}
	var tree sql.NullInt64
	err := s.db.reader.QueryRowContext(ctx, `SELECT next_index, tree_size FROM organizations WHERE id = ?`, orgID).Scan(&h.LogSize, &tree)
	if err == sql.ErrNoRows {
		return nil, trail.ErrOrganizationNotFound(orgID)
	} else if err != nil {
		return nil, fmt.Errorf("log head: %w", err)
	}
	h.TreeSize, h.HasCheckpoint = tree.Int64, tree.Valid
	return h, nil
}

// LeafHashes returns the leaf hashes of events [from, to), from the event
// rows or, for events whose rows retention removed, from the level-0
// tiles.
func (s *LogStore) LeafHashes(ctx context.Context, orgID string, from, to int64) ([][trail.HashSize]byte, error) {
	out := make([][trail.HashSize]byte, 0, to-from)
	rows, err := s.db.reader.QueryContext(ctx, `SELECT idx, leaf_hash FROM events WHERE organization_id = ? AND idx >= ? AND idx < ? ORDER BY idx`, orgID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read leaf hashes: %w", err)
	}
	defer rows.Close()
	next := from
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if idx > next {
			if out, err = s.tileLeaves(ctx, orgID, out, next, idx); err != nil {
				return nil, err
			}
		}
		if len(h) != trail.HashSize {
			return nil, fmt.Errorf("event %d of %s has no leaf hash", idx, orgID)
		}
		out = append(out, [trail.HashSize]byte(h))
		next = idx + 1
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if next < to {
		return s.tileLeaves(ctx, orgID, out, next, to)
	}
	return out, nil
}

// tileLeaves appends the leaf hashes [from, to) kept in level-0 tiles, as
// far as the tiles hold them.
func (s *LogStore) tileLeaves(ctx context.Context, orgID string, out [][trail.HashSize]byte, from, to int64) ([][trail.HashSize]byte, error) {
	for i := from; i < to; {
		n := i / trail.TileWidth
		var hashes []byte
		err := s.db.reader.QueryRowContext(ctx, `SELECT hashes FROM merkle_tiles WHERE organization_id = ? AND level = 0 AND idx = ?`, orgID, n).Scan(&hashes)
		if err == sql.ErrNoRows {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("read tile: %w", err)
		}
		for ; i < to && i/trail.TileWidth == n; i++ {
			off := int(i%trail.TileWidth) * trail.HashSize
			if off+trail.HashSize > len(hashes) {
				return out, nil
			}
			out = append(out, [trail.HashSize]byte(hashes[off:off+trail.HashSize]))
		}
	}
	return out, nil
}

// Tiles returns the stored tiles among ids, each read through the
// primary key in one read transaction (a single statement with an OR of
// the tiles makes SQLite scan the table).
func (s *LogStore) Tiles(ctx context.Context, orgID string, ids []trail.TileID) ([]*trail.Tile, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	tx, err := s.db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `SELECT hashes FROM merkle_tiles WHERE organization_id = ? AND level = ? AND idx = ?`)
	if err != nil {
		return nil, fmt.Errorf("read tiles: %w", err)
	}
	defer stmt.Close()
	var tiles []*trail.Tile
	for _, id := range ids {
		t := &trail.Tile{Level: id.Level, Index: id.Index}
		err := stmt.QueryRowContext(ctx, orgID, id.Level, id.Index).Scan(&t.Hashes)
		if err == sql.ErrNoRows {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read tile: %w", err)
		}
		tiles = append(tiles, t)
	}
	return tiles, nil
}

// AddCheckpoints stores the steps whose trees did not move, in one
// transaction.
func (s *LogStore) AddCheckpoints(ctx context.Context, steps []*trail.CheckpointStep) error {
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, st := range steps {
		st.Stored, st.Err = false, nil
		if _, err := tx.ExecContext(ctx, `SAVEPOINT step`); err != nil {
			return err
		}
		stored, err := s.addStep(ctx, tx, st)
		if err != nil {
			// This step alone fails; the others go on.
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO step`); rerr != nil {
				return rerr
			}
			st.Err = err
		}
		if _, err := tx.ExecContext(ctx, `RELEASE step`); err != nil {
			return err
		}
		st.Stored = stored && err == nil
	}
	if err := tx.Commit(); err != nil {
		for _, st := range steps {
			st.Stored = false
		}
		return err
	}
	return nil
}

// addStep stores one step unless its tree moved.
func (s *LogStore) addStep(ctx context.Context, tx *sql.Tx, st *trail.CheckpointStep) (bool, error) {
	cp := st.Checkpoint
	var res sql.Result
	var err error
	if st.PrevSize < 0 {
		res, err = tx.ExecContext(ctx, `UPDATE organizations SET tree_size = ? WHERE id = ? AND tree_size IS NULL AND next_index >= ?`, cp.Size, cp.OrganizationID, cp.Size)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE organizations SET tree_size = ? WHERE id = ? AND tree_size = ? AND next_index >= ?`, cp.Size, cp.OrganizationID, st.PrevSize, cp.Size)
	}
	if err != nil {
		return false, fmt.Errorf("move tree: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil // another integrator was first
	}
	for _, t := range st.Tiles {
		if _, err := tx.ExecContext(ctx, `INSERT INTO merkle_tiles (organization_id, level, idx, hashes) VALUES (?, ?, ?, ?)
			ON CONFLICT (organization_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, cp.OrganizationID, t.Level, t.Index, t.Hashes); err != nil {
			return false, fmt.Errorf("store tile: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (organization_id, tree_size, root, note, created_at) VALUES (?, ?, ?, ?, ?)`,
		cp.OrganizationID, cp.Size, cp.Root[:], cp.Note, formatTime(cp.CreatedAt)); err != nil {
		return false, fmt.Errorf("store checkpoint: %w", interpretError(err))
	}
	return true, nil
}

const checkpointColumns = `organization_id, tree_size, root, note, created_at`

func scanCheckpoint(row interface{ Scan(...any) error }) (*trail.Checkpoint, error) {
	cp := &trail.Checkpoint{}
	var root []byte
	var created string
	if err := row.Scan(&cp.OrganizationID, &cp.Size, &root, &cp.Note, &created); err != nil {
		return nil, err
	}
	copy(cp.Root[:], root)
	cp.CreatedAt = parseTime(created)
	return cp, nil
}

// LatestCheckpoint returns the organization's newest checkpoint.
func (s *LogStore) LatestCheckpoint(ctx context.Context, orgID string) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.reader.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = ? ORDER BY tree_size DESC LIMIT 1`, orgID))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpoint(orgID), "latest checkpoint")
}

// FindCheckpoint returns the checkpoint of one tree size.
func (s *LogStore) FindCheckpoint(ctx context.Context, orgID string, size int64) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.reader.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = ? AND tree_size = ?`, orgID, size))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpointOfSize(orgID, size), "find checkpoint")
}

// FindCheckpoints returns checkpoints of sizes above after, in size order.
func (s *LogStore) FindCheckpoints(ctx context.Context, orgID string, after int64, limit int) ([]*trail.Checkpoint, error) {
	rows, err := s.db.reader.QueryContext(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = ? AND tree_size > ? ORDER BY tree_size LIMIT ?`, orgID, after, limit)
	return collect(rows, err, scanCheckpoint)
}

// ScanLog calls scan.Row for each event row of the organization from
// scan.From on, in index order, checking each row's columns against its
// document. Purged events come in their place, with the leaf hash kept in
// the tree. With scan.Indexes, each row comes with its target rows and a
// check of its full-text entry, and the organization's counts, days and
// actions follow.
func (s *LogStore) ScanLog(ctx context.Context, orgID string, scan trail.LogScan) error {
	// One read transaction: a purge that moves rows to purged_events
	// meanwhile is seen before or after, never half; so are the indexes.
	tx, err := s.db.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	from, fn := scan.From, scan.Row
	purged, err := s.purgedFrom(ctx, tx, orgID, from)
	if err != nil {
		return err
	}
	emitPurged := func(before int64) error {
		for len(purged) > 0 && purged[0].Index < before {
			if err := fn(purged[0]); err != nil {
				return err
			}
			purged = purged[1:]
		}
		return nil
	}
	var targets *targetRows
	var search *searchCheck
	if scan.Indexes != nil {
		if targets, err = newTargetRows(ctx, tx, orgID); err != nil {
			return err
		}
		defer targets.close()
		if search, err = newSearchCheck(ctx, tx); err != nil {
			return err
		}
		search.thorough = scan.Thorough
		defer search.close()
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, organization_id, idx, id, action, actor_id, actor_type, actor_name, occurred_at, data, leaf_hash
		FROM events WHERE organization_id = ? AND idx >= ? ORDER BY idx`, orgID, from)
	if err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	defer rows.Close()
	prevSeq := int64(-1)
	for rows.Next() {
		var seq, occurred int64
		var org, action, actorID, actorType, actorName, data string
		var leaf []byte
		row := &trail.LogRow{}
		if err := rows.Scan(&seq, &org, &row.Index, &row.ID, &action, &actorID, &actorType, &actorName, &occurred, &data, &leaf); err != nil {
			return err
		}
		if err := emitPurged(row.Index); err != nil {
			return err
		}
		row.Data = []byte(data)
		copy(row.LeafHash[:], leaf)
		var problems []string
		if len(leaf) != trail.HashSize {
			problems = append(problems, "leaf_hash is not a SHA-256 hash")
		}
		if seq <= prevSeq {
			problems = append(problems, "seq is not after the previous row's: the commit order was changed")
		}
		prevSeq = seq
		if ev, err := store.DecodeEvent(data); err != nil {
			problems = append(problems, "data is not a stored event")
		} else {
			for _, c := range []struct {
				name      string
				got, want any
			}{
				{"id", row.ID, ev.ID}, {"organization_id", org, ev.OrganizationID}, {"idx", row.Index, ev.Index},
				{"action", action, ev.Action}, {"actor_id", actorID, ev.Actor.ID}, {"actor_type", actorType, ev.Actor.Type},
				{"actor_name", actorName, ev.Actor.Name}, {"occurred_at", occurred, ev.OccurredAt.UnixNano()},
			} {
				if c.got != c.want {
					problems = append(problems, fmt.Sprintf("column %s (%v) differs from the document's (%v)", c.name, c.got, c.want))
				}
			}
		}
		row.Mismatch = strings.Join(problems, "; ")
		if targets != nil {
			if row.Targets, err = targets.of(seq); err != nil {
				return err
			}
			row.Search = func(text string) (string, error) { return search.check(ctx, seq, text) }
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := emitPurged(math.MaxInt64); err != nil {
		return err
	}
	if scan.Indexes == nil {
		return nil
	}
	ix := &trail.LogIndexes{Counts: map[trail.HourAction]int64{}, Days: map[int64]int64{}}
	if ix.OrphanTargets, err = targets.rest(); err != nil {
		return err
	}
	// The hourly counts, the by-day index itself (which periods are read
	// by) and the actions catalogue.
	queries := map[string]string{
		store.ReadHourlyCounts: `SELECT hour, action, n FROM event_counts WHERE organization_id = ? AND n <> 0`,
		store.ReadByDay: `SELECT occurred_at / 86400000000000, count(*) FROM events INDEXED BY events_org_day
			WHERE organization_id = ? GROUP BY occurred_at / 86400000000000`,
		store.ReadActions: `SELECT action FROM org_actions WHERE organization_id = ?`,
	}
	for _, r := range store.IndexReads(ix) {
		if err := scanInto(ctx, tx, r.Row, queries[r.What], orgID); err != nil {
			return fmt.Errorf("read %s: %w", r.What, err)
		}
	}
	return scan.Indexes(ix)
}

// scanInto reads the rows of a query into row.
func scanInto(ctx context.Context, tx interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, row store.Row, q string, args ...any) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(row.Dest...); err != nil {
			return err
		}
		if err := row.Add(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// targetRows reads an organization's rows of event_targets in seq order,
// beside its events (whose seqs grow with their indexes).
type targetRows struct {
	rows    *sql.Rows
	next    *targetRow // read, not yet taken
	orphans int64
}

type targetRow struct {
	seq      int64
	id, kind string
}

func newTargetRows(ctx context.Context, tx *sql.Tx, orgID string) (*targetRows, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, target_id, target_type FROM event_targets WHERE organization_id = ? ORDER BY seq`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read target rows: %w", err)
	}
	return &targetRows{rows: rows}, nil
}

func (t *targetRows) peek() (*targetRow, error) {
	if t.next == nil && t.rows.Next() {
		r := &targetRow{}
		if err := t.rows.Scan(&r.seq, &r.id, &r.kind); err != nil {
			return nil, err
		}
		t.next = r
	}
	if t.next == nil {
		return nil, t.rows.Err()
	}
	return t.next, nil
}

// of returns the rows of the event seq; rows of smaller seqs passed by
// belong to no event read.
func (t *targetRows) of(seq int64) ([]trail.Target, error) {
	var out []trail.Target
	for {
		r, err := t.peek()
		if err != nil || r == nil || r.seq > seq {
			return out, err
		}
		if r.seq < seq {
			t.orphans++
		} else {
			out = append(out, trail.Target{ID: r.id, Type: r.kind})
		}
		t.next = nil
	}
}

// rest counts the rows left: they belong to no event read.
func (t *targetRows) rest() (int64, error) {
	for {
		r, err := t.peek()
		if err != nil || r == nil {
			return t.orphans, err
		}
		t.orphans++
		t.next = nil
	}
}

func (t *targetRows) close() { t.rows.Close() }

// purgedFrom returns the organization's purged events from index from
// on, with their leaf hashes from the tiles.
func (s *LogStore) purgedFrom(ctx context.Context, tx *sql.Tx, orgID string, from int64) ([]*trail.LogRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT idx, id FROM purged_events WHERE organization_id = ? AND idx >= ? ORDER BY idx`, orgID, from)
	if err != nil {
		return nil, fmt.Errorf("read purged events: %w", err)
	}
	defer rows.Close()
	var out []*trail.LogRow
	for rows.Next() {
		r := &trail.LogRow{Purged: true}
		if err := rows.Scan(&r.Index, &r.ID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, r := range out {
		leaves, err := s.tileLeaves(ctx, orgID, nil, r.Index, r.Index+1)
		if err != nil {
			return nil, err
		}
		if len(leaves) == 1 {
			r.LeafHash = leaves[0]
		} else {
			r.Mismatch = "purged, and its leaf hash is not in the tree"
		}
	}
	return out, nil
}

// RetentionLogs returns the organizations whose tree has events.
func (s *LogStore) RetentionLogs(ctx context.Context) ([]trail.LogRetention, error) {
	rows, err := s.db.reader.QueryContext(ctx, `SELECT id, retention_days, tree_size FROM organizations WHERE tree_size > 0 ORDER BY id`)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (o trail.LogRetention, err error) {
		return o, r.Scan(&o.OrganizationID, &o.RetentionDays, &o.TreeSize)
	})
}

// CheckpointAtOrBefore returns the newest checkpoint created in t's second
// or before.
func (s *LogStore) CheckpointAtOrBefore(ctx context.Context, orgID string, t time.Time) (*trail.Checkpoint, error) {
	// created_at is RFC 3339 text without trailing zeros: within one
	// second ".5Z" sorts before "Z", so "<= second" takes that second whole.
	cp, err := scanCheckpoint(s.db.reader.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE organization_id = ? AND created_at <= ? ORDER BY created_at DESC, tree_size DESC LIMIT 1`, orgID, formatTime(t.Truncate(time.Second))))
	return store.Found(cp, noRows(err), trail.ErrNoCheckpointBefore(orgID, t), "checkpoint before")
}

// Purgeable reports whether an event within the bound is still stored.
func (s *LogStore) Purgeable(ctx context.Context, b trail.PurgeBound) (bool, error) {
	cutoff := b.Cutoff.UnixNano()
	var one int
	err := s.db.reader.QueryRowContext(ctx, `SELECT 1 FROM events
		WHERE organization_id = ? AND occurred_at / 86400000000000 <= ? AND occurred_at < ? AND idx < ?
		AND action NOT IN (SELECT value FROM json_each(?)) LIMIT 1`,
		b.OrganizationID, cutoff/dayNanos, cutoff, b.Below, keepJSON(b.Keep)).Scan(&one)
	if err == sql.ErrNoRows {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("purgeable: %w", err)
	}
	return true, nil
}

// keepJSON is a bound's Keep as a JSON array, for json_each.
func keepJSON(keep []string) string {
	b, _ := json.Marshal(append([]string{}, keep...))
	return string(b)
}

// CountPurged counts the organization's purged events below an index.
func (s *LogStore) CountPurged(ctx context.Context, orgID string, below int64) (int64, error) {
	var n int64
	if err := s.db.reader.QueryRowContext(ctx, `SELECT count(*) FROM purged_events WHERE organization_id = ? AND idx < ?`, orgID, below).Scan(&n); err != nil {
		return 0, fmt.Errorf("count purged: %w", err)
	}
	return n, nil
}

// PurgeExpired removes the contents of the events within the bounds: rows
// of events, targets and search text go, the id and index go to
// purged_events, the leaf hash stays in the tree's tiles.
func (s *LogStore) PurgeExpired(ctx context.Context, bounds []trail.PurgeBound) (*trail.PurgeResult, error) {
	res := &trail.PurgeResult{}
	const batch = 1000
	for _, b := range bounds {
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			n, err := s.purgeBatch(ctx, b.OrganizationID, b.Cutoff.UnixNano(), b.Below, keepJSON(b.Keep), batch)
			res.Events += int64(n)
			if err != nil {
				return res, fmt.Errorf("purge %s: %w", b.OrganizationID, err)
			}
			if n < batch {
				break
			}
		}
	}
	return res, nil
}

// purgeBatch purges up to limit expired events of one organization in one
// transaction.
func (s *LogStore) purgeBatch(ctx context.Context, orgID string, cutoff, below int64, keep string, limit int) (int, error) {
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT seq, idx, id, occurred_at, data FROM events
		WHERE organization_id = ? AND occurred_at / 86400000000000 <= ? AND occurred_at < ? AND idx < ?
		AND action NOT IN (SELECT value FROM json_each(?)) LIMIT ?`,
		orgID, cutoff/dayNanos, cutoff, below, keep, limit)
	if err != nil {
		return 0, err
	}
	type victim struct {
		seq, idx, occurred int64
		id, action         string
		targets            []string
	}
	var victims []victim
	for rows.Next() {
		var v victim
		var data string
		if err := rows.Scan(&v.seq, &v.idx, &v.id, &v.occurred, &data); err != nil {
			rows.Close()
			return 0, err
		}
		ev, err := store.DecodeEvent(data)
		if err != nil {
			rows.Close()
			return 0, err
		}
		for _, t := range ev.Targets {
			v.targets = append(v.targets, t.ID)
		}
		v.action = ev.Action
		victims = append(victims, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, v := range victims {
		if _, err := tx.ExecContext(ctx, `INSERT INTO purged_events (organization_id, idx, id, occurred_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, orgID, v.idx, v.id, v.occurred); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq = ?`, v.seq); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events_fts WHERE rowid = ?`, v.seq); err != nil {
			return 0, err
		}
		for _, target := range v.targets {
			if _, err := tx.ExecContext(ctx, `DELETE FROM event_targets WHERE organization_id = ? AND target_id = ? AND seq = ?`, orgID, target, v.seq); err != nil {
				return 0, err
			}
		}
	}
	counts := map[countKey]int64{}
	for _, v := range victims {
		counts[countKey{orgID, v.action, v.occurred / hourNanos}]++
	}
	for k, n := range counts {
		if _, err := tx.ExecContext(ctx, `UPDATE event_counts SET n = n - ? WHERE organization_id = ? AND hour = ? AND action = ?`, n, k.org, k.hour, k.action); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_counts WHERE organization_id = ? AND hour = ? AND action = ? AND n <= 0`, k.org, k.hour, k.action); err != nil {
			return 0, err
		}
	}
	return len(victims), tx.Commit()
}

// Setting returns an instance setting, "" when unset.
func (s *LogStore) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if err == sql.ErrNoRows {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read setting: %w", err)
	}
	return v, nil
}

// SetSetting stores a setting unless it is set, and returns what is
// stored.
func (s *LogStore) SetSetting(ctx context.Context, name, value string) (string, error) {
	if _, err := s.db.writer.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("store setting: %w", err)
	}
	var v string
	if err := s.db.writer.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("read setting: %w", err)
	}
	return v, nil
}
