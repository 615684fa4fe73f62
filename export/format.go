package export

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/trail-audit/trail"
)

// Columns are the CSV columns, in order (SPEC §8).
var Columns = []string{"id", "index", "occurred_at", "received_at", "action", "version", "actor_type",
	"actor_id", "actor_name", "target_types", "target_ids", "target_names", "location", "user_agent", "metadata"}

// EscapeCell guards a CSV cell against formula injection: a cell that
// starts with =, +, -, @, a tab or a carriage return gets a leading '
// (OWASP's advice), so that a spreadsheet shows it as text.
func EscapeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// party is an actor or a target as a CSV row needs it.
type party struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Name string `json:"name"`
}

// csvEvent is what a CSV row needs of a stored event: the metadata stays
// JSON.
type csvEvent struct {
	ID         string  `json:"id"`
	Index      int64   `json:"index"`
	Action     string  `json:"action"`
	Version    int     `json:"version"`
	OccurredAt string  `json:"occurred_at"`
	ReceivedAt string  `json:"received_at"`
	Actor      party   `json:"actor"`
	Targets    []party `json:"targets"`
	Context    struct {
		Location  string `json:"location"`
		UserAgent string `json:"user_agent"`
	} `json:"context"`
	Metadata json.RawMessage `json:"metadata"`
}

// csvRows turns stored events into CSV rows, with RFC 4180 quoting
// (encoding/csv) and every cell escaped.
type csvRows struct {
	buf    bytes.Buffer
	w      *csv.Writer
	record []string
	ev     csvEvent
	types  []string
	ids    []string
	names  []string
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
func (c *csvRows) appendEvent(raw []byte) error {
	c.ev = csvEvent{}
	if err := json.Unmarshal(raw, &c.ev); err != nil {
		return fmt.Errorf("decode stored event: %w", err)
	}
	ev := &c.ev
	c.types, c.ids, c.names = c.types[:0], c.ids[:0], c.names[:0]
	for _, t := range ev.Targets {
		c.types, c.ids, c.names = append(c.types, t.Type), append(c.ids, t.ID), append(c.names, t.Name)
	}
	md := ""
	if len(ev.Metadata) > 0 && string(ev.Metadata) != "null" {
		md = metadataJSON(ev.Metadata)
	}
	r := c.record
	r[0] = ev.ID
	r[1] = strconv.FormatInt(ev.Index, 10)
	r[2] = ev.OccurredAt
	r[3] = ev.ReceivedAt
	r[4] = EscapeCell(ev.Action)
	r[5] = strconv.Itoa(ev.Version)
	r[6] = EscapeCell(ev.Actor.Type)
	r[7] = EscapeCell(ev.Actor.ID)
	r[8] = EscapeCell(ev.Actor.Name)
	r[9] = EscapeCell(strings.Join(c.types, ";"))
	r[10] = EscapeCell(strings.Join(c.ids, ";"))
	r[11] = EscapeCell(strings.Join(c.names, ";"))
	r[12] = EscapeCell(ev.Context.Location)
	r[13] = EscapeCell(ev.Context.UserAgent)
	r[14] = EscapeCell(md)
	return c.w.Write(r)
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

// metadataJSON returns stored metadata as JSON for a person to read: the
// stored form escapes <, > and & as \u003c… (encoding/json's HTML
// safety), which is undone by re-encoding without it.
func metadataJSON(raw json.RawMessage) string {
	if !bytes.Contains(raw, []byte(`\u00`)) {
		return string(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var md map[string]any
	if err := dec.Decode(&md); err != nil {
		return string(raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(md); err != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ndjsonLine appends a stored event's line with its inclusion proof to
// the export's checkpoint: the stored JSON, and "proof" before its
// closing brace.
func ndjsonLine(b []byte, raw []byte, treeSize int64, hashes [][]byte) []byte {
	raw = bytes.TrimRight(raw, " \n")
	b = append(b, raw[:len(raw)-1]...)
	b = appendProof(append(b, `,"proof":`...), treeSize, hashes)
	return append(b, '}', '\n')
}

// purgedLine appends the line of a purged event: id, index, its leaf hash
// and its proof (SPEC §6).
func purgedLine(b []byte, ev *trail.Event, leaf []byte, treeSize int64, hashes [][]byte) []byte {
	id, _ := json.Marshal(ev.ID)
	b = append(append(b, `{"id":`...), id...)
	b = strconv.AppendInt(append(b, `,"index":`...), ev.Index, 10)
	b = append(b, `,"purged":true,"leaf_hash":"`...)
	b = base64.StdEncoding.AppendEncode(b, leaf)
	b = appendProof(append(b, `","proof":`...), treeSize, hashes)
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
