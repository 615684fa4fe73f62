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
	c := &fscker{o: o, ctx: ctx, store: store, orgID: orgID, res: &FsckResult{}, lastSize: -1}
	latest, head, err := c.readHead()
	if err != nil {
		return nil, err
	}
	if err := c.checkHead(latest, head); err != nil {
		return c.res, err
	}
	c.origin = Origin(o.Origin, orgID)
	c.tree = rangeFactory.NewEmptyRange(0)
	c.want = &tileSet{tiles: map[trail.TileID]*trail.Tile{}, dirty: map[trail.TileID]bool{}}
	if c.cp, err = c.nextCheckpoint(); err != nil {
		return c.res, err
	}
	if err := c.checkRoot(); err != nil {
		return c.res, err
	}
	c.ev = newPurgeEvidence(orgID)
	c.ix = newIndexCheck()
	// Rows up to the head read before the scan's snapshot are all in it;
	// rows beyond are ones appended since, checked against the head as it
	// is when they are met.
	c.bound = c.head.LogSize
	scanErr := store.ScanLog(ctx, orgID, trail.LogScan{Indexes: c.ix.finish, Thorough: o.Thorough, Row: c.row})
	var p *FsckProblem
	if errors.As(scanErr, &p) {
		return c.res, p
	} else if scanErr != nil {
		return c.res, scanErr
	}
	if err := c.finish(); err != nil {
		return c.res, err
	}
	return c.res, c.checkUpperTiles()
}

// fscker is the state of one run of fsck over one organization's log.
type fscker struct {
	o     FsckOptions
	ctx   context.Context
	store trail.LogStore
	orgID string
	res   *FsckResult

	head     *trail.LogHead
	treeSize int64 // the latest checkpoint's when fsck started

	// Checkpoints are read as the scan reaches their sizes.
	pending  []*trail.Checkpoint
	lastSize int64
	cp       *trail.Checkpoint // the next checkpoint to check

	origin   string
	tree     *compact.Range
	want     *tileSet // the tree's upper levels, recomputed
	leafTile *trail.Tile
	next     int64 // the index the next row must have
	bound    int64 // the head the rows are checked against
	ev       *purgeEvidence
	ix       *indexCheck
}

func (c *fscker) problem(index int64, id, format string, args ...any) error {
	return &FsckProblem{OrganizationID: c.orgID, Index: index, ID: id, Reason: fmt.Sprintf(format, args...)}
}

// readHead reads the latest checkpoint and the log's head. Trail may be
// serving: events and checkpoints may be added while fsck reads. It
// checks the tree of the latest checkpoint when it starts and the rows up
// to the head it reads next; what comes later is left for the next run.
func (c *fscker) readHead() (*trail.Checkpoint, *trail.LogHead, error) {
	latest, err := c.store.LatestCheckpoint(c.ctx, c.orgID)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		latest = nil
	} else if err != nil {
		return nil, nil, err
	}
	head, err := c.store.LogHead(c.ctx, c.orgID)
	if err != nil {
		return nil, nil, err
	}
	return latest, head, nil
}

// checkHead checks that the head agrees with the latest checkpoint, and
// sets the tree size fsck checks up to.
func (c *fscker) checkHead(latest *trail.Checkpoint, head *trail.LogHead) error {
	c.head = head
	treeSize := int64(0)
	if latest != nil {
		treeSize = latest.Size
	}
	c.treeSize = treeSize
	c.res.TreeSize = treeSize
	if latest != nil && (!head.HasCheckpoint || head.TreeSize < treeSize) {
		return c.problem(-1, "", "the organization's tree size (%d) is behind its latest checkpoint's (%d)", head.TreeSize, treeSize)
	}
	if head.HasCheckpoint && head.TreeSize > treeSize {
		// An integrator signed meanwhile, or checkpoints were removed.
		now, err := c.store.LatestCheckpoint(c.ctx, c.orgID)
		if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			return err
		}
		if now == nil || now.Size < head.TreeSize {
			return c.problem(-1, "", "the organization's tree has size %d, but no checkpoint of that size: checkpoints were removed", head.TreeSize)
		}
	}
	return nil
}

