package tlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/trail-audit/trail"
)

// MaxLineBytes bounds one line of a file that Verify reads.
const MaxLineBytes = 16 << 20

// VerifyResult sums up a verified file.
type VerifyResult struct {
	Origin   string
	TreeSize int64
	Lines    int  // lines with an event
	Purged   int  // lines of events that retention purged (their leaf hash is taken as given)
	Proven   int  // lines checked by the inclusion proof they carry
	Tree     bool // the lines were the whole log and formed the checkpoint's tree
	// Consistent: the previous checkpoint was shown consistent with the
	// checkpoint.
	Consistent bool
}

// VerifyError names the first line that failed, with why.
type VerifyError struct {
	Line   int // 1-based; 0 for the checkpoint or the file as a whole
	Index  int64
	ID     string
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return e.Reason
	}
	if e.ID != "" {
		return fmt.Sprintf("line %d (index %d, id %s): %s", e.Line, e.Index, e.ID, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// lineProof is the inclusion proof a line may carry, as
// GET /audit_logs/events/{id} returns it.
type lineProof struct {
	TreeSize int64    `json:"tree_size"`
	Hashes   [][]byte `json:"hashes"`
}

// purgedMembers are the members of a purged event's line, and no others.
var purgedMembers = map[string]bool{"id": true, "index": true, "purged": true, "leaf_hash": true, "proof": true, "purge_evidence": true}

// Verify checks an NDJSON file of stored events (an export, or the events
// of GET /audit_logs/events pages, one a line, as JSON) against a signed
// checkpoint, offline (SPEC §6):
//
//   - the checkpoint's signature, with the verifier key;
//   - the lines are every event the checkpoint covers, from index 0, with
//     no gap, repetition or reordering, and together form its tree;
//   - every line's leaf hash, recomputed from its contents; a line that
//     carries a "proof" (as GET /audit_logs/events/{id} returns it) must be
//     included in the checkpoint's tree at its index, which names a
//     changed line.
//
// A line of a purged event ({"id","index","purged":true,"leaf_hash"})
// counts with the leaf hash it gives. The first problem is returned as a
// *VerifyError naming the line. VerifyOptions.Subset checks some events
// only, each by its proof.
func Verify(r io.Reader, checkpoint []byte, vkey string) (*VerifyResult, error) {
	return VerifyOptions{Key: vkey, Checkpoint: checkpoint}.Verify(r)
}

// VerifyOptions say what Verify checks a file against.
type VerifyOptions struct {
	Key        string // the verifier key
	Checkpoint []byte // the signed checkpoint the lines must belong to
	// Previous, if set, is an earlier signed checkpoint of the same log,
	// which must be consistent with Checkpoint (a log that forked or
	// rewrote its history is not): either ConsistencyProof proves it
	// (GET /audit_logs/proofs/consistency), or the lines form the tree and
	// give the earlier root.
	Previous         []byte
	ConsistencyProof [][]byte
	// Subset accepts lines that are not the whole log (some events, in
	// any order): each must then carry its proof, and the file's
	// completeness is not shown. Without it, the lines must be every
	// event the checkpoint covers, from index 0, in order.
	Subset bool
}

// CheckConsistency checks an earlier checkpoint against a later one with
// a consistency proof; both must be signed by vkey and of the same log.
func CheckConsistency(previous, checkpoint []byte, vkey string, hashes [][]byte) error {
	_, err := VerifyOptions{Key: vkey, Checkpoint: checkpoint, Previous: previous, ConsistencyProof: hashes}.Verify(nil)
	return err
}

// Verify checks the lines of r (none when r is nil) as the package's
// Verify does, and the previous checkpoint's consistency.
func (o VerifyOptions) Verify(r io.Reader) (*VerifyResult, error) {
	cp, prev, res, err := o.openCheckpoints(r == nil)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return res, nil
	}
	if o.Subset && prev != nil {
		return nil, &VerifyError{Reason: "a subset of the lines cannot show the previous checkpoint consistent: give its consistency proof"}
	}
	v := &lineVerifier{o: o, cp: cp, res: res, orgID: cp.OrganizationID()}
	tree := rangeFactory.NewEmptyRange(0)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		index, id, leaf, err := v.line(n, raw)
		if err != nil {
			return res, err
		}
		if o.Subset {
			continue
		}
		bad := func(format string, args ...any) error {
			return &VerifyError{Line: n, Index: index, ID: id, Reason: fmt.Sprintf(format, args...)}
		}
		switch next := int64(tree.End()); {
		case index < next:
			return res, bad("index %d after %d: a line was inserted, repeated or moved", index, next-1)
		case index > next:
			return res, bad("index %d after %d: %d line(s) missing before it", index, next-1, index-next)
		}
		if err := checkPrevious(tree, prev); err != nil {
			return res, err
		}
		if err := tree.Append(leaf[:], nil); err != nil {
			return res, err
		}
	}
	if err := sc.Err(); err != nil {
		return res, &VerifyError{Line: n + 1, Reason: err.Error()}
	}
	if o.Subset {
		return res, nil
	}
	return res, checkTree(res, tree, cp, prev)
}

