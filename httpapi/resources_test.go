package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/jsonschema"
)

func TestSchemas(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_schemas")
		schema := map[string]any{
			"targets": []any{map[string]any{"type": "alert_route", "metadata": map[string]any{"type": "object", "properties": map[string]any{"tier": map[string]any{"type": "integer"}}}}},
			"actor":   map[string]any{"metadata": map[string]any{"type": "object", "required": []any{"role"}}},
			"metadata": map[string]any{"type": "object", "properties": map[string]any{
				"priority": map[string]any{"type": "string", "enum": []any{"P1", "P2"}},
				"count":    map[string]any{"type": "integer", "maximum": 10},
			}},
		}
		r := ts.do(t, "POST", "/audit_logs/actions/alert_route.updated/schemas", adminSecret, schema)
		if r.Status != 201 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		if b := r.JSON(t); b["object"] != "audit_log_schema" || b["version"] != float64(1) || b["created_at"] == nil {
			t.Fatalf("body %s", r.Body)
		}
		post := func(ev map[string]any) response {
			return ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
		}
		t.Run("ValidEventAccepted", func(t *testing.T) {
			if r := post(validEvent()); r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		})
		for _, tt := range []struct {
			name   string
			mutate func(map[string]any)
			path   string
		}{
			{"TargetType", func(ev map[string]any) { ev["targets"] = []any{map[string]any{"id": "x", "type": "team"}} }, "/targets/0/type"},
			{"TargetMetadata", func(ev map[string]any) {
				ev["targets"] = []any{map[string]any{"id": "x", "type": "alert_route", "metadata": map[string]any{"tier": "gold"}}}
			}, "/targets/0/metadata/tier"},
			{"ActorMetadataRequired", func(ev map[string]any) { delete(ev["actor"].(map[string]any), "metadata") }, "/actor/metadata"},
			{"MetadataEnum", func(ev map[string]any) { ev["metadata"] = map[string]any{"priority": "P9"} }, "/metadata/priority"},
			{"MetadataMaximum", func(ev map[string]any) { ev["metadata"] = map[string]any{"count": 11} }, "/metadata/count"},
			{"UnknownVersion", func(ev map[string]any) { ev["version"] = 2 }, "/version"},
		} {
			t.Run("Err"+tt.name, func(t *testing.T) {
				before := ts.count(t, org)
				ev := validEvent()
				tt.mutate(ev)
				r := post(ev)
				if r.Status != 400 || r.JSON(t)["code"] != trail.EINVALIDEVENT || !slices.Contains(problemPaths(t, r.JSON(t)), tt.path) {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				if ts.count(t, org) != before {
					t.Fatal("stored")
				}
			})
		}
		t.Run("VersionsAreImmutable", func(t *testing.T) {
			v2 := map[string]any{"targets": []any{map[string]any{"type": "team"}}}
			r := ts.do(t, "POST", "/audit_logs/actions/alert_route.updated/schemas", adminSecret, v2)
			if r.Status != 201 || r.JSON(t)["version"] != float64(2) {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			// No version: validated against version 1, which does not allow team.
			ev := validEvent()
			ev["targets"] = []any{map[string]any{"id": "x", "type": "team"}}
			if r := post(ev); r.Status != 400 {
				t.Fatalf("without version: %d", r.Status)
			}
			ev["version"] = 2
			if r := post(ev); r.Status != 200 {
				t.Fatalf("version 2: %d %s", r.Status, r.Body)
			}
		})
		t.Run("IdempotencyKeyReplays", func(t *testing.T) {
			body := map[string]any{"targets": []any{map[string]any{"type": "retry"}}}
			a := ts.do(t, "POST", "/audit_logs/actions/retry.me/schemas", adminSecret, body, "Idempotency-Key", "k-1")
			b := ts.do(t, "POST", "/audit_logs/actions/retry.me/schemas", adminSecret, body, "Idempotency-Key", "k-1")
			if a.Status != 201 || b.Status != 201 || string(a.Body) != string(b.Body) || b.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry: %d %s / %d %s", a.Status, a.Body, b.Status, b.Body)
			}
			c := ts.do(t, "POST", "/audit_logs/actions/retry.me/schemas", adminSecret, body, "Idempotency-Key", "k-2")
			if c.JSON(t)["version"] != float64(2) {
				t.Fatalf("another key is another request: %s", c.Body)
			}
			list := ts.do(t, "GET", "/audit_logs/actions/retry.me/schemas", adminSecret, nil).JSON(t)
			if n := len(list["data"].([]any)); n != 2 {
				t.Fatalf("%d versions", n)
			}
		})
		schemaErrorsAndLists(t, ts, org, schema)

		t.Run("RecordedInSystemLog", func(t *testing.T) {
			b := ts.do(t, "GET", "/audit_logs/events?organization_id=org_system&actions=audit_log_schema.created&limit=100", adminSecret, nil).JSON(t)
			evs := b["data"].([]any)
			if len(evs) != 7 {
				t.Fatalf("%d schema events", len(evs))
			}
			ev := evs[len(evs)-1].(map[string]any)
			actor := ev["actor"].(map[string]any)
			if actor["type"] != "api_key" || actor["name"] != "admin" || ev["context"].(map[string]any)["location"] != "127.0.0.1" ||
				ev["context"].(map[string]any)["user_agent"] != "Go-http-client/1.1" {
				t.Fatalf("own event %v", ev)
			}
		})
	})
}

