package jsonschema_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/jsonschema"
)

// nested returns a JSON Schema n objects and arrays deep, built with one
// keyword: allOf (2 levels a step: the object and its array), properties
// (2: the object and the properties object) or items (1).
func nested(keyword string, n int) string {
	var open, close string
	step := 2
	switch keyword {
	case "allOf":
		open, close = `{"allOf":[`, `]}`
	case "properties":
		open, close = `{"properties":{"a":`, `}}`
	case "items":
		open, close, step = `{"items":`, `}`, 1
	}
	steps := (n - 1) / step
	inner := `{}`
	if rest := n - 1 - steps*step; rest == 1 {
		inner = `{"not":{}}`
	}
	return strings.Repeat(open, steps) + inner + strings.Repeat(close, steps)
}

// TestCheck_TooComplex: schemas nested thousands deep or over 64 KiB are
// refused with schema_too_complex, naming the field and the limit,
// before anything is compiled (so at once: the bound is a guard, not a
// benchmark); depth 32 is allowed, 33 is not.
func TestCheck_TooComplex(t *testing.T) {
	t.Parallel()
	big := `{"type":"object","description":"` + strings.Repeat("x", 65<<10) + `"}`
	for _, c := range []struct {
		name   string
		schema trail.Schema
		path   string // "" when allowed
		limit  string
	}{
		{"AllOf4000", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a", Metadata: json.RawMessage(nested("allOf", 4000))}}}, "/targets/0/metadata", "32"},
		{"Properties4000", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(nested("properties", 4000))}, "/metadata", "32"},
		{"Items4000", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Actor: &trail.SchemaActor{Metadata: json.RawMessage(nested("items", 4000))}}, "/actor/metadata", "32"},
		{"65KiB", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(big)}, "/metadata", "65536"},
		{"65KiBTogether", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a", Metadata: json.RawMessage(big[:40<<10] + `"}`)},
			{Type: "b", Metadata: json.RawMessage(big[:30<<10] + `"}`)}}}, "/targets/1/metadata", "65536"},
		{"Depth32", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a", Metadata: json.RawMessage(nested("items", 32))}}}, "", ""},
		{"Depth32AllOf", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(nested("allOf", 32))}, "", ""},
		{"Depth33", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a", Metadata: json.RawMessage(nested("items", 33))}}}, "/targets/0/metadata", "32"},
		{"Depth33Properties", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(nested("properties", 33))}, "/metadata", "32"},
		{"BracketsInStrings", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(`{"description":"` + strings.Repeat(`{[\"`, 100) + `"}`)}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := jsonschema.NewValidator(nil).Check(&c.schema)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered in %s", d)
			}
			if c.path == "" {
				if err != nil {
					t.Fatalf("refused: %v %v", err, trail.ErrorProblems(err))
				}
				return
			}
			if code := trail.ErrorCode(err); code != trail.ESCHEMATOOCOMPLEX {
				t.Fatalf("code %q (%v), want %q", code, err, trail.ESCHEMATOOCOMPLEX)
			}
			if msg := trail.ErrorMessage(err); !strings.Contains(msg, c.limit) || !strings.Contains(msg, c.path) {
				t.Errorf("message %q names neither the limit %s nor the field %s", msg, c.limit, c.path)
			}
			if ps := trail.ErrorProblems(err); len(ps) == 0 || ps[0].Path != c.path {
				t.Errorf("problems %v, want %s first", ps, c.path)
			}
		})
	}
}
