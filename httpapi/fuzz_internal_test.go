package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeEvent feeds arbitrary bytes to the event decoder and validator.
// They must never panic; every problem must be a JSON pointer; and an
// event they accept must survive a round trip through its stored JSON.
func FuzzDecodeEvent(f *testing.F) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Add([]byte(`{"action":"user.signed_in","occurred_at":"2026-11-27T11:59:00.123456789Z","actor":{"id":"u","type":"user","name":""},"targets":[{"id":"t","type":"team","name":""}],"context":{"location":"1.2.3.4","user_agent":""}}`))
	f.Add([]byte(`{"action":"a","occurred_at":"2026-11-27T11:59:00Z","actor":{"id":"u","type":"user"},"targets":null,"context":{"location":"x"}}`))
	f.Add([]byte(`{"action":"a.b","version":2,"occurred_at":"2026-11-27T11:59:00+02:00","actor":{"id":"u","type":"user","metadata":{"k":1e308,"b":true}},"targets":[{"id":"t","type":"x","metadata":{"s":"v"}}],"context":{"location":"Paris"},"metadata":{"n":-0.5}}`))
	f.Add([]byte(`{"metadata":{"a/b~c":null,"":[],"x":{}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"occurred_at":"2026-11-27T11:59:00.1234567890Z","version":1.0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeObject(data)
		if err != nil {
			return
		}
		in, ps := decodeEvent(m)
		in.Normalize()
		ps = mergeProblems(ps, in.Validate(now, 365))
		for _, p := range ps {
			if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
				t.Fatalf("problem path %q is not a JSON pointer", p.Path)
			}
			if p.Message == "" {
				t.Fatalf("problem at %q has no message", p.Path)
			}
		}
		if len(ps) > 0 {
			return
		}
		ev := in.Stored("01ARZ3NDEKTSV4RRFFQ69G5FAV", "org_x", 0, now)
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		m2, err := decodeObject(b)
		if err != nil {
			t.Fatalf("stored JSON does not decode: %v", err)
		}
		in2, ps2 := decodeEvent(m2)
		in2.Normalize()
		if ps2 = mergeProblems(ps2, in2.Validate(now, 365)); len(ps2) > 0 {
			t.Fatalf("stored form of an accepted event is rejected: %v\n%s", ps2, b)
		}
		if in2.DedupeKey("org_x") != in.DedupeKey("org_x") {
			t.Fatalf("round trip changed the event:\n%s", b)
		}
	})
}
