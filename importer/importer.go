// Package importer reads existing audit logs for trail import: a WorkOS
// audit-log CSV export, Trail's own NDJSON and CSV exports, and NDJSON
// lines of WorkOS-shaped events. Each record comes out as a WorkOS-shaped
// event object (action, version, occurred_at, actor, targets, context,
// metadata), which the importer validates as the API does, with the line
// it came from and a key from its source for durable de-duplication.
package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
)

// Format is a kind of file.
type Format string

const (
	// NDJSON is one JSON object a line: Trail's NDJSON export (stored
	// events), or WorkOS-shaped events, bare or as the API's request body
	// ({"organization_id":…,"event":{…}}).
	NDJSON Format = "ndjson"
	// TrailCSV is Trail's CSV export (docs/EXPORTS.md).
	TrailCSV Format = "trail-csv"
	// WorkOSCSV is a WorkOS audit-log CSV export: columns named action,
	// occurred_at, actor_id, actor_type, actor_name, actor_metadata,
	// context_location, context_user_agent, metadata and, for each
	// target N, target_id_N, target_type_N, target_name_N and
	// target_metadata_N; id and version when present. Columns are found
	// by name, in any order (docs/OPERATIONS.md says where the layout
	// comes from).
	WorkOSCSV Format = "workos-csv"
)

// Record is one record of a file.
type Record struct {
	// Line is the line of the file the record starts on (1-based).
	Line int
	// Key is the durable key of the event from its source ("trail:" or
	// "workos:" and its id there); empty when the source has no id, and
	// the event's content is its key.
	Key string
	// Event is the WorkOS-shaped event object.
	Event json.RawMessage
	// Skip, when not empty, says why the record is not an event to
	// import (an event purged in the source, Trail's own record of the
	// source log's purges and retention).
	Skip string
	// Err is why the record could not be read; the next one can be.
	Err error

	// raw is an NDJSON line not yet decoded (Decode).
	raw []byte
}

// Decode finishes reading a record that Next only cut from its file (an
// NDJSON line: parsing it is most of the reading's work, so that it is
// done by the goroutine that validates the record, not the one that
// reads the file in order). It does nothing to a record already read.
func (r *Record) Decode() {
	if r.raw != nil {
		ndjsonRecord(r, r.raw)
		r.raw = nil
	}
}

// Reader reads the records of one file.
type Reader struct {
	Format Format
	next   func() (*Record, error)
}

// Next returns the next record, or io.EOF after the last.
func (r *Reader) Next() (*Record, error) { return r.next() }

// MaxLine is the longest NDJSON line read (an event is at most
// trail.MaxEventBytes; a stored one with its proof is longer).
const MaxLine = 4 << 20

// Open reads a file of format (or detects it, when format is empty):
// NDJSON starts with "{"; a CSV's header names its kind.
func Open(r io.Reader, format Format) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		head, _ := br.Peek(4096)
		head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
		trimmed := bytes.TrimLeft(head, " \t\r\n")
		switch {
		case len(trimmed) == 0:
			return &Reader{Format: NDJSON, next: func() (*Record, error) { return nil, io.EOF }}, nil
		case trimmed[0] == '{':
			format = NDJSON
		default:
			line, _, _ := bytes.Cut(trimmed, []byte("\n"))
			h := string(line)
			switch {
			case strings.Contains(h, "received_at") && strings.Contains(h, "target_ids"):
				format = TrailCSV
			case strings.Contains(h, "actor_id") && strings.Contains(h, "occurred_at"):
				format = WorkOSCSV
			default:
				return nil, errors.New("not a file trail import reads: neither NDJSON (a JSON object a line) nor a CSV export of Trail or WorkOS (its header names occurred_at and actor_id); name the format with --format")
			}
		}
	}
	switch format {
	case NDJSON:
		return ndjsonReader(br), nil
	case TrailCSV, WorkOSCSV:
		return csvReader(br, format)
	}
	return nil, fmt.Errorf("format %q: want ndjson, trail-csv or workos-csv", format)
}

// inputFields are the fields of an event as the API takes it.
var inputFields = []string{"action", "version", "occurred_at", "actor", "targets", "context", "metadata"}

func ndjsonReader(br *bufio.Reader) *Reader {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	line := 0
	return &Reader{Format: NDJSON, next: func() (*Record, error) {
		for sc.Scan() {
			line++
			text := bytes.TrimSpace(sc.Bytes())
			if line == 1 {
				text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf"))
			}
			if len(text) == 0 {
				continue
			}
			return &Record{Line: line, raw: bytes.Clone(text)}, nil
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLine)
			}
			return nil, err
		}
		return nil, io.EOF
	}}
}

func ndjsonRecord(rec *Record, text []byte) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(text, &obj); err != nil || obj == nil {
		rec.Err = errors.New("not a JSON object")
		return
	}
	if ev, ok := obj["event"]; ok && len(ev) > 0 && ev[0] == '{' {
		// The API's request body.
		if err := json.Unmarshal(ev, &obj); err != nil {
			rec.Err = errors.New("event: not a JSON object")
			return
		}
	}
	id, _ := jsonStr(obj["id"])
	_, stored := obj["received_at"]
	if _, hasIndex := obj["index"]; stored && hasIndex {
		// A stored event of Trail's NDJSON export.
		rec.Key = prefixed("trail:", id)
		if _, ok := obj["action"]; !ok {
			rec.Skip = "purged in the source (no contents)"
			return
		}
		if a, _ := jsonStr(obj["action"]); trail.ReservedAction(a) {
			rec.Skip = "Trail's own record of the source log (" + a + ")"
			return
		}
	} else {
		rec.Key = prefixed("workos:", id)
	}
	// The API's fields, spliced: each value is valid JSON already
	// (json.Marshal would check and compact each again).
	ev := []byte{'{'}
	for _, f := range inputFields {
		if v, ok := obj[f]; ok {
			if len(ev) > 1 {
				ev = append(ev, ',')
			}
			ev = append(append(append(append(ev, '"'), f...), `":`...), v...)
		}
	}
	rec.Event = append(ev, '}')
}

