package trail

import (
	"crypto/sha256"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// LeafHash returns the Merkle leaf hash of a stored event (SPEC §6):
// SHA-256(0x00 ‖ JCS(event without index)), where JCS is RFC 8785
// canonical JSON. Index is not part of it: it is the leaf's position.
func (ev *Event) LeafHash() [32]byte {
	return leafHash(ev.AppendCanonical(nil))
}

// AppendCanonical appends the RFC 8785 canonical JSON of the stored event
// without its index: members sorted by name, strings with only the
// escapes JCS allows, numbers as ECMAScript prints them.
func (ev *Event) AppendCanonical(b []byte) []byte {
	p := canonicalParts{
		action:   appendCanonicalString(nil, ev.Action),
		actor:    appendCanonicalParty(nil, ev.Actor.ID, ev.Actor.Type, ev.Actor.Name, ev.Actor.Metadata),
		context:  appendCanonicalContext(nil, ev.Context),
		md:       appendCanonicalMetadataMember(nil, ev.Metadata),
		occurred: appendCanonicalTime(nil, ev.OccurredAt),
		targets:  appendCanonicalTargets(nil, ev.Targets),
		version:  strconv.AppendInt(nil, int64(ev.Version), 10),
	}
	return p.append(b, ev.ID, ev.OrganizationID, ev.ReceivedAt)
}

// canonicalParts are the canonical encodings of the parts of an event that
// the client sends; id, organization and received_at complete them.
type canonicalParts struct {
	action, actor, context, md, occurred, targets, version []byte // md is the whole `,"metadata":{…}` member, or nil
}

// append writes the stored event's members in JCS order: action, actor,
// context, id, metadata, occurred_at, organization_id, received_at,
// targets, version.
func (p *canonicalParts) append(b []byte, id, orgID string, receivedAt time.Time) []byte {
	b = append(append(b, `{"action":`...), p.action...)
	b = append(append(b, `,"actor":`...), p.actor...)
	b = append(append(b, `,"context":`...), p.context...)
	b = appendCanonicalString(append(b, `,"id":`...), id)
	b = append(b, p.md...)
	b = append(append(b, `,"occurred_at":`...), p.occurred...)
	b = appendCanonicalString(append(b, `,"organization_id":`...), orgID)
	b = appendCanonicalTime(append(b, `,"received_at":`...), receivedAt)
	b = append(append(b, `,"targets":`...), p.targets...)
	b = append(append(b, `,"version":`...), p.version...)
	return append(b, '}')
}

func leafHash(canonical []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(canonical)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func appendCanonicalTime(b []byte, t time.Time) []byte {
	// The same text as time.Time's MarshalJSON: it needs no escaping.
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendCanonicalParty encodes an actor or a target: id, metadata, name,
// type; metadata and name only when present, as in the stored JSON.
func appendCanonicalParty(b []byte, id, typ, name string, md Metadata) []byte {
	b = appendCanonicalString(append(b, `{"id":`...), id)
	if len(md) > 0 {
		b = appendCanonicalMetadata(append(b, `,"metadata":`...), md)
	}
	if name != "" {
		b = appendCanonicalString(append(b, `,"name":`...), name)
	}
	b = appendCanonicalString(append(b, `,"type":`...), typ)
	return append(b, '}')
}

func appendCanonicalContext(b []byte, c EventContext) []byte {
	b = appendCanonicalString(append(b, `{"location":`...), c.Location)
	if c.UserAgent != "" {
		b = appendCanonicalString(append(b, `,"user_agent":`...), c.UserAgent)
	}
	return append(b, '}')
}

func appendCanonicalTargets(b []byte, ts []Target) []byte {
	if ts == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCanonicalParty(b, t.ID, t.Type, t.Name, t.Metadata)
	}
	return append(b, ']')
}

// appendCanonicalMetadataMember returns `,"metadata":{…}`, or nil when the
// stored JSON leaves metadata out.
func appendCanonicalMetadataMember(b []byte, md Metadata) []byte {
	if len(md) == 0 {
		return nil
	}
	return appendCanonicalMetadata(append(b, `,"metadata":`...), md)
}

// appendCanonicalMetadata sorts the keys by their UTF-16 code units, as
// RFC 8785 §3.2.3 says.
func appendCanonicalMetadata(b []byte, md Metadata) []byte {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendCanonicalString(b, k), ':')
		b = appendCanonicalValue(b, md[k])
	}
	return append(b, '}')
}

func appendCanonicalValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendCanonicalString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64) // Validate accepts only finite JSON numbers
		return appendCanonicalNumber(b, f)
	case float64:
		return appendCanonicalNumber(b, v)
	case int:
		return appendCanonicalNumber(b, float64(v))
	case int64:
		return appendCanonicalNumber(b, float64(v))
	case nil:
		return append(b, "null"...)
	}
	// Validate lets no other type through; encode it as the stored JSON
	// would, canonicalized as far as this function knows how.
	raw, _ := json.Marshal(v)
	return append(b, raw...)
}

// appendCanonicalNumber prints f as ECMAScript's Number.prototype.toString
// does (RFC 8785 §3.2.2.3): the shortest form that round-trips, in
// exponent form below 1e-6 and from 1e21, and -0 as 0. This is the rule
// encoding/json's float64 encoder follows too.
func appendCanonicalNumber(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0') // also -0
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as ECMAScript prints it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendCanonicalString quotes s as RFC 8785 §3.2.2.2 says: only '"',
// '\' and control characters are escaped, with \b \t \n \f \r for those
// that have a short form and \u00xx (lower-case hex) for the others.
// Invalid UTF-8 becomes U+FFFD, as decoding the stored JSON gives.
func appendCanonicalString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
	}
	return append(b, '"')
}

// compareUTF16 orders strings by their UTF-16 code units.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			// Below U+10000 a rune is its code unit; above, the first
			// code unit is a high surrogate (0xD800–0xDBFF), which sorts
			// below U+E000–U+FFFF.
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			return int(secondUnit(ra)) - int(secondUnit(rb))
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func firstUnit(r rune) rune {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return hi
	}
	return r
}

func secondUnit(r rune) rune {
	if r >= 0x10000 {
		_, lo := utf16.EncodeRune(r)
		return lo
	}
	return 0
}
