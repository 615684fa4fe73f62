package export

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/trail-audit/trail"
)

// Columns are the CSV columns, in order (SPEC §8).
var Columns = []string{"id", "index", "occurred_at", "received_at", "action", "version", "actor_type",
	"actor_id", "actor_name", "target_types", "target_ids", "target_names", "location", "user_agent", "metadata"}

// EscapeCell guards a CSV cell against formula injection (SPEC §8): a
// cell that starts with a tab or a carriage return, or whose first
// non-blank character is =, +, - or @ (or their full-width forms, which
// some spreadsheets read as the same), gets a leading ' (OWASP's advice),
// so that a spreadsheet shows it as text. Blank is any Unicode white space
// (space, tab, CR, LF, no-break space…), control or format character
// (zero-width space, byte order mark…): spreadsheets skip them before
// they look for a formula.
func EscapeCell(s string) string {
	for i, r := range s {
		switch r {
		case '\t', '\r':
			if i == 0 {
				return "'" + s
			}
			continue
		case '=', '+', '-', '@', '\uff1d', '\uff0b', '\uff0d', '\uff20':
			return "'" + s
		}
		if r == utf8.RuneError || !(unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			return s
		}
	}
	return s
}

// csvRows turns stored events into CSV rows, with RFC 4180 quoting
// (encoding/csv) and every cell escaped.
type csvRows struct {
	buf    bytes.Buffer
	w      *csv.Writer
	record []string
	parser fastjson.Parser
	lists  [3][]byte // the targets' types, ids and names, joined with ;
	md     []byte
}

func newCSVRows() *csvRows {
	c := &csvRows{record: make([]string, len(Columns))}
	c.w = csv.NewWriter(&c.buf)
	return c
}

// header returns the header row.
func csvHeader() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(Columns)
	w.Flush()
	return b.Bytes()
}

// appendEvent appends the row of one stored event.
func (c *csvRows) appendEvent(raw string) error {
	v, err := c.parser.Parse(raw)
	if err != nil {
		return fmt.Errorf("decode stored event: %w", err)
	}
	// The cells are views of the parsed event (no copies): csv.Writer
	// copies each record before the next Parse reuses the memory.
	str := func(v *fastjson.Value, keys ...string) string { return view(v.GetStringBytes(keys...)) }
	for i := range c.lists {
		c.lists[i] = c.lists[i][:0]
	}
	for i, t := range v.GetArray("targets") {
		for k, key := range [3]string{"type", "id", "name"} {
			if i > 0 {
				c.lists[k] = append(c.lists[k], ';')
			}
			// Each element is guarded: a spreadsheet that splits the
			// cell on ; must not find a formula either.
			c.lists[k] = append(c.lists[k], EscapeCell(view(t.GetStringBytes(key)))...)
		}
	}
	md := ""
	if m := v.Get("metadata"); m != nil && m.Type() == fastjson.TypeObject {
		md = c.metadata(m)
	}
	r := c.record
	r[0] = str(v, "id")
	r[1] = strconv.FormatInt(v.GetInt64("index"), 10)
	r[2] = str(v, "occurred_at")
	r[3] = str(v, "received_at")
	r[4] = EscapeCell(str(v, "action"))
	r[5] = strconv.Itoa(v.GetInt("version"))
	actor := v.Get("actor")
	if actor == nil {
		return fmt.Errorf("stored event %s has no actor", r[0])
	}
	r[6] = EscapeCell(str(actor, "type"))
	r[7] = EscapeCell(str(actor, "id"))
	r[8] = EscapeCell(str(actor, "name"))
	r[9] = view(c.lists[0])
	r[10] = view(c.lists[1])
	r[11] = view(c.lists[2])
	r[12] = EscapeCell(str(v, "context", "location"))
	r[13] = EscapeCell(str(v, "context", "user_agent"))
	r[14] = EscapeCell(md)
	return c.w.Write(r)
}

// view returns b as a string without copying it: valid only while b is
// not changed.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// metadata returns event metadata as compact JSON, as stored but without
// encoding/json's HTML escapes (\u003c for <…), which a person reading the
// cell would trip over.
func (c *csvRows) metadata(m *fastjson.Value) string {
	o, _ := m.Object()
	plain := true
	o.Visit(func(_ []byte, v *fastjson.Value) {
		if v.Type() == fastjson.TypeString && strings.ContainsFunc(string(v.GetStringBytes()), func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' }) {
			plain = false
		}
	})
	if plain {
		// fastjson writes such a value as JSON: keys in stored order.
		c.md = m.MarshalTo(c.md[:0])
		return view(c.md)
	}
	// Quotes, backslashes or control characters: encoding/json writes
	// them as JSON does (fastjson would write Go's escapes).
	md := make(map[string]any, o.Len())
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch v.Type() {
		case fastjson.TypeString:
			md[string(k)] = string(v.GetStringBytes())
		default:
			md[string(k)] = json.RawMessage(v.MarshalTo(nil))
		}
	})
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(md)
	return strings.TrimSuffix(b.String(), "\n")
}

// take returns the rows appended so far and starts anew.
func (c *csvRows) take() ([]byte, error) {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return nil, err
	}
	out := bytes.Clone(c.buf.Bytes())
	c.buf.Reset()
	return out, nil
}

// ndjsonLine appends a stored event's line with its inclusion proof to
// the export's checkpoint: the stored JSON, and "proof" before its
// closing brace.
func ndjsonLine(b []byte, raw string, treeSize int64, hashes [][]byte) []byte {
	raw = strings.TrimRight(raw, " \n")
	b = append(b, raw[:len(raw)-1]...)
	b = appendProof(append(b, `,"proof":`...), treeSize, hashes)
	return append(b, '}', '\n')
}

// purgedLine appends the line of a purged event: id, index, its leaf hash
// and its proof (SPEC §6), and the purge evidence (JSON) when given.
func purgedLine(b []byte, ev *trail.Event, leaf []byte, treeSize int64, hashes [][]byte, evidence []byte) []byte {
	id, _ := json.Marshal(ev.ID)
	b = append(append(b, `{"id":`...), id...)
	b = strconv.AppendInt(append(b, `,"index":`...), ev.Index, 10)
	b = append(b, `,"purged":true,"leaf_hash":"`...)
	b = base64.StdEncoding.AppendEncode(b, leaf)
	b = appendProof(append(b, `","proof":`...), treeSize, hashes)
	if evidence != nil {
		b = append(append(b, `,"purge_evidence":`...), evidence...)
	}
	return append(b, '}', '\n')
}

func appendProof(b []byte, treeSize int64, hashes [][]byte) []byte {
	b = strconv.AppendInt(append(b, `{"tree_size":`...), treeSize, 10)
	b = append(b, `,"hashes":[`...)
	for i, h := range hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, h)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}
