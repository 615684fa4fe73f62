package httpapi_test

import (
	"strings"
	"testing"
	"time"
)

// deepSchema is a JSON Schema of steps nested keywords around {}: allOf
// and properties add 2 levels of objects and arrays a step, items 1.
func deepSchema(keyword string, steps int) string {
	open, close := `{"items":`, `}`
	switch keyword {
	case "allOf":
		open, close = `{"allOf":[`, `]}`
	case "properties":
		open, close = `{"properties":{"a":`, `}}`
	}
	return strings.Repeat(open, steps) + `{}` + strings.Repeat(close, steps)
}

// TestSchemas_TooComplex: POST …/schemas refuses a schema nested
// thousands deep, or over 64 KiB, with a 400 schema_too_complex naming
// the limit and the field, at once (the bound is a guard against the
// minutes such a schema took to compile); depth 32 is allowed, 33 not.
func TestSchemas_TooComplex(t *testing.T) {
	t.Parallel()
	ts := newServerOn(t, "sqlite")
	for _, c := range []struct {
		name   string
		body   string
		status int
		field  string
		limit  string
	}{
		{"AllOf4000", `{"targets":[{"type":"a","metadata":` + deepSchema("allOf", 2000) + `}]}`, 400, "/targets/0/metadata", "32"},
		{"Properties4000", `{"targets":[{"type":"a"}],"metadata":` + deepSchema("properties", 2000) + `}`, 400, "/metadata", "32"},
		{"Items4000", `{"targets":[{"type":"a"}],"actor":{"metadata":` + deepSchema("items", 4000) + `}}`, 400, "/actor/metadata", "32"},
		{"65KiB", `{"targets":[{"type":"a"}],"metadata":{"description":"` + strings.Repeat("x", 65<<10) + `"}}`, 400, "/metadata", "65536"},
		{"Depth32", `{"targets":[{"type":"a","metadata":` + deepSchema("items", 31) + `}]}`, 201, "", ""},
		{"Depth33", `{"targets":[{"type":"a","metadata":` + deepSchema("items", 32) + `}]}`, 400, "/targets/0/metadata", "32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := ts.do(t, "POST", "/audit_logs/actions/deep."+strings.ToLower(c.name)+"/schemas", adminSecret, c.body)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered in %s", d)
			}
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.Status, c.status, r.Body)
			}
			if c.status != 400 {
				return
			}
			b := r.JSON(t)
			msg, _ := b["message"].(string)
			if b["code"] != "schema_too_complex" || !strings.Contains(msg, c.limit) || !strings.Contains(msg, c.field) {
				t.Errorf("body %.300s: want code schema_too_complex and a message naming %s and %s", r.Body, c.limit, c.field)
			}
			if paths := problemPaths(t, b); len(paths) == 0 || paths[0] != c.field {
				t.Errorf("problems %v, want %s", paths, c.field)
			}
		})
	}
}