// schemaErrorsAndLists: invalid schemas are refused; schemas and their versions are listed.
func schemaErrorsAndLists(t *testing.T, ts *testServer, org string, schema map[string]any) {
	t.Run("ErrInvalidSchema", func(t *testing.T) {
		for name, body := range map[string]map[string]any{
			"/targets/0/metadata": {"targets": []any{map[string]any{"type": "x", "metadata": map[string]any{"type": "no-such-type"}}}},
			"/metadata":           {"targets": []any{map[string]any{"type": "x"}}, "metadata": map[string]any{"$ref": "file:///etc/passwd"}},
			"/targets":            {"targets": []any{}},
		} {
			r := ts.do(t, "POST", "/audit_logs/actions/bad.schema/schemas", adminSecret, body)
			if r.Status != 400 || r.JSON(t)["code"] != trail.EINVALIDSCHEMA || !slices.Contains(problemPaths(t, r.JSON(t)), name) {
				t.Fatalf("%s: status %d: %s", name, r.Status, r.Body)
			}
		}
		if r := ts.do(t, "POST", "/audit_logs/actions/bad.schema/schemas", adminSecret, map[string]any{}); r.Status != 422 {
			t.Fatalf("no targets: %d", r.Status)
		}
		if r := ts.do(t, "POST", "/audit_logs/actions/bad%20name/schemas", adminSecret, schema); r.Status != 400 {
			t.Fatalf("bad action: %d", r.Status)
		}
		if r := ts.do(t, "GET", "/audit_logs/actions/bad.schema/schemas", adminSecret, nil); r.Status != 404 {
			t.Fatalf("nothing was created: %d", r.Status)
		}
	})
	t.Run("Lists", func(t *testing.T) {
		for _, a := range []string{"a.one", "b.two", "c.three"} {
			ts.do(t, "POST", "/audit_logs/actions/"+a+"/schemas", adminSecret, map[string]any{"targets": []any{map[string]any{"type": "x"}}})
		}
		var names []string
		path := "/audit_logs/actions?limit=2&order=asc"
		for {
			b := ts.do(t, "GET", path, adminSecret, nil).JSON(t)
			for _, a := range b["data"].([]any) {
				m := a.(map[string]any)
				if m["object"] != "audit_log_action" || m["schema"].(map[string]any)["object"] != "audit_log_schema" {
					t.Fatalf("action %v", m)
				}
				names = append(names, m["name"].(string))
			}
			after, _ := b["list_metadata"].(map[string]any)["after"].(string)
			if after == "" {
				break
			}
			path = "/audit_logs/actions?limit=2&order=asc&after=" + after
		}
		if !slices.Equal(names, []string{"a.one", "alert_route.updated", "b.two", "c.three", "retry.me"}) {
			t.Fatalf("names %v", names)
		}
		b := ts.do(t, "GET", "/audit_logs/actions/alert_route.updated/schemas", adminSecret, nil).JSON(t)
		data := b["data"].([]any)
		if len(data) != 2 || data[0].(map[string]any)["version"] != float64(2) {
			t.Fatalf("versions %v", data)
		}
	})
}

