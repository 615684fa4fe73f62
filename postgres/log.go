package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/trail-audit/trail"
)

// LogStore implements trail.LogStore on PostgreSQL.
type LogStore struct{ db *DB }

var _ trail.LogStore = (*LogStore)(nil)

// NewLogStore returns a LogStore on db.
func NewLogStore(db *DB) *LogStore { return &LogStore{db: db} }

// PendingLogs returns organizations whose tree is behind their log.
func (s *LogStore) PendingLogs(ctx context.Context, after string, limit int) ([]trail.LogHead, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT id, next_index, tree_size FROM organizations
		WHERE (tree_size IS NULL OR next_index > tree_size) AND id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pending logs: %w", err)
	}
	defer rows.Close()
	var heads []trail.LogHead
	for rows.Next() {
		var h trail.LogHead
		var tree *int64
		if err := rows.Scan(&h.OrganizationID, &h.LogSize, &tree); err != nil {
			return nil, err
		}
		if tree != nil {
			h.TreeSize, h.HasCheckpoint = *tree, true
		}
		heads = append(heads, h)
	}
	return heads, rows.Err()
}

// LogHead returns how far an organization's log and tree are.
func (s *LogStore) LogHead(ctx context.Context, orgID string) (*trail.LogHead, error) {
	h := &trail.LogHead{OrganizationID: orgID}
	var tree *int64
	err := s.db.pool.QueryRow(ctx, `SELECT next_index, tree_size FROM organizations WHERE id = $1`, orgID).Scan(&h.LogSize, &tree)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", orgID)
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

// Tiles returns the stored tiles among ids.
func (s *LogStore) Tiles(ctx context.Context, orgID string, ids []trail.TileID) ([]*trail.Tile, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	levels, idxs := make([]int32, len(ids)), make([]int64, len(ids))
	for i, id := range ids {
		levels[i], idxs[i] = int32(id.Level), id.Index
	}
	rows, err := s.db.pool.Query(ctx, `SELECT t.level, t.idx, t.hashes FROM merkle_tiles t
		JOIN unnest($2::integer[], $3::bigint[]) AS w(level, idx) ON t.level = w.level AND t.idx = w.idx
		WHERE t.organization_id = $1`, orgID, levels, idxs)
	if err != nil {
		return nil, fmt.Errorf("read tiles: %w", err)
	}
	defer rows.Close()
	var tiles []*trail.Tile
	for rows.Next() {
		t := &trail.Tile{}
		var level int32
		if err := rows.Scan(&level, &t.Index, &t.Hashes); err != nil {
			return nil, err
		}
		t.Level = int(level)
		tiles = append(tiles, t)
	}
	return tiles, rows.Err()
}

// AddCheckpoint stores grown tiles and a checkpoint if the tree is still
// at prevSize. Integrators on several nodes race for a step; the row lock
// on the organization decides, and the loser stores nothing.
func (s *LogStore) AddCheckpoint(ctx context.Context, prevSize int64, tiles []*trail.Tile, cp *trail.Checkpoint) error {
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var tag interface{ RowsAffected() int64 }
		var err error
		if prevSize < 0 {
			tag, err = tx.Exec(ctx, `UPDATE organizations SET tree_size = $1 WHERE id = $2 AND tree_size IS NULL AND next_index >= $1`, cp.Size, cp.OrganizationID)
		} else {
			tag, err = tx.Exec(ctx, `UPDATE organizations SET tree_size = $1 WHERE id = $2 AND tree_size = $3 AND next_index >= $1`, cp.Size, cp.OrganizationID, prevSize)
		}
		if err != nil {
			return fmt.Errorf("move tree: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return trail.Errorf(trail.ECONFLICT, "The tree of %s is no longer at size %d.", cp.OrganizationID, prevSize)
		}
		b := &pgx.Batch{}
		for _, t := range tiles {
			b.Queue(`INSERT INTO merkle_tiles (organization_id, level, idx, hashes) VALUES ($1, $2, $3, $4)
				ON CONFLICT (organization_id, level, idx) DO UPDATE SET hashes = excluded.hashes`, cp.OrganizationID, t.Level, t.Index, t.Hashes)
		}
		b.Queue(`INSERT INTO checkpoints (organization_id, tree_size, root, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
			cp.OrganizationID, cp.Size, cp.Root[:], cp.Note, cp.CreatedAt)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store tiles and checkpoint: %w", interpretError(err))
		}
		return nil
	})
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
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "No checkpoint of '%s' yet.", orgID)
	} else if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	return cp, nil
}

// FindCheckpoint returns the checkpoint of one tree size.
func (s *LogStore) FindCheckpoint(ctx context.Context, orgID string, size int64) (*trail.Checkpoint, error) {
	cp, err := scanCheckpoint(s.db.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = $1 AND tree_size = $2`, orgID, size))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "No checkpoint of '%s' has tree size %d.", orgID, size)
	} else if err != nil {
		return nil, fmt.Errorf("find checkpoint: %w", err)
	}
	return cp, nil
}

