package tlog

import (
	"context"

	"github.com/transparency-dev/merkle/proof"

	"github.com/trail-audit/trail"
)

// Prover answers checkpoints and proofs from a LogStore. Each proof reads
// the latest checkpoint and O(log n) tiles in one query.
type Prover struct {
	Store trail.LogStore
	Key   string // the verifier key
}

var _ trail.ProofService = (*Prover)(nil)

// VerifierKey returns the checkpoints' verifier key.
func (p *Prover) VerifierKey() string { return p.Key }

// LatestCheckpoint returns the organization's newest checkpoint.
func (p *Prover) LatestCheckpoint(ctx context.Context, orgID string) (*trail.Checkpoint, error) {
	return p.Store.LatestCheckpoint(ctx, orgID)
}

// FindCheckpoint returns the checkpoint of one tree size.
func (p *Prover) FindCheckpoint(ctx context.Context, orgID string, size int64) (*trail.Checkpoint, error) {
	return p.Store.FindCheckpoint(ctx, orgID, size)
}

// provable returns the size of the latest checkpoint, which bounds the
// trees that can be proven; treeSize 0 asks for it.
func (p *Prover) provable(ctx context.Context, orgID string, treeSize int64) (int64, error) {
	cp, err := p.Store.LatestCheckpoint(ctx, orgID)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		if _, err := p.Store.LogHead(ctx, orgID); err != nil {
			return 0, err
		}
		return 0, trail.Errorf(trail.EINVALID, "No checkpoint has been signed for this organization yet; retry in a second.")
	} else if err != nil {
		return 0, err
	}
	if treeSize == 0 {
		return cp.Size, nil
	}
	if treeSize > cp.Size {
		return 0, trail.Errorf(trail.EINVALID, "tree_size %d is beyond the latest checkpoint (%d).", treeSize, cp.Size)
	}
	return treeSize, nil
}

// InclusionProof proves leaf index in the tree of treeSize (0: the latest
// checkpoint's).
func (p *Prover) InclusionProof(ctx context.Context, orgID string, index, treeSize int64) (*trail.InclusionProof, error) {
	if index < 0 || treeSize < 0 {
		return nil, trail.Errorf(trail.EINVALID, "index and tree_size must not be negative.")
	}
	size, err := p.provable(ctx, orgID, treeSize)
	if err != nil {
		return nil, err
	}
	if index >= size {
		return nil, trail.Errorf(trail.EINVALID, "index %d is not in the tree of size %d.", index, size)
	}
	return p.inclusion(ctx, orgID, index, size)
}

// LatestInclusionProof proves leaf index in the tree of the latest
// checkpoint, returned with the proof (nil when the leaf is not in it).
func (p *Prover) LatestInclusionProof(ctx context.Context, orgID string, index int64) (*trail.Checkpoint, *trail.InclusionProof, error) {
	if index < 0 {
		return nil, nil, trail.Errorf(trail.EINVALID, "index must not be negative.")
	}
	cp, err := p.Store.LatestCheckpoint(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	if index >= cp.Size {
		return cp, nil, nil
	}
	pr, err := p.inclusion(ctx, orgID, index, cp.Size)
	if err != nil {
		return nil, nil, err
	}
	return cp, pr, nil
}

// inclusion proves leaf index (< size) in the tree of size.
func (p *Prover) inclusion(ctx context.Context, orgID string, index, size int64) (*trail.InclusionProof, error) {
	nodes, err := proof.Inclusion(uint64(index), uint64(size))
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "%v", err)
	}
	hashes, err := p.rehash(ctx, orgID, nodes)
	if err != nil {
		return nil, err
	}
	return &trail.InclusionProof{LeafIndex: index, TreeSize: size, Hashes: hashes}, nil
}

// ConsistencyProof proves that the tree of size first is a prefix of the
// tree of size second (0: the latest checkpoint's).
func (p *Prover) ConsistencyProof(ctx context.Context, orgID string, first, second int64) (*trail.ConsistencyProof, error) {
	if first < 0 || second < 0 {
		return nil, trail.Errorf(trail.EINVALID, "first and second must not be negative.")
	}
	size, err := p.provable(ctx, orgID, second)
	if err != nil {
		return nil, err
	}
	if first > size {
		return nil, trail.Errorf(trail.EINVALID, "first (%d) must not be greater than second (%d).", first, size)
	}
	nodes, err := proof.Consistency(uint64(first), uint64(size))
	if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "%v", err)
	}
	hashes, err := p.rehash(ctx, orgID, nodes)
	if err != nil {
		return nil, err
	}
	return &trail.ConsistencyProof{First: first, Second: size, Hashes: hashes}, nil
}

func (p *Prover) rehash(ctx context.Context, orgID string, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := nodeHashes(ctx, p.Store, orgID, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return rehashed(nodes, hashes)
}

// rehashed turns the hashes of a proof's complete nodes into the proof's
// hashes (an empty list, not nil, for a proof of none).
func rehashed(nodes proof.Nodes, hashes [][]byte) ([][]byte, error) {
	hashes, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, err
	}
	if hashes == nil {
		hashes = [][]byte{}
	}
	return hashes, nil
}