func TestRequireSchemas(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t, func(s *httpapi.Server, v *jsonschema.Validator) { v.RequireSchemas = true })
		org := ts.mustOrg(t, "org_strict")
		r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()})
		if r.Status != 400 || !slices.Contains(problemPaths(t, r.JSON(t)), "/action") {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		ts.do(t, "POST", "/audit_logs/actions/alert_route.updated/schemas", adminSecret, map[string]any{"targets": []any{map[string]any{"type": "alert_route"}}})
		if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()}); r.Status != 200 {
			t.Fatalf("with a schema: %d %s", r.Status, r.Body)
		}
	})
}

func TestOrganizationsAndKeys(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		testOrganizationsAPI(t, ts)

		t.Run("APIKeys", func(t *testing.T) {
			org := ts.mustOrg(t, "org_keys")
			r := ts.do(t, "POST", "/api_keys", adminSecret, map[string]any{"name": "ingest", "organization_id": org, "permissions": []string{"events:write", "keys"}})
			k := r.JSON(t)
			if r.Status != 201 || k["object"] != "api_key" || !strings.HasPrefix(k["secret"].(string), "sk_") || k["organization_id"] != org {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			secret, id := k["secret"].(string), k["id"].(string)
			if b := ts.do(t, "GET", "/api_keys/"+id, adminSecret, nil).JSON(t); b["secret"] != nil {
				t.Fatalf("secret returned again: %v", b)
			}
			for _, body := range []map[string]any{
				{"name": "x", "permissions": []string{"events:read"}}, // an org key cannot grant what it lacks
				{"name": "x", "permissions": []string{"admin"}},       // nor admin
			} {
				if r := ts.do(t, "POST", "/api_keys", secret, body); r.Status != 403 {
					t.Fatalf("escalation %v: %d %s", body, r.Status, r.Body)
				}
			}
			r = ts.do(t, "POST", "/api_keys", secret, map[string]any{"name": "child", "permissions": []string{"events:write"}})
			if r.Status != 201 || r.JSON(t)["organization_id"] != org {
				t.Fatalf("an org key creates keys of its own organization only: %d %s", r.Status, r.Body)
			}
			for _, body := range []map[string]any{{"permissions": []string{"events:read"}}, {"name": "x"}, {"name": "x", "permissions": []string{"root"}}, {"name": "x", "permissions": []string{"admin"}, "secret": "short"}} {
				if r := ts.do(t, "POST", "/api_keys", adminSecret, body); r.Status != 422 {
					t.Fatalf("%v: %d", body, r.Status)
				}
			}
			if r := ts.do(t, "DELETE", "/api_keys/"+id, adminSecret, nil); r.Status != 200 || r.JSON(t)["revoked_at"] == nil {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
			if r := ts.do(t, "GET", "/api_keys/me", secret, nil); r.Status != 401 {
				t.Fatalf("a revoked key must fail at once: %d", r.Status)
			}
			b := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&actions=api_key.*", adminSecret, nil).JSON(t)
			if n := len(b["data"].([]any)); n != 3 { // created, created (child), revoked
				t.Fatalf("%d key events", n)
			}
		})
		t.Run("ErrEscalation", func(t *testing.T) {
			limited := &trail.APIKey{Name: "keys-limited", Permissions: []trail.Permission{trail.PermKeys, trail.PermEventsRead}, RateLimit: new(int)}
			*limited.RateLimit = 100
			if err := ts.Keys.CreateAPIKey(context.Background(), limited); err != nil {
				t.Fatal(err)
			}
			for _, rl := range []int{0, 101} {
				r := ts.do(t, "POST", "/api_keys", limited.Secret, map[string]any{"name": "x", "permissions": []string{"events:read"}, "rate_limit": rl})
				if r.Status != 403 {
					t.Fatalf("rate_limit %d: %d %s", rl, r.Status, r.Body)
				}
			}
			r := ts.do(t, "POST", "/api_keys", limited.Secret, map[string]any{"name": "x", "permissions": []string{"events:read"}})
			if r.Status != 201 || r.JSON(t)["rate_limit"] != float64(100) {
				t.Fatalf("a child inherits its creator's lower budget: %d %s", r.Status, r.Body)
			}
			admin, _ := ts.Keys.Authenticate(context.Background(), adminSecret)
			if r := ts.do(t, "DELETE", "/api_keys/"+admin.ID, limited.Secret, nil); r.Status != 403 {
				t.Fatalf("a keys-only key revoked the admin key: %d %s", r.Status, r.Body)
			}
		})
		t.Run("RateLimit", func(t *testing.T) {
			limited := &trail.APIKey{Name: "slow", Permissions: []trail.Permission{trail.PermEventsRead}, RateLimit: new(int)}
			*limited.RateLimit = 2
			if err := ts.Keys.CreateAPIKey(context.Background(), limited); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if r := ts.do(t, "GET", "/audit_logs/actions", limited.Secret, nil); r.Status != 200 {
					t.Fatalf("request %d: %d", i, r.Status)
				}
			}
			r := ts.do(t, "GET", "/audit_logs/actions", limited.Secret, nil)
			if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.JSON(t)["code"] != "rate_limit_exceeded" {
				t.Fatalf("status %d Retry-After %q: %s", r.Status, r.Header.Get("Retry-After"), r.Body)
			}
		})
	})
}