// FindCheckpoints returns checkpoints of sizes above after, in size order.
func (s *LogStore) FindCheckpoints(ctx context.Context, orgID string, after int64, limit int) ([]*trail.Checkpoint, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE organization_id = $1 AND tree_size > $2 ORDER BY tree_size LIMIT $3`, orgID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("find checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*trail.Checkpoint
	for rows.Next() {
		cp, err := scanCheckpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, rows.Err()
}

// ScanLog calls fn for each event row of the organization from index from
// on, in index order, checking each row's columns against its document.
func (s *LogStore) ScanLog(ctx context.Context, orgID string, from int64, fn func(*trail.LogRow) error) error {
	tx, err := s.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT organization_id, idx, received_at, id, action, actor_id, actor_type, actor_name,
			occurred_at, occurred_day, target_ids, target_types, search, data, leaf_hash
		FROM events WHERE organization_id = $1 AND idx >= $2 ORDER BY idx`, orgID, from)
	if err != nil {
		return fmt.Errorf("scan log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var org, action, actorID, actorType, actorName, data string
		var received time.Time
		var occurred int64
		var day int32
		var targetIDs, targetTypes []string
		var search pgtype.TSVector
		var leaf []byte
		row := &trail.LogRow{}
		if err := rows.Scan(&org, &row.Index, &received, &row.ID, &action, &actorID, &actorType, &actorName,
			&occurred, &day, &targetIDs, &targetTypes, &search, &data, &leaf); err != nil {
			return err
		}
		row.Data = []byte(data)
		copy(row.LeafHash[:], leaf)
		row.Mismatch = rowMismatch(org, row, received, action, actorID, actorType, actorName, occurred, day, targetIDs, targetTypes, search, data, leaf)
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rowMismatch compares the columns of an event row with what they were
// derived from: its document.
func rowMismatch(org string, row *trail.LogRow, received time.Time, action, actorID, actorType, actorName string,
	occurred int64, day int32, targetIDs, targetTypes []string, search pgtype.TSVector, data string, leaf []byte) string {
	var problems []string
	if len(leaf) != trail.HashSize {
		problems = append(problems, "leaf_hash is not a SHA-256 hash")
	}
	ev, err := decodeEvent(data)
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
		{"search", lexemes(search), lexemes(searchVector(searchWords(trail.SearchText(ev))))},
	} {
		if c.got != c.want {
			problems = append(problems, fmt.Sprintf("column %s (%v) differs from the document's (%v)", c.name, c.got, c.want))
		}
	}
	return strings.Join(problems, "; ")
}

// lexemes lists a search vector's words (not their positions, which follow
// the order of metadata keys, which is not kept).
func lexemes(v pgtype.TSVector) string {
	words := make([]string, len(v.Lexemes))
	for i, l := range v.Lexemes {
		words[i] = l.Word
	}
	slices.Sort(words)
	return strings.Join(words, " ")
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