func (c *fscker) nextCheckpoint() (*trail.Checkpoint, error) {
	if len(c.pending) == 0 {
		cps, err := c.store.FindCheckpoints(c.ctx, c.orgID, c.lastSize, 1000)
		if err != nil {
			return nil, err
		}
		c.pending = cps
	}
	if len(c.pending) == 0 {
		return nil, nil
	}
	cp := c.pending[0]
	c.pending = c.pending[1:]
	c.lastSize = cp.Size
	return cp, nil
}

// checkRoot checks every checkpoint whose size the tree has reached (up
// to the latest one when fsck started).
func (c *fscker) checkRoot() error {
	for c.cp != nil && c.cp.Size <= c.treeSize && c.cp.Size == int64(c.tree.End()) {
		cp := c.cp
		opened, err := OpenCheckpoint([]byte(cp.Note), c.o.Key)
		if err != nil {
			return c.problem(-1, "", "checkpoint of tree size %d: %v", cp.Size, err)
		}
		if opened.Origin != c.origin || opened.Size != cp.Size || opened.Root != cp.Root {
			return c.problem(-1, "", "checkpoint of tree size %d: the signed note says origin %q, size %d, root %x; the row says origin %q, size %d, root %x",
				cp.Size, opened.Origin, opened.Size, opened.Root, c.origin, cp.Size, cp.Root)
		}
		root, err := rootOf(c.tree)
		if err != nil {
			return err
		}
		if root != cp.Root {
			return c.problem(-1, "", "the events before index %d do not form the tree of the checkpoint of that size: an event was changed, removed, inserted or moved", cp.Size)
		}
		c.res.Checkpoints++
		if c.cp, err = c.nextCheckpoint(); err != nil {
			return err
		}
	}
	return nil
}

// row checks one row of the scan.
func (c *fscker) row(row *trail.LogRow) error {
	if row.Index >= c.bound {
		// An append committed since the head was read moved the head
		// with it; a row beyond the head as it is now was not put
		// there by Trail. The scan goes on through the snapshot's
		// rows, for the indexes (the tree is checked up to treeSize).
		now, err := c.store.LogHead(c.ctx, c.orgID)
		if err != nil {
			return err
		}
		if row.Index >= now.LogSize {
			return c.problem(row.Index, row.ID, "a row beyond the log's head (%d events): inserted behind Trail's back", now.LogSize)
		}
		c.bound = now.LogSize
	}
	if row.Index != c.next {
		return c.problem(c.next, "", "missing: the next row has index %d", row.Index)
	}
	if row.Mismatch != "" {
		return c.problem(row.Index, row.ID, "%s", row.Mismatch)
	}
	if row.Purged {
		c.ev.purged(row.Index)
	} else if err := c.document(row); err != nil {
		return err
	}
	if row.Index < c.treeSize {
		if err := c.treeRow(row); err != nil {
			return err
		}
	}
	c.next++
	c.res.Events++
	return nil
}

// document checks the document of a row that is not purged against its
// leaf hash and the secondary indexes.
func (c *fscker) document(row *trail.LogRow) error {
	computed, err := LeafHashJSON(row.Data)
	if err != nil {
		return c.problem(row.Index, row.ID, "the stored document: %v", err)
	}
	if computed != row.LeafHash {
		return c.problem(row.Index, row.ID, "its contents do not match the leaf hash stored with it: the row was changed")
	}
	doc, err := decodeRow(row)
	if err != nil {
		return c.problem(row.Index, row.ID, "the stored document: %v", err)
	}
	if err := c.ix.row(row, doc); err != nil {
		return err
	}
	if row.Index < c.treeSize {
		c.ev.row(row, doc)
	}
	if path, number := nonCanonicalNumber(doc); path != "" {
		c.res.NonCanonical++
		if len(c.res.Warnings) < MaxFsckWarnings {
			c.res.Warnings = append(c.res.Warnings, fmt.Sprintf("event index %d (id %s): the number %s at %s is not in the canonical form its leaf hash covers: digits beyond it could be changed undetected", row.Index, row.ID, number, path))
		}
	}
	return nil
}

