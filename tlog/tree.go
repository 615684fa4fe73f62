package tlog

import (
	"context"
	"fmt"

	"github.com/trail-audit/trail"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// hasher is RFC 6962 with SHA-256.
var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// tileOf returns the tile that holds the hashes a complete node is made
// of, and where they are in it: a node of tree level ℓ is the root of
// 2^(ℓ mod 8) consecutive hashes of level ⌊ℓ/8⌋×8.
func tileOf(id compact.NodeID) (tile trail.TileID, offset, count int) {
	level := int(id.Level) / trail.TileHeight
	rel := id.Level % trail.TileHeight
	first := id.Index << rel
	return trail.TileID{Level: level, Index: int64(first / trail.TileWidth)}, int(first % trail.TileWidth), 1 << rel
}

// nodeHashes reads the hashes of complete nodes from the tiles, one read
// for all of them.
func nodeHashes(ctx context.Context, store trail.LogStore, orgID string, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var want []trail.TileID
	seen := map[trail.TileID]bool{}
	for _, id := range ids {
		t, _, _ := tileOf(id)
		if !seen[t] {
			seen[t] = true
			want = append(want, t)
		}
	}
	tiles, err := store.Tiles(ctx, orgID, want)
	if err != nil {
		return nil, fmt.Errorf("read tiles: %w", err)
	}
	byID := make(map[trail.TileID]*trail.Tile, len(tiles))
	for _, t := range tiles {
		byID[trail.TileID{Level: t.Level, Index: t.Index}] = t
	}
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		tid, off, n := tileOf(id)
		t := byID[tid]
		if t == nil || t.Width() < off+n {
			return nil, fmt.Errorf("tile %d/%d of %s lacks node %d/%d: the tree is incomplete", tid.Level, tid.Index, orgID, id.Level, id.Index)
		}
		hashes[i] = subtreeHash(t.Hashes[off*trail.HashSize : (off+n)*trail.HashSize])
	}
	return hashes, nil
}

// subtreeHash returns the root of a perfect subtree given its bottom
// hashes (a power of two of them), concatenated.
func subtreeHash(flat []byte) []byte {
	level := make([][]byte, len(flat)/trail.HashSize)
	for i := range level {
		level[i] = flat[i*trail.HashSize : (i+1)*trail.HashSize]
	}
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i+1 < len(level); i += 2 {
			next = append(next, hasher.HashChildren(level[i], level[i+1]))
		}
		level = next
	}
	return level[0]
}

// rangeAt rebuilds the compact range of the first size leaves from the
// tiles.
func rangeAt(ctx context.Context, store trail.LogStore, orgID string, size int64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, uint64(size), nil)
	hashes, err := nodeHashes(ctx, store, orgID, ids)
	if err != nil {
		return nil, err
	}
	return rangeFactory.NewRange(0, uint64(size), hashes)
}

// rootOf returns the root hash of a compact range from 0 (the empty root
// for an empty one).
func rootOf(r *compact.Range) ([trail.HashSize]byte, error) {
	var root [trail.HashSize]byte
	h, err := r.GetRootHash(nil)
	if err != nil {
		return root, err
	}
	if h == nil {
		h = hasher.EmptyRoot()
	}
	copy(root[:], h)
	return root, nil
}

// tileSet collects the tiles an integration step grows: it starts from the
// partial tiles of the old tree and takes every new node whose level is a
// multiple of the tile height.
type tileSet struct {
	tiles map[trail.TileID]*trail.Tile
	dirty map[trail.TileID]bool
	err   error
}

// partialTiles lists the tiles that are not full in the tree of size
// leaves: those an append grows first.
func partialTiles(size int64) []trail.TileID {
	var ids []trail.TileID
	for level := 0; ; level++ {
		count := size >> (trail.TileHeight * level)
		if count == 0 {
			return ids
		}
		if count%trail.TileWidth != 0 {
			ids = append(ids, trail.TileID{Level: level, Index: count / trail.TileWidth})
		}
	}
}

func (s *tileSet) visit(id compact.NodeID, hash []byte) {
	if id.Level%trail.TileHeight != 0 || s.err != nil {
		return
	}
	tid := trail.TileID{Level: int(id.Level) / trail.TileHeight, Index: int64(id.Index / trail.TileWidth)}
	t := s.tiles[tid]
	if t == nil {
		t = &trail.Tile{Level: tid.Level, Index: tid.Index}
		s.tiles[tid] = t
	}
	if want := int(id.Index % trail.TileWidth); t.Width() != want {
		s.err = fmt.Errorf("tile %d/%d holds %d hashes, node %d/%d needs %d: the stored tree is inconsistent", tid.Level, tid.Index, t.Width(), id.Level, id.Index, want)
		return
	}
	t.Hashes = append(t.Hashes, hash...)
	s.dirty[tid] = true
}

// list returns the tiles that grew.
func (s *tileSet) list() []*trail.Tile {
	out := make([]*trail.Tile, 0, len(s.dirty))
	for id := range s.dirty {
		out = append(out, s.tiles[id])
	}
	return out
}