// openCheckpoints opens the checkpoint and the previous one, and checks
// their consistency by the proof when there is one (or no lines to show
// it). prev is returned only if the lines must show it.
func (o VerifyOptions) openCheckpoints(noLines bool) (cp, prev *OpenedCheckpoint, res *VerifyResult, err error) {
	cp, err = OpenCheckpoint(o.Checkpoint, o.Key)
	if err != nil {
		return nil, nil, nil, &VerifyError{Reason: err.Error()}
	}
	res = &VerifyResult{Origin: cp.Origin, TreeSize: cp.Size}
	if o.Previous == nil {
		return cp, nil, res, nil
	}
	if prev, err = OpenCheckpoint(o.Previous, o.Key); err != nil {
		return nil, nil, nil, &VerifyError{Reason: "previous " + err.Error()}
	}
	if prev.Origin != cp.Origin {
		return nil, nil, nil, &VerifyError{Reason: fmt.Sprintf("the previous checkpoint is of log %q, the checkpoint of %q", prev.Origin, cp.Origin)}
	}
	if prev.Size > cp.Size {
		return nil, nil, nil, &VerifyError{Reason: fmt.Sprintf("the previous checkpoint (tree size %d) is larger than the checkpoint (%d): the log shrank, or they are given the wrong way round", prev.Size, cp.Size)}
	}
	if o.ConsistencyProof != nil || noLines {
		if err := proof.VerifyConsistency(hasher, uint64(prev.Size), uint64(cp.Size), o.ConsistencyProof, prev.Root[:], cp.Root[:]); err != nil {
			return nil, nil, nil, &VerifyError{Reason: fmt.Sprintf("the checkpoint of tree size %d is not consistent with the previous one of tree size %d: the log's history was forked or rewritten (or the proof is not theirs)", cp.Size, prev.Size)}
		}
		res.Consistent = true
		prev = nil
	}
	return cp, prev, res, nil
}

// checkTree checks that the whole log's lines form the checkpoint's tree,
// and the previous checkpoint's if it is still to be shown.
func checkTree(res *VerifyResult, tree *compact.Range, cp, prev *OpenedCheckpoint) error {
	if int64(tree.End()) != cp.Size {
		return &VerifyError{Reason: fmt.Sprintf("the lines end at index %d, but the checkpoint covers %d events: lines are missing at the end", int64(tree.End())-1, cp.Size)}
	}
	if err := checkPrevious(tree, prev); err != nil {
		return err
	}
	root, err := rootOf(tree)
	if err != nil {
		return err
	}
	if root != cp.Root {
		return &VerifyError{Reason: "the lines do not form the checkpoint's tree: the contents of a line were changed (lines that carry their proofs, as exports do, name the line)"}
	}
	res.Tree = true
	if prev != nil {
		res.Consistent = true
	}
	return nil
}

// lineVerifier checks the lines of a file one by one, each on its own.
type lineVerifier struct {
	o        VerifyOptions
	cp       *OpenedCheckpoint
	res      *VerifyResult
	orgID    string
	evidence evidenceCheck
}

