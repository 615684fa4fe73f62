package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"github.com/trail-audit/trail"
)

// FsckProblem is the first thing Fsck found wrong in an organization's log.
type FsckProblem struct {
	OrganizationID string
	Index          int64 // -1 when no single event is to blame
	ID             string
	Reason         string

	indexes bool // found in the secondary indexes: checked again before it is reported
}

func (p *FsckProblem) Error() string {
	switch {
	case p.Index < 0:
		return fmt.Sprintf("%s: %s", p.OrganizationID, p.Reason)
	case p.ID != "":
		return fmt.Sprintf("%s: event index %d (id %s): %s", p.OrganizationID, p.Index, p.ID, p.Reason)
	}
	return fmt.Sprintf("%s: event index %d: %s", p.OrganizationID, p.Index, p.Reason)
}

// FsckResult sums up a checked log.
type FsckResult struct {
	Events      int64
	TreeSize    int64
	Checkpoints int
	// Warnings name what is not wrong but is weaker than it should be, at
	// most MaxFsckWarnings of them: stored numbers that are not in the
	// RFC 8785 form the leaf hash covers (events stored before Trail
	// refused and canonicalized them), whose digits beyond it could be
	// changed undetected. NonCanonical counts those events.
	Warnings     []string
	NonCanonical int64
	// Indexes is what the check of the secondary indexes found.
	Indexes IndexReport
}

// MaxFsckWarnings bounds the warnings Fsck lists for one organization.
const MaxFsckWarnings = 10

// Fsck recomputes an organization's tree from its stored events and
// compares it with what is stored and signed (SPEC §6): each row's
// columns with its document, each document with the leaf hash stored
// beside it and in the tree's tiles, every tile, every checkpoint's
// signature, origin and root. It returns the first problem as a
// *FsckProblem.
func Fsck(ctx context.Context, store trail.LogStore, vkey, originPrefix, orgID string) (*FsckResult, error) {
	return FsckOptions{Key: vkey, Origin: originPrefix}.Fsck(ctx, store, orgID)
}

// FsckOptions say what Fsck checks a log against.
type FsckOptions struct {
	Key    string // the verifier key
	Origin string // the origin prefix
	// Legacy holds, by organization, the first record of the events
	// purged before purges kept evidence (LoadLegacyPurges): purged
	// events that no purge record covers are accepted up to its count.
	Legacy map[string]trail.LegacyPurges
	// Thorough compares every word of each event's full-text entry, where
	// the quick check compares how many there are (SQLite; PostgreSQL
	// always compares the words).
	Thorough bool
}

// Fsck checks one organization's log (see the package's Fsck), that each
// purged event is covered by the evidence SPEC §6 asks for, and that every
// secondary index a read path relies on agrees with the documents. It
// reads each log in one snapshot and takes no write lock, so it may run
// while Trail serves; what it finds in the indexes is checked again, in a
// new snapshot, before it is reported.
func (o FsckOptions) Fsck(ctx context.Context, store trail.LogStore, orgID string) (*FsckResult, error) {
	res, err := o.fsck(ctx, store, orgID)
	var p *FsckProblem
	if errors.As(err, &p) && p.indexes {
		return o.fsck(ctx, store, orgID)
	}
	return res, err
}

