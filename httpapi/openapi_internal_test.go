package httpapi

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// TestOpenAPI_MatchesRoutes fails when a route is missing from
// openapi.json, or the document describes a route that does not exist.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	routes := map[string]bool{}
	for _, rt := range NewServer().routeTable() {
		key := strings.ToLower(rt.method) + " " + rt.pattern
		routes[key] = true
		if _, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s is missing from openapi.json", rt.method, rt.pattern)
		}
	}
	var extra []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if !routes[method+" "+path] {
				extra = append(extra, method+" "+path)
			}
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("openapi.json describes routes that do not exist: %v", extra)
	}
}

// TestOpenAPI_ListsEveryPermission fails when a permissions enum of
// openapi.json differs from trail.AllPermissions.
func TestOpenAPI_ListsEveryPermission(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range trail.AllPermissions {
		want = append(want, string(p))
	}
	found := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if p, ok := v["permissions"].(map[string]any); ok {
				if items, ok := p["items"].(map[string]any); ok && items["enum"] != nil {
					found++
					var got []string
					for _, e := range items["enum"].([]any) {
						got = append(got, e.(string))
					}
					if strings.Join(got, ",") != strings.Join(want, ",") {
						t.Errorf("permissions enum %v, want %v", got, want)
					}
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if found == 0 {
		t.Fatal("openapi.json lists no permissions")
	}
}