// line checks line n (raw) on its own: its leaf hash, a purged event's
// evidence, and its proof if it has one. It returns the line's index, id
// and leaf hash.
func (v *lineVerifier) line(n int, raw []byte) (index int64, id string, leaf [trail.HashSize]byte, err error) {
	cp, res := v.cp, v.res
	members, err := parseObject(raw)
	if err != nil {
		return 0, "", leaf, &VerifyError{Line: n, Reason: err.Error()}
	}
	index = -1
	var org string
	json.Unmarshal(members["index"], &index)
	json.Unmarshal(members["id"], &id)
	json.Unmarshal(members["organization_id"], &org)
	if index < 0 {
		return index, id, leaf, &VerifyError{Line: n, Reason: "no index"}
	}
	bad := func(format string, args ...any) error {
		return &VerifyError{Line: n, Index: index, ID: id, Reason: fmt.Sprintf(format, args...)}
	}
	if index >= cp.Size {
		return index, id, leaf, bad("index %d is beyond the checkpoint, which covers %d events", index, cp.Size)
	}
	if _, ok := members["purged"]; ok {
		if leaf, err = v.purgedLeaf(members, index, bad); err != nil {
			return index, id, leaf, err
		}
		res.Purged++
	} else {
		if org != v.orgID {
			return index, id, leaf, bad("organization %q, but the checkpoint is of %q", org, v.orgID)
		}
		if leaf, err = leafHashMembers(members); err != nil {
			return index, id, leaf, bad("%v", err)
		}
	}
	res.Lines++
	if p, ok := members["proof"]; ok && string(p) != "null" {
		var lp lineProof
		if err := json.Unmarshal(p, &lp); err != nil {
			return index, id, leaf, bad("its proof is not an inclusion proof: %v", err)
		}
		if lp.TreeSize != cp.Size {
			return index, id, leaf, bad("its proof is for tree size %d, the checkpoint's is %d", lp.TreeSize, cp.Size)
		}
		if err := proof.VerifyInclusion(hasher, uint64(index), uint64(cp.Size), leaf[:], lp.Hashes, cp.Root[:]); err != nil {
			return index, id, leaf, bad("not in the checkpoint's tree at this index: the line or its proof was changed")
		}
		res.Proven++
	} else if v.o.Subset {
		return index, id, leaf, bad("no proof: a subset's every line needs its inclusion proof")
	}
	return index, id, leaf, nil
}

// purgedLeaf is the leaf hash a purged event's line gives. A purged event
// is taken at its word for its leaf hash, so its line may hold nothing
// else: no contents that would seem verified.
func (v *lineVerifier) purgedLeaf(members map[string]json.RawMessage, index int64, bad func(string, ...any) error) ([trail.HashSize]byte, error) {
	var leaf [trail.HashSize]byte
	if string(members["purged"]) != "true" {
		return leaf, bad(`"purged" must be true`)
	}
	for k := range members {
		if !purgedMembers[k] {
			return leaf, bad("a purged event's line holds %q: a purged event has only id, index, purged, leaf_hash, proof and purge_evidence", k)
		}
	}
	if e, ok := members["purge_evidence"]; ok {
		if err := v.evidence.add(e, v.cp, v.o.Key); err != nil {
			return leaf, bad("%v", err)
		}
	}
	if err := v.evidence.covers(index); err != nil {
		return leaf, bad("%v", err)
	}
	var h []byte
	if err := json.Unmarshal(members["leaf_hash"], &h); err != nil || len(h) != trail.HashSize {
		return leaf, bad("a purged event without its leaf_hash")
	}
	return [trail.HashSize]byte(h), nil
}

// checkPrevious compares the tree of the lines so far with the previous
// checkpoint when it has its size.
func checkPrevious(tree *compact.Range, prev *OpenedCheckpoint) error {
	if prev == nil || int64(tree.End()) != prev.Size {
		return nil
	}
	root, err := rootOf(tree)
	if err != nil {
		return err
	}
	if root != prev.Root {
		return &VerifyError{Reason: fmt.Sprintf("the previous checkpoint (tree size %d) does not match the first %d lines, which the checkpoint signs: the log's history was forked or rewritten, or one of those lines was changed", prev.Size, prev.Size)}
	}
	return nil
}