func prefixed(prefix, id string) string {
	if id == "" {
		return ""
	}
	return prefix + id
}

func jsonStr(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

var workosTarget = regexp.MustCompile(`^target_(id|type|name|metadata)_(\d+)$`)

func csvReader(br *bufio.Reader, format Format) (*Reader, error) {
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	need := []string{"occurred_at", "action", "actor_id", "actor_type"}
	if format == TrailCSV {
		need = append(need, "id", "target_ids", "target_types")
	}
	for _, n := range need {
		if _, ok := col[n]; !ok {
			return nil, fmt.Errorf("CSV header: no %s column (a %s file has one)", n, format)
		}
	}
	// WorkOS's targets: the numbers of target_*_N columns, in order.
	var targetNs []int
	if format == WorkOSCSV {
		seen := map[int]bool{}
		for h := range col {
			if m := workosTarget.FindStringSubmatch(h); m != nil {
				n, _ := strconv.Atoi(m[2])
				if !seen[n] {
					seen[n] = true
					targetNs = append(targetNs, n)
				}
			}
		}
		sort.Ints(targetNs)
	}
	return &Reader{Format: format, next: func() (*Record, error) {
		row, err := cr.Read()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return &Record{Line: pe.StartLine, Err: pe.Err}, nil
			}
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		cell := func(name string) string {
			if i, ok := col[name]; ok && i < len(row) {
				if format == TrailCSV {
					return unguard(row[i])
				}
				return row[i]
			}
			return ""
		}
		if format == TrailCSV {
			return trailCSVRecord(line, cell), nil
		}
		return workosCSVRecord(line, cell, targetNs), nil
	}}, nil
}

// unguard undoes the export's guard against formula injection
// (export.EscapeCell, docs/EXPORTS.md): a cell that starts with a quote
// which EscapeCell would have added to the rest is that rest.
func unguard(s string) string {
	if rest, ok := strings.CutPrefix(s, "'"); ok && export.EscapeCell(rest) == s {
		return rest
	}
	return s
}

func trailCSVRecord(line int, cell func(string) string) *Record {
	rec := &Record{Line: line, Key: prefixed("trail:", cell("id"))}
	if trail.ReservedAction(cell("action")) {
		rec.Skip = "Trail's own record of the source log (" + cell("action") + ")"
		return rec
	}
	ids, types, names := split(cell("target_ids")), split(cell("target_types")), split(cell("target_names"))
	if len(ids) != len(types) || (len(names) > 0 && len(names) != len(ids)) {
		rec.Err = fmt.Errorf("targets: %d ids, %d types and %d names", len(ids), len(types), len(names))
		return rec
	}
	targets := []any{}
	for i := range ids {
		name := ""
		if len(names) > 0 {
			name = names[i]
		}
		targets = append(targets, party(ids[i], types[i], name, nil))
	}
	actor := party(cell("actor_id"), cell("actor_type"), cell("actor_name"), nil)
	return csvEvent(rec, cell, actor, cell("location"), cell("user_agent"), targets)
}

func workosCSVRecord(line int, cell func(string) string, targetNs []int) *Record {
	rec := &Record{Line: line, Key: prefixed("workos:", cell("id"))}
	actorMD, err := jsonCell("actor_metadata", cell("actor_metadata"))
	if err != nil {
		rec.Err = err
		return rec
	}
	targets := []any{}
	for _, n := range targetNs {
		s := strconv.Itoa(n)
		id, typ, name := cell("target_id_"+s), cell("target_type_"+s), cell("target_name_"+s)
		if id == "" && typ == "" && name == "" {
			continue // fewer targets than columns
		}
		md, err := jsonCell("target_metadata_"+s, cell("target_metadata_"+s))
		if err != nil {
			rec.Err = err
			return rec
		}
		targets = append(targets, party(id, typ, name, md))
	}
	actor := party(cell("actor_id"), cell("actor_type"), cell("actor_name"), actorMD)
	return csvEvent(rec, cell, actor, cell("context_location"), cell("context_user_agent"), targets)
}

// csvEvent completes rec with the event of a CSV row: its actor, context
// and targets as its format names them, and the columns both formats
// name alike (action, occurred_at, version, metadata).
func csvEvent(rec *Record, cell func(string) string, actor map[string]any, location, userAgent string, targets []any) *Record {
	ev := map[string]any{
		"action":      cell("action"),
		"occurred_at": cell("occurred_at"),
		"actor":       actor,
		"context":     map[string]any{"location": location, "user_agent": userAgent},
		"targets":     targets,
	}
	if v := cell("version"); v != "" {
		ev["version"] = json.Number(v)
	}
	md, err := jsonCell("metadata", cell("metadata"))
	if err != nil {
		rec.Err = err
		return rec
	}
	if md != nil {
		ev["metadata"] = md
	}
	rec.Event, rec.Err = json.Marshal(ev)
	return rec
}

// jsonCell reads a cell of JSON (an object of metadata), empty for none.
func jsonCell(name, s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "{}" || s == "null" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("%s: not JSON", name)
	}
	return json.RawMessage(s), nil
}

func party(id, typ, name string, md json.RawMessage) map[string]any {
	p := map[string]any{"id": id, "type": typ}
	if name != "" {
		p["name"] = name
	}
	if md != nil {
		p["metadata"] = md
	}
	return p
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ";")
	for i, p := range parts {
		parts[i] = unguard(p)
	}
	return parts
}
