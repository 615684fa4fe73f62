package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// do sends a request; body may be a string (sent as is) or a value
// (encoded). hdr is name, value pairs; "Host" sets the request's Host.
func (ts *testServer) do(t *testing.T, method, path, key string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, ts.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1] // Go sends req.Host, not a Host header
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("%s %s: no X-Request-ID", method, path)
	}
	text := resp.StatusCode == 200 && (strings.HasPrefix(path, "/metrics") || strings.HasPrefix(path, "/audit_logs/checkpoint") || strings.HasPrefix(path, "/audit_logs/log_key"))
	if len(b) > 0 && resp.Header.Get("Content-Type") != "application/json" && !text {
		t.Errorf("%s %s: Content-Type %q", method, path, resp.Header.Get("Content-Type"))
	}
	return response{resp.StatusCode, resp.Header, b}
}

// count returns how many events an organization's log holds.
func (ts *testServer) count(t *testing.T, orgID string) int {
	t.Helper()
	n := 0
	f := trail.EventFilter{OrganizationID: orgID, Limit: 1000}
	for {
		page, err := ts.Events.FindEvents(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Events)
		if !page.HasMore {
			return n
		}
		last := page.Events[len(page.Events)-1].Index
		f.After = &last
	}
}

func (ts *testServer) mustOrg(t *testing.T, id string) string {
	t.Helper()
	if err := ts.Orgs.CreateOrganization(context.Background(), &trail.Organization{ID: id, Name: "Org " + id}); err != nil {
		t.Fatal(err)
	}
	return id
}

// mustKey creates a key directly in the database and returns its secret.
func (ts *testServer) mustKey(t *testing.T, orgID string, perms ...trail.Permission) string {
	t.Helper()
	k := &trail.APIKey{Name: "test " + orgID, OrganizationID: orgID, Permissions: perms}
	if err := ts.Keys.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

// validEvent returns a fresh, valid WorkOS-shaped event as a JSON map.
func validEvent() map[string]any {
	return map[string]any{
		"action":      "alert_route.updated",
		"occurred_at": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano),
		"actor":       map[string]any{"id": "user_01", "type": "user", "name": "Ada Lovelace", "metadata": map[string]any{"role": "owner"}},
		"targets":     []any{map[string]any{"id": "route_1", "type": "alert_route", "name": "Critical"}},
		"context":     map[string]any{"location": "203.0.113.9", "user_agent": "Mozilla/5.0"},
		"metadata":    map[string]any{"priority": "P1", "count": 3, "enabled": true},
	}
}

// problemPaths returns the instancePaths of an error body.
func problemPaths(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	errs, _ := body["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		if p, ok := m["instancePath"].(string); ok {
			out = append(out, p)
		}
	}
	return out
}
