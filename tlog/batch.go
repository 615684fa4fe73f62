package tlog

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/trail-audit/trail"
)

// BatchProver makes inclusion proofs of many leaves of one tree, as an
// export does for each of its lines: each tile is read once while the
// leaves go in index order, and the inner nodes of a tile are hashed once.
// Its memory is bounded. It is not safe for concurrent use.
type BatchProver struct {
	store trail.LogStore
	orgID string
	size  int64
	tiles map[trail.TileID]*tileNodes
}

// maxCachedTiles bounds a BatchProver's cache; a proof needs one tile a
// tile level (four up to 4 billion leaves).
const maxCachedTiles = 64

// tileNodes holds a tile's hashes and the complete nodes above them
// within the tile: levels[k][i] is the root of hashes i×2^k … (i+1)×2^k−1.
type tileNodes struct {
	levels [][][]byte
}

func newTileNodes(t *trail.Tile) *tileNodes {
	bottom := make([][]byte, t.Width())
	for i := range bottom {
		bottom[i] = t.Hashes[i*trail.HashSize : (i+1)*trail.HashSize]
	}
	tn := &tileNodes{levels: [][][]byte{bottom}}
	for level := bottom; len(level) > 1; {
		next := make([][]byte, len(level)/2)
		for i := range next {
			next[i] = hasher.HashChildren(level[2*i], level[2*i+1])
		}
		tn.levels = append(tn.levels, next)
		level = next
	}
	return tn
}

// NewBatchProver returns a prover for the organization's tree of size
// leaves, which a checkpoint must cover.
func NewBatchProver(store trail.LogStore, orgID string, size int64) *BatchProver {
	return &BatchProver{store: store, orgID: orgID, size: size, tiles: map[trail.TileID]*tileNodes{}}
}

// load makes sure the tiles that hold ids are cached, in one read.
func (p *BatchProver) load(ctx context.Context, ids []compact.NodeID) error {
	var need, want []trail.TileID
	for _, id := range ids {
		t, _, _ := tileOf(id)
		if !containsTile(need, t) {
			need = append(need, t)
			if p.tiles[t] == nil {
				want = append(want, t)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	if len(p.tiles)+len(want) > maxCachedTiles {
		clear(p.tiles)
		want = need
	}
	tiles, err := p.store.Tiles(ctx, p.orgID, want)
	if err != nil {
		return fmt.Errorf("read tiles: %w", err)
	}
	for _, t := range tiles {
		p.tiles[trail.TileID{Level: t.Level, Index: t.Index}] = newTileNodes(t)
	}
	return nil
}

func containsTile(ids []trail.TileID, id trail.TileID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// node returns a complete node's hash from the cache.
func (p *BatchProver) node(id compact.NodeID) ([]byte, error) {
	tid, off, _ := tileOf(id)
	tn := p.tiles[tid]
	rel := int(id.Level % trail.TileHeight)
	if tn == nil || rel >= len(tn.levels) || off>>rel >= len(tn.levels[rel]) {
		return nil, fmt.Errorf("tile %d/%d of %s lacks node %d/%d: the tree is incomplete", tid.Level, tid.Index, p.orgID, id.Level, id.Index)
	}
	return tn.levels[rel][off>>rel], nil
}

// LeafHash returns the leaf hash at index, from the tiles.
func (p *BatchProver) LeafHash(ctx context.Context, index int64) ([]byte, error) {
	id := compact.NewNodeID(0, uint64(index))
	if err := p.load(ctx, []compact.NodeID{id}); err != nil {
		return nil, err
	}
	return p.node(id)
}

// Prove returns the inclusion proof of leaf index in the tree.
func (p *BatchProver) Prove(ctx context.Context, index int64) ([][]byte, error) {
	if index < 0 || index >= p.size {
		return nil, fmt.Errorf("index %d is not in the tree of size %d", index, p.size)
	}
	nodes, err := proof.Inclusion(uint64(index), uint64(p.size))
	if err != nil {
		return nil, err
	}
	if err := p.load(ctx, nodes.IDs); err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		if hashes[i], err = p.node(id); err != nil {
			return nil, err
		}
	}
	return rehashed(nodes, hashes)
}