// testOrganizationsAPI: organizations are created, found, listed and updated through the API.
func testOrganizationsAPI(t *testing.T, ts *testServer) {
	t.Run("Organizations", func(t *testing.T) {
		r := ts.do(t, "POST", "/organizations", adminSecret, map[string]any{"name": "Initech"})
		org := r.JSON(t)
		if r.Status != 201 || org["object"] != "organization" || !strings.HasPrefix(org["id"].(string), "org_") {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		id := org["id"].(string)
		if r := ts.do(t, "GET", "/organizations/"+id, adminSecret, nil); r.Status != 200 || r.JSON(t)["name"] != "Initech" {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		x := ts.do(t, "POST", "/organizations", adminSecret, map[string]any{"name": "Retried"}, "Idempotency-Key", "org-1")
		y := ts.do(t, "POST", "/organizations", adminSecret, map[string]any{"name": "Retried"}, "Idempotency-Key", "org-1")
		if x.Status != 201 || x.JSON(t)["id"] != y.JSON(t)["id"] {
			t.Fatalf("a retried create made a second organization: %s %s", x.Body, y.Body)
		}
		if r := ts.do(t, "POST", "/organizations", adminSecret, map[string]any{}); r.Status != 422 {
			t.Fatalf("no name: %d", r.Status)
		}
		if r := ts.do(t, "POST", "/organizations", adminSecret, map[string]any{"id": id, "name": "again"}); r.Status != 409 {
			t.Fatalf("duplicate id: %d", r.Status)
		}
		if r := ts.do(t, "GET", "/organizations/"+id+"/audit_logs_retention", adminSecret, nil); r.JSON(t)["retention_period_in_days"] != float64(365) {
			t.Fatalf("retention %s", r.Body)
		}
		for _, days := range []any{0, 3651, "30", nil} {
			if r := ts.do(t, "PUT", "/organizations/"+id+"/audit_logs_retention", adminSecret, map[string]any{"retention_period_in_days": days}); r.Status != 422 {
				t.Fatalf("%v days: %d", days, r.Status)
			}
		}
		if r := ts.do(t, "PUT", "/organizations/"+id+"/audit_logs_retention", adminSecret, map[string]any{"retention_period_in_days": 30}); r.Status != 200 || r.JSON(t)["retention_period_in_days"] != float64(30) {
			t.Fatalf("put: %d %s", r.Status, r.Body)
		}
		b := ts.do(t, "GET", "/audit_logs/events?organization_id="+id, adminSecret, nil).JSON(t)
		var actions []string
		for _, e := range b["data"].([]any) {
			actions = append(actions, e.(map[string]any)["action"].(string))
		}
		if !slices.Equal(actions, []string{trail.ActionRetentionUpdated, trail.ActionOrganizationCreated}) {
			t.Fatalf("own events %v", actions)
		}
		list := ts.do(t, "GET", "/organizations?limit=100", adminSecret, nil).JSON(t)
		if len(list["data"].([]any)) != 3 { // org_system, Initech and Retried
			t.Fatalf("list %v", list)
		}
	})
}

// TestTenantIsolation: a key scoped to organization A, holding every
// permission, gets 404 for every organization-B resource on every
// endpoint; a key without the permission gets 403.
func TestTenantIsolation(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		orgA, orgB := ts.mustOrg(t, "org_a"), ts.mustOrg(t, "org_b")
		keyA := ts.mustKey(t, orgA, trail.PermAdmin)
		res, err := ts.Events.AppendEvents(context.Background(), orgB, []*trail.EventInput{{Action: "x.y", Actor: trail.Actor{ID: "u", Type: "user"},
			Targets: []trail.Target{{ID: "t", Type: "t"}}, Context: trail.EventContext{Location: "x"}, OccurredAt: ts.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		eventB := res[0].ID
		keyB := &trail.APIKey{Name: "b", OrganizationID: orgB, Permissions: []trail.Permission{trail.PermEventsRead}}
		if err := ts.Keys.CreateAPIKey(context.Background(), keyB); err != nil {
			t.Fatal(err)
		}
		ev := validEvent()
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/audit_logs/events", map[string]any{"organization_id": orgB, "event": ev}},
			{"POST", "/audit_logs/events/batch", map[string]any{"organization_id": orgB, "events": []any{ev}}},
			{"GET", "/audit_logs/events?organization_id=" + orgB, nil},
			{"GET", "/audit_logs/events/" + eventB, nil},
			{"GET", "/audit_logs/events/" + eventB + "?organization_id=" + orgB, nil},
			{"GET", "/organizations/" + orgB, nil},
			{"GET", "/organizations/" + orgB + "/audit_logs_retention", nil},
			{"PUT", "/organizations/" + orgB + "/audit_logs_retention", map[string]any{"retention_period_in_days": 30}},
			{"POST", "/api_keys", map[string]any{"name": "x", "organization_id": orgB, "permissions": []string{"events:read"}}},
			{"GET", "/api_keys?organization_id=" + orgB, nil},
			{"GET", "/api_keys/" + keyB.ID, nil},
			{"DELETE", "/api_keys/" + keyB.ID, nil},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				r := ts.do(t, c.method, c.path, keyA, c.body)
				if r.Status != 404 {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				if strings.Contains(string(r.Body), "x.y") || strings.Contains(string(r.Body), keyB.Name+"\"") {
					t.Fatalf("leaked: %s", r.Body)
				}
			})
		}
		t.Run("ListsShowOnlyOwnOrganization", func(t *testing.T) {
			orgs := ts.do(t, "GET", "/organizations", keyA, nil).JSON(t)["data"].([]any)
			if len(orgs) != 1 || orgs[0].(map[string]any)["id"] != orgA {
				t.Fatalf("organizations %v", orgs)
			}
			for _, k := range ts.do(t, "GET", "/api_keys?limit=100", keyA, nil).JSON(t)["data"].([]any) {
				if k.(map[string]any)["organization_id"] != orgA {
					t.Fatalf("key of another scope listed: %v", k)
				}
			}
			evs := ts.do(t, "GET", "/audit_logs/events", keyA, nil).JSON(t)["data"].([]any)
			if len(evs) != 2 { // organization.created, api_key.created
				t.Fatalf("default organization of a scoped key: %v", evs)
			}
			for _, e := range evs {
				if e.(map[string]any)["organization_id"] != orgA {
					t.Fatalf("event of another organization: %v", e)
				}
			}
		})
		t.Run("InstanceWideOnly", func(t *testing.T) {
			for _, c := range []struct{ method, path string }{{"POST", "/organizations"}, {"POST", "/audit_logs/actions/x.y/schemas"}} {
				if r := ts.do(t, c.method, c.path, keyA, map[string]any{"name": "x", "targets": []any{map[string]any{"type": "t"}}}); r.Status != 403 {
					t.Fatalf("%s %s: %d", c.method, c.path, r.Status)
				}
			}
		})
		t.Run("ErrForbiddenWithoutPermission", func(t *testing.T) {
			none := ts.mustKey(t, "", trail.PermPortal)
			for _, rt := range []struct{ method, path string }{
				{"POST", "/audit_logs/events"}, {"POST", "/audit_logs/events/batch"}, {"GET", "/audit_logs/events?organization_id=" + orgA},
				{"GET", "/audit_logs/events/" + eventB}, {"POST", "/audit_logs/actions/x.y/schemas"}, {"GET", "/audit_logs/actions"},
				{"GET", "/audit_logs/actions/x.y/schemas"}, {"POST", "/organizations"}, {"GET", "/organizations"}, {"GET", "/organizations/" + orgA},
				{"GET", "/organizations/" + orgA + "/audit_logs_retention"}, {"PUT", "/organizations/" + orgA + "/audit_logs_retention"},
				{"POST", "/api_keys"}, {"GET", "/api_keys"}, {"GET", "/api_keys/" + keyB.ID}, {"DELETE", "/api_keys/" + keyB.ID},
			} {
				if r := ts.do(t, rt.method, rt.path, none, map[string]any{}); r.Status != http.StatusForbidden || r.JSON(t)["code"] != trail.EFORBIDDEN {
					t.Errorf("%s %s: %d %s", rt.method, rt.path, r.Status, r.Body)
				}
			}
		})
	})
}

func TestOperations(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
			if r := ts.do(t, "GET", p, "", nil); r.Status != 200 {
				t.Fatalf("%s: %d", p, r.Status)
			}
		}
		org := ts.mustOrg(t, "org_ops")
		ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()})
		r := ts.do(t, "GET", "/metrics", adminSecret, nil)
		for _, m := range []string{"trail_http_requests_total", "trail_http_request_duration_seconds_bucket", `trail_events_ingested_total{outcome="stored"} 1`,
			"trail_commit_batch_events_bucket", "trail_commit_duration_seconds", "go_goroutines"} {
			if !strings.Contains(string(r.Body), m) {
				t.Errorf("metrics lack %s", m)
			}
		}
		if r := ts.do(t, "GET", "/no/such/route", adminSecret, nil); r.Status != 404 || r.JSON(t)["code"] != trail.ENOTFOUND {
			t.Fatalf("unknown route: %d", r.Status)
		}
		if r := ts.do(t, "GET", "/api_keys/me", "", nil); r.Status != 401 || r.JSON(t)["message"] == "" {
			t.Fatalf("no key: %d", r.Status)
		}
	})
}
