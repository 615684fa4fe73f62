package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// decodeObject decodes one JSON object, keeping numbers as json.Number.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected a JSON object")
	}
	return m, nil
}

// decodeEvent turns one decoded event object into an EventInput and the
// problems of its JSON types. Rules beyond types are for Validate.
func decodeEvent(m map[string]any) (*trail.EventInput, []trail.Problem) {
	d := &eventDecoder{}
	in := &trail.EventInput{}
	in.Action = d.str(m, "action", "/action", true)
	if v, ok := m["version"]; ok && v != nil {
		n, isNum := v.(json.Number)
		i, err := strconv.ParseInt(string(n), 10, 32)
		if !isNum || err != nil || i < 1 {
			d.add("/version", "must be an integer of at least 1")
		} else {
			in.Version = int(i)
		}
	}
	if s := d.str(m, "occurred_at", "/occurred_at", true); s != "" {
		t, err := parseTimestamp(s)
		if err != nil {
			d.add("/occurred_at", "must be an RFC 3339 date-time with at most 9 fractional digits")
		} else {
			in.OccurredAt = t
		}
	}
	if a := d.obj(m, "actor", "/actor", true); a != nil {
		in.Actor.ID = d.str(a, "id", "/actor/id", true)
		in.Actor.Type = d.str(a, "type", "/actor/type", true)
		in.Actor.Name = d.str(a, "name", "/actor/name", false)
		in.Actor.Metadata = d.metadata(a, "/actor/metadata")
	}
	switch ts := m["targets"].(type) {
	case []any:
		in.Targets = make([]trail.Target, 0, len(ts))
		for i, tv := range ts {
			p := "/targets/" + strconv.Itoa(i)
			t, ok := tv.(map[string]any)
			if !ok {
				d.add(p, "must be an object")
				in.Targets = append(in.Targets, trail.Target{})
				continue
			}
			in.Targets = append(in.Targets, trail.Target{
				ID:       d.str(t, "id", p+"/id", true),
				Type:     d.str(t, "type", p+"/type", true),
				Name:     d.str(t, "name", p+"/name", false),
				Metadata: d.metadata(t, p+"/metadata"),
			})
		}
	default:
		d.add("/targets", fmt.Sprintf("must be an array of 1 to %d targets", trail.MaxTargets))
	}
	if c := d.obj(m, "context", "/context", true); c != nil {
		in.Context.Location = d.str(c, "location", "/context/location", true)
		in.Context.UserAgent = d.str(c, "user_agent", "/context/user_agent", false)
	}
	in.Metadata = d.metadata(m, "/metadata")
	return in, d.problems
}

type eventDecoder struct {
	problems []trail.Problem
}

func (d *eventDecoder) add(path, msg string) {
	d.problems = append(d.problems, trail.Problem{Path: path, Message: msg})
}

// str reads a string field. A missing optional field, null or "" is "".
func (d *eventDecoder) str(m map[string]any, key, path string, required bool) string {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			d.add(path, "must be present")
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.add(path, "must be a string")
		return ""
	}
	if required && s == "" {
		d.add(path, "must not be empty")
	}
	return s
}

func (d *eventDecoder) obj(m map[string]any, key, path string, required bool) map[string]any {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			d.add(path, "must be present")
		}
		return nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		d.add(path, "must be an object")
		return nil
	}
	return o
}

func (d *eventDecoder) metadata(m map[string]any, path string) trail.Metadata {
	o := d.obj(m, "metadata", path, false)
	if o == nil {
		return nil
	}
	md := make(trail.Metadata, len(o))
	for k, v := range o {
		switch v := v.(type) {
		case string, bool:
			md[k] = v
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(f, 0) {
				d.add(path+"/"+trail.EscapePointer(k), "must be a finite number")
				continue
			}
			md[k] = v
		case nil:
			d.add(path+"/"+trail.EscapePointer(k), "must not be null")
		default:
			d.add(path+"/"+trail.EscapePointer(k), "must be a string, a number or a boolean (no objects or arrays)")
		}
	}
	return md
}

// parseTimestamp parses RFC 3339 with 0 to 9 fractional digits.
func parseTimestamp(s string) (time.Time, error) {
	// Go accepts more than 9 fractional digits and lower-case letters;
	// SPEC §3 does not.
	if i := strings.IndexByte(s, '.'); i >= 0 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n := j - i - 1; n == 0 || n > 9 {
			return time.Time{}, fmt.Errorf("bad fractional seconds")
		}
	}
	if len(s) < 20 || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("not RFC 3339")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// mergeProblems appends the rule problems whose path has no type problem.
func mergeProblems(typeProblems, ruleProblems []trail.Problem) []trail.Problem {
	seen := make(map[string]bool, len(typeProblems))
	for _, p := range typeProblems {
		seen[p.Path] = true
	}
	out := typeProblems
next:
	for _, p := range ruleProblems {
		for q := p.Path; q != ""; q = q[:max(strings.LastIndexByte(q, '/'), 0)] {
			if seen[q] {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}
