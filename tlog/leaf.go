package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
	"github.com/trail-audit/trail"
)

// nonLeafMembers are the members of a stored event's JSON that are not
// part of its leaf: its position, and what a read adds.
var nonLeafMembers = []string{"index", "proof", "leaf_hash"}

// LeafHashJSON returns the leaf hash of a stored event given as JSON (an
// API response, an export line, a database row): SHA-256(0x00 ‖ JCS(the
// event without index)). It canonicalizes with a general RFC 8785
// implementation, independent of the encoder that Trail's drivers use
// when they store events, so that Fsck and Verify check that one too.
func LeafHashJSON(data []byte) ([trail.HashSize]byte, error) {
	members, err := parseObject(data)
	if err != nil {
		return [trail.HashSize]byte{}, err
	}
	return leafHashMembers(members)
}

func leafHashMembers(members map[string]json.RawMessage) ([trail.HashSize]byte, error) {
	kept := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		kept[k] = v
	}
	for _, k := range nonLeafMembers {
		delete(kept, k)
	}
	raw, err := json.Marshal(kept)
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

// parseObject reads a JSON object's members by their exact names. A name
// given twice is refused: readers disagree on which one counts, so a line
// could show one value and be hashed with another.
func parseObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("member %q given twice", name)
		}
		members[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("not one JSON object: something follows it")
	}
	return members, nil
}

// NonCanonicalNumber returns the JSON pointer and the text of the first
// number of a stored event's document that is not written as RFC 8785
// writes it ("" when every number is): the leaf hash covers the number's
// canonical form only, so other digits of it could be changed undetected.
// Trail stores every number in canonical form (SPEC §3); events stored
// before it did may hold others.
func NonCanonicalNumber(data []byte) (path, number string) {
	ev, err := decodeRow(&trail.LogRow{Data: data})
	if err != nil {
		return "", ""
	}
	return nonCanonicalNumber(ev)
}