func (o FsckOptions) fsck(ctx context.Context, store trail.LogStore, orgID string) (*FsckResult, error) {
	vkey, originPrefix := o.Key, o.Origin
	res := &FsckResult{}
	problem := func(index int64, id, format string, args ...any) error {
		return &FsckProblem{OrganizationID: orgID, Index: index, ID: id, Reason: fmt.Sprintf(format, args...)}
	}
	// Trail may be serving: events and checkpoints may be added while
	// fsck reads. It checks the tree of the latest checkpoint when it
	// starts and the rows up to the head it reads next; what comes later
	// is left for the next run.
	latest, err := store.LatestCheckpoint(ctx, orgID)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		latest = nil
	} else if err != nil {
		return nil, err
	}
	head, err := store.LogHead(ctx, orgID)
	if err != nil {
		return nil, err
	}
	treeSize := int64(0)
	if latest != nil {
		treeSize = latest.Size
	}
	res.TreeSize = treeSize
	if latest != nil && (!head.HasCheckpoint || head.TreeSize < treeSize) {
		return res, problem(-1, "", "the organization's tree size (%d) is behind its latest checkpoint's (%d)", head.TreeSize, treeSize)
	}
	if head.HasCheckpoint && head.TreeSize > treeSize {
		// An integrator signed meanwhile, or checkpoints were removed.
		now, err := store.LatestCheckpoint(ctx, orgID)
		if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			return res, err
		}
		if now == nil || now.Size < head.TreeSize {
			return res, problem(-1, "", "the organization's tree has size %d, but no checkpoint of that size: checkpoints were removed", head.TreeSize)
		}
	}

	// Checkpoints are read as the scan reaches their sizes.
	var pending []*trail.Checkpoint
	lastSize := int64(-1)
	nextCheckpoint := func() (*trail.Checkpoint, error) {
		if len(pending) == 0 {
			cps, err := store.FindCheckpoints(ctx, orgID, lastSize, 1000)
			if err != nil {
				return nil, err
			}
			pending = cps
		}
		if len(pending) == 0 {
			return nil, nil
		}
		cp := pending[0]
		pending = pending[1:]
		lastSize = cp.Size
		return cp, nil
	}
	origin := Origin(originPrefix, orgID)
	tree := rangeFactory.NewEmptyRange(0)
	want := &tileSet{tiles: map[trail.TileID]*trail.Tile{}, dirty: map[trail.TileID]bool{}}
	var leafTile *trail.Tile
	cp, err := nextCheckpoint()
	if err != nil {
		return res, err
	}
	// checkRoot checks every checkpoint whose size the tree has reached
	// (up to the latest one when fsck started).
	checkRoot := func() error {
		for cp != nil && cp.Size <= treeSize && cp.Size == int64(tree.End()) {
			opened, err := OpenCheckpoint([]byte(cp.Note), vkey)
			if err != nil {
				return problem(-1, "", "checkpoint of tree size %d: %v", cp.Size, err)
			}
			if opened.Origin != origin || opened.Size != cp.Size || opened.Root != cp.Root {
				return problem(-1, "", "checkpoint of tree size %d: the signed note says origin %q, size %d, root %x; the row says origin %q, size %d, root %x",
					cp.Size, opened.Origin, opened.Size, opened.Root, origin, cp.Size, cp.Root)
			}
			root, err := rootOf(tree)
			if err != nil {
				return err
			}
			if root != cp.Root {
				return problem(-1, "", "the events before index %d do not form the tree of the checkpoint of that size: an event was changed, removed, inserted or moved", cp.Size)
			}
			res.Checkpoints++
			if cp, err = nextCheckpoint(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := checkRoot(); err != nil {
		return res, err
	}
	next := int64(0)
	ev := newPurgeEvidence(orgID)
	ix := newIndexCheck()
	// Rows up to the head read before the scan's snapshot are all in it;
	// rows beyond are ones appended since, checked against the head as it
	// is when they are met.
	bound := head.LogSize
	scanErr := store.ScanLog(ctx, orgID, trail.LogScan{Indexes: ix.finish, Thorough: o.Thorough, Row: func(row *trail.LogRow) error {
		if row.Index >= bound {
			// An append committed since the head was read moved the head
			// with it; a row beyond the head as it is now was not put
			// there by Trail. The scan goes on through the snapshot's
			// rows, for the indexes (the tree is checked up to treeSize).
			now, err := store.LogHead(ctx, orgID)
			if err != nil {
				return err
			}
			if row.Index >= now.LogSize {
				return problem(row.Index, row.ID, "a row beyond the log's head (%d events): inserted behind Trail's back", now.LogSize)
			}
			bound = now.LogSize
		}
		if row.Index != next {
			return problem(next, "", "missing: the next row has index %d", row.Index)
		}
		if row.Mismatch != "" {
			return problem(row.Index, row.ID, "%s", row.Mismatch)
		}
		leaf := row.LeafHash
		if row.Purged {
			ev.purged(row.Index)
		} else {
			computed, err := LeafHashJSON(row.Data)
			if err != nil {
				return problem(row.Index, row.ID, "the stored document: %v", err)
			}
			if computed != row.LeafHash {
				return problem(row.Index, row.ID, "its contents do not match the leaf hash stored with it: the row was changed")
			}
			doc, err := decodeRow(row)
			if err != nil {
				return problem(row.Index, row.ID, "the stored document: %v", err)
			}
			if err := ix.row(row, doc); err != nil {
				return err
			}
			if row.Index < treeSize {
				ev.row(row, doc)
			}
			if path, number := nonCanonicalNumber(doc); path != "" {
				res.NonCanonical++
				if len(res.Warnings) < MaxFsckWarnings {
					res.Warnings = append(res.Warnings, fmt.Sprintf("event index %d (id %s): the number %s at %s is not in the canonical form its leaf hash covers: digits beyond it could be changed undetected", row.Index, row.ID, number, path))
				}
			}
		}
		if row.Index < treeSize {
			if leafTile == nil || leafTile.Index != row.Index/trail.TileWidth {
				tiles, err := store.Tiles(ctx, orgID, []trail.TileID{{Level: 0, Index: row.Index / trail.TileWidth}})
				if err != nil {
					return err
				}
				leafTile = nil
				if len(tiles) == 1 {
					leafTile = tiles[0]
				}
			}
			off := int(row.Index%trail.TileWidth) * trail.HashSize
			if leafTile == nil || len(leafTile.Hashes) < off+trail.HashSize || !bytes.Equal(leafTile.Hashes[off:off+trail.HashSize], leaf[:]) {
				return problem(row.Index, row.ID, "its leaf hash is not the one in the tree (tile 0/%d): the row or the tree was changed", row.Index/trail.TileWidth)
			}
			visit := func(id compact.NodeID, h []byte) {
				if id.Level > 0 { // level 0 is checked row by row
					want.visit(id, h)
				}
			}
			if err := tree.Append(leaf[:], visit); err != nil {
				return err
			}
			if err := checkRoot(); err != nil {
				return err
			}
		}
		next++
		res.Events++
		return nil
	}})
	var p *FsckProblem
	if errors.As(scanErr, &p) {
		return res, p
	} else if scanErr != nil {
		return res, scanErr
	}
	if next < head.LogSize {
		return res, problem(next, "", "missing: the log's head says %d events, the rows end before", head.LogSize)
	}
	if cp != nil && cp.Size <= treeSize {
		return res, problem(-1, "", "the checkpoint of tree size %d was not reached: events are missing", cp.Size)
	}
	if want.err != nil {
		return res, problem(-1, "", "%v", want.err)
	}
	warnings, err := ev.check(ctx, store, vkey, o.Legacy[orgID])
	res.Warnings = append(res.Warnings, warnings...)
	if err != nil {
		return res, err
	}
	res.Indexes = ix.report
	if ix.report.Bad() {
		reason := "the secondary indexes do not match the documents (" + ix.report.String() + ")"
		if ix.report.First != "" {
			reason += ": " + ix.report.First
		}
		return res, &FsckProblem{OrganizationID: orgID, Index: ix.report.FirstIndex, ID: ix.report.FirstID, Reason: reason, indexes: true}
	}
	// The upper levels of the tree, as stored, against the recomputed.
	var ids []trail.TileID
	for id := range want.tiles {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		stored, err := store.Tiles(ctx, orgID, chunk)
		if err != nil {
			return res, err
		}
		byID := map[trail.TileID]*trail.Tile{}
		for _, t := range stored {
			byID[trail.TileID{Level: t.Level, Index: t.Index}] = t
		}
		for _, id := range chunk {
			// A tile may have grown since (it only grows).
			t := byID[id]
			if t == nil || !bytes.HasPrefix(t.Hashes, want.tiles[id].Hashes) {
				return res, problem(-1, "", "tile %d/%d of the tree differs from the one the events give: the tree was changed", id.Level, id.Index)
			}
		}
	}
	return res, nil
}