// treeRow checks a row in the tree against its leaf tile, and adds it to
// the recomputed tree.
func (c *fscker) treeRow(row *trail.LogRow) error {
	leaf := row.LeafHash
	if c.leafTile == nil || c.leafTile.Index != row.Index/trail.TileWidth {
		tiles, err := c.store.Tiles(c.ctx, c.orgID, []trail.TileID{{Level: 0, Index: row.Index / trail.TileWidth}})
		if err != nil {
			return err
		}
		c.leafTile = nil
		if len(tiles) == 1 {
			c.leafTile = tiles[0]
		}
	}
	off := int(row.Index%trail.TileWidth) * trail.HashSize
	if c.leafTile == nil || len(c.leafTile.Hashes) < off+trail.HashSize || !bytes.Equal(c.leafTile.Hashes[off:off+trail.HashSize], leaf[:]) {
		return c.problem(row.Index, row.ID, "its leaf hash is not the one in the tree (tile 0/%d): the row or the tree was changed", row.Index/trail.TileWidth)
	}
	visit := func(id compact.NodeID, h []byte) {
		if id.Level > 0 { // level 0 is checked row by row
			c.want.visit(id, h)
		}
	}
	if err := c.tree.Append(leaf[:], visit); err != nil {
		return err
	}
	return c.checkRoot()
}

// finish checks, after the scan, that no row or checkpoint is missing,
// the evidence of the purged events and the secondary indexes.
func (c *fscker) finish() error {
	if c.next < c.head.LogSize {
		return c.problem(c.next, "", "missing: the log's head says %d events, the rows end before", c.head.LogSize)
	}
	if c.cp != nil && c.cp.Size <= c.treeSize {
		return c.problem(-1, "", "the checkpoint of tree size %d was not reached: events are missing", c.cp.Size)
	}
	if c.want.err != nil {
		return c.problem(-1, "", "%v", c.want.err)
	}
	warnings, err := c.ev.check(c.ctx, c.store, c.o.Key, c.o.Legacy[c.orgID])
	c.res.Warnings = append(c.res.Warnings, warnings...)
	if err != nil {
		return err
	}
	ix := c.ix
	c.res.Indexes = ix.report
	if ix.report.Bad() {
		reason := "the secondary indexes do not match the documents (" + ix.report.String() + ")"
		if ix.report.First != "" {
			reason += ": " + ix.report.First
		}
		return &FsckProblem{OrganizationID: c.orgID, Index: ix.report.FirstIndex, ID: ix.report.FirstID, Reason: reason, indexes: true}
	}
	return nil
}

// checkUpperTiles checks the upper levels of the tree, as stored, against
// the recomputed.
func (c *fscker) checkUpperTiles() error {
	var ids []trail.TileID
	for id := range c.want.tiles {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		stored, err := c.store.Tiles(c.ctx, c.orgID, chunk)
		if err != nil {
			return err
		}
		byID := map[trail.TileID]*trail.Tile{}
		for _, t := range stored {
			byID[trail.TileID{Level: t.Level, Index: t.Index}] = t
		}
		for _, id := range chunk {
			// A tile may have grown since (it only grows).
			t := byID[id]
			if t == nil || !bytes.HasPrefix(t.Hashes, c.want.tiles[id].Hashes) {
				return c.problem(-1, "", "tile %d/%d of the tree differs from the one the events give: the tree was changed", id.Level, id.Index)
			}
		}
	}
	return nil
}
