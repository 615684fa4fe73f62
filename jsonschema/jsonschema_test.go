package jsonschema_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/jsonschema"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		schema trail.Schema
		path   string // "" for a valid schema
	}{
		{"OK", trail.Schema{Targets: []trail.SchemaTarget{{Type: "team", Metadata: json.RawMessage(`{"type":"object"}`)}},
			Metadata: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}`)}, ""},
		{"BooleanSchema", trail.Schema{Targets: []trail.SchemaTarget{{Type: "team"}}, Metadata: json.RawMessage(`true`)}, ""},
		{"NoTargets", trail.Schema{}, "/targets"},
		{"DuplicateTargetType", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}, {Type: "a"}}}, "/targets/1/type"},
		{"EmptyTargetType", trail.Schema{Targets: []trail.SchemaTarget{{Type: ""}}}, "/targets/0/type"},
		{"NotJSONSchema", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(`{"type":"nonsense"}`)}, "/metadata"},
		{"NotAnObject", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Metadata: json.RawMessage(`[1]`)}, "/metadata"},
		{"FileRef", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a"}}, Actor: &trail.SchemaActor{Metadata: json.RawMessage(`{"$ref":"file:///etc/passwd"}`)}}, "/actor/metadata"},
		{"HTTPRef", trail.Schema{Targets: []trail.SchemaTarget{{Type: "a", Metadata: json.RawMessage(`{"$ref":"https://example.com/s.json"}`)}}}, "/targets/0/metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := jsonschema.NewValidator(nil).Check(&tt.schema)
			ps := trail.ErrorProblems(err)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("problems %v", err)
				}
				return
			}
			if code := trail.ErrorCode(err); code != trail.EINVALIDSCHEMA {
				t.Fatalf("code %q, want %q", code, trail.EINVALIDSCHEMA)
			}
			if len(ps) == 0 || ps[0].Path != tt.path {
				t.Fatalf("problems %v, want %s", ps, tt.path)
			}
			if strings.Contains(ps[0].Message, "root:") {
				t.Fatalf("a file was read: %v", ps)
			}
		})
	}
}
