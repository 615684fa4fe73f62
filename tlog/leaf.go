package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
	"github.com/trail-audit/trail"
)

// nonLeafMembers are the members of a stored event's JSON that are not
// part of its leaf: its position, and the proof a read may add.
var nonLeafMembers = []string{"index", "proof", "leaf_hash"}

// LeafHashJSON returns the leaf hash of a stored event given as JSON (an
// API response, an export line, a database row): SHA-256(0x00 ‖ JCS(the
// event without index)). It canonicalizes with a general RFC 8785
// implementation, independent of the encoder that Trail's drivers use
// when they store events, so that Fsck and Verify check that one too.
func LeafHashJSON(data []byte) ([trail.HashSize]byte, error) {
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&members); err != nil {
		return [trail.HashSize]byte{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if members == nil {
		return [trail.HashSize]byte{}, fmt.Errorf("not a JSON object")
	}
	for _, k := range nonLeafMembers {
		delete(members, k)
	}
	raw, err := json.Marshal(members)
	if err != nil {
		return [trail.HashSize]byte{}, err
	}
	canonical, err := jcs.Transform(raw)
	if err != nil {
		return [trail.HashSize]byte{}, fmt.Errorf("canonical JSON: %w", err)
	}
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(canonical)
	var sum [trail.HashSize]byte
	h.Sum(sum[:0])
	return sum, nil
}
