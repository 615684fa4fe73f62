package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

func TestCreateEvent(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_acme")

		t.Run("OK", func(t *testing.T) {
			ev := validEvent()
			ev["occurred_at"] = time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05") + ".123456789Z"
			ev["actor"].(map[string]any)["name"] = ""
			ev["context"].(map[string]any)["user_agent"] = ""
			ev["unknown_field"] = "ignored"
			r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			body := r.JSON(t)
			if body["success"] != true || body["index"] != float64(1) {
				t.Fatalf("body %v", body)
			}
			got := ts.do(t, "GET", "/audit_logs/events/"+body["id"].(string), adminSecret, nil).JSON(t)
			if got["occurred_at"] != ev["occurred_at"] {
				t.Fatalf("nine fractional digits not kept: %v vs %v", got["occurred_at"], ev["occurred_at"])
			}
			actor := got["actor"].(map[string]any)
			if _, ok := actor["name"]; ok {
				t.Fatalf(`"" name must read as absent: %v`, actor)
			}
			if _, ok := got["context"].(map[string]any)["user_agent"]; ok {
				t.Fatalf(`"" user_agent must read as absent`)
			}
			if _, ok := got["unknown_field"]; ok {
				t.Fatalf("unknown fields must be ignored")
			}
			if got["version"] != float64(1) || got["organization_id"] != org || got["received_at"] == nil {
				t.Fatalf("stored %v", got)
			}
		})

		testCreateEventRejections(t, ts, org)
		testCreateEventRequestErrors(t, ts, org)

		t.Run("ErrSystemOrganization", func(t *testing.T) {
			for _, path := range []string{"/audit_logs/events", "/audit_logs/events/batch"} {
				before := ts.count(t, trail.SystemOrganizationID)
				r := ts.do(t, "POST", path, adminSecret, map[string]any{"organization_id": trail.SystemOrganizationID, "event": validEvent(), "events": []any{validEvent()}})
				if r.Status != 403 || ts.count(t, trail.SystemOrganizationID) != before {
					t.Fatalf("%s: org_system took a forged event: %d %s", path, r.Status, r.Body)
				}
			}
		})
		t.Run("ErrForbidden", func(t *testing.T) {
			key := ts.mustKey(t, "", trail.PermEventsRead)
			r := ts.do(t, "POST", "/audit_logs/events", key, map[string]any{"organization_id": org, "event": validEvent()})
			if r.Status != 403 || r.JSON(t)["code"] != trail.EFORBIDDEN {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		})

		t.Run("IdempotencyKeyHeader", func(t *testing.T) {
			ev := validEvent()
			body := map[string]any{"organization_id": org, "event": ev}
			a := ts.do(t, "POST", "/audit_logs/events", adminSecret, body, "Idempotency-Key", "retry-1").JSON(t)
			n := ts.count(t, org)
			b := ts.do(t, "POST", "/audit_logs/events", adminSecret, body, "Idempotency-Key", "retry-1").JSON(t)
			if a["id"] != b["id"] || a["index"] != b["index"] || ts.count(t, org) != n {
				t.Fatalf("retry stored again: %v %v", a, b)
			}
			ev["action"] = "alert_route.deleted"
			c := ts.do(t, "POST", "/audit_logs/events", adminSecret, body, "Idempotency-Key", "retry-1").JSON(t)
			if c["id"] == a["id"] {
				t.Fatalf("another event under the same key must be stored")
			}
		})
	})
}

// testCreateEventRequestErrors: requests refused before their event is read.
func testCreateEventRequestErrors(t *testing.T, ts *testServer, org string) {
	requestErrors := []struct {
		name, key string
		body      any
		status    int
		code      string
	}{
		{"NoKey", "", map[string]any{"organization_id": org, "event": validEvent()}, 401, trail.EUNAUTHORIZED},
		{"UnknownKey", "sk_" + strings.Repeat("x", 40), map[string]any{"organization_id": org, "event": validEvent()}, 401, trail.EUNAUTHORIZED},
		{"NotJSON", adminSecret, "{not json", 422, trail.EMALFORMED},
		{"NoOrganization", adminSecret, map[string]any{"event": validEvent()}, 422, trail.EMALFORMED},
		{"NoEvent", adminSecret, map[string]any{"organization_id": org}, 422, trail.EMALFORMED},
		{"UnknownOrganization", adminSecret, map[string]any{"organization_id": "org_nope", "event": validEvent()}, 404, trail.ENOTFOUND},
		{"BodyOver1MiB", adminSecret, `{"organization_id":"` + org + `","event":{},"pad":"` + strings.Repeat("p", 1<<20) + `"}`, 413, trail.ETOOLARGE},
	}
	for _, tt := range requestErrors {
		t.Run("Err"+tt.name, func(t *testing.T) {
			before := ts.count(t, org)
			r := ts.do(t, "POST", "/audit_logs/events", tt.key, tt.body)
			if r.Status != tt.status || r.JSON(t)["code"] != tt.code {
				t.Fatalf("status %d, want %d %s: %s", r.Status, tt.status, tt.code, r.Body)
			}
			if tt.status == 422 {
				errs, _ := r.JSON(t)["errors"].([]any)
				if len(errs) == 0 || errs[0].(map[string]any)["field"] == nil || r.JSON(t)["message"] != "Validation failed." {
					t.Fatalf("422 must carry WorkOS field errors: %s", r.Body)
				}
			}
			if ts.count(t, org) != before {
				t.Fatalf("something was stored")
			}
		})
	}
}

// testCreateEventRejections: events the schema refuses, each with the status and the field the error names.
func testCreateEventRejections(t *testing.T, ts *testServer, org string) {
	rejections := []struct {
		name   string
		mutate func(ev map[string]any)
		status int
		path   string // an instancePath the error must name
	}{
		{"ActionMissing", func(ev map[string]any) { delete(ev, "action") }, 400, "/action"},
		{"ActionEmpty", func(ev map[string]any) { ev["action"] = "" }, 400, "/action"},
		{"ActionTooLong", func(ev map[string]any) { ev["action"] = strings.Repeat("a", 129) }, 400, "/action"},
		{"ActionBadCharacters", func(ev map[string]any) { ev["action"] = "alert route/updated" }, 400, "/action"},
		{"ActionNotString", func(ev map[string]any) { ev["action"] = 7 }, 400, "/action"},
		{"VersionZero", func(ev map[string]any) { ev["version"] = 0 }, 400, "/version"},
		{"VersionFraction", func(ev map[string]any) { ev["version"] = 1.5 }, 400, "/version"},
		{"VersionString", func(ev map[string]any) { ev["version"] = "1" }, 400, "/version"},
		{"OccurredAtMissing", func(ev map[string]any) { delete(ev, "occurred_at") }, 400, "/occurred_at"},
		{"OccurredAtNotRFC3339", func(ev map[string]any) { ev["occurred_at"] = "15/01/2024 10:30" }, 400, "/occurred_at"},
		{"OccurredAtTenDigits", func(ev map[string]any) { ev["occurred_at"] = "2026-01-15T10:30:00.1234567891Z" }, 400, "/occurred_at"},
		{"OccurredAtFuture", func(ev map[string]any) {
			ev["occurred_at"] = time.Now().UTC().Add(6 * time.Minute).Format(time.RFC3339)
		}, 400, "/occurred_at"},
		{"OccurredAtBeforeRetention", func(ev map[string]any) {
			ev["occurred_at"] = time.Now().UTC().Add(-366 * 24 * time.Hour).Format(time.RFC3339)
		}, 400, "/occurred_at"},
		{"ActorMissing", func(ev map[string]any) { delete(ev, "actor") }, 400, "/actor"},
		{"ActorIDMissing", func(ev map[string]any) { delete(ev["actor"].(map[string]any), "id") }, 400, "/actor/id"},
		{"ActorIDTooLong", func(ev map[string]any) { ev["actor"].(map[string]any)["id"] = strings.Repeat("é", 257) }, 400, "/actor/id"},
		{"ActorTypeMissing", func(ev map[string]any) { delete(ev["actor"].(map[string]any), "type") }, 400, "/actor/type"},
		{"ActorTypeTooLong", func(ev map[string]any) { ev["actor"].(map[string]any)["type"] = strings.Repeat("t", 65) }, 400, "/actor/type"},
		{"ActorNameTooLong", func(ev map[string]any) { ev["actor"].(map[string]any)["name"] = strings.Repeat("n", 257) }, 400, "/actor/name"},
		{"ActorIDWithNUL", func(ev map[string]any) { ev["actor"].(map[string]any)["id"] = "user\x00_1" }, 400, "/actor/id"},
		{"TargetNameWithNUL", func(ev map[string]any) { ev["targets"] = []any{map[string]any{"id": "a", "type": "x", "name": "\x00"}} }, 400, "/targets/0/name"},
		{"UserAgentWithNUL", func(ev map[string]any) { ev["context"].(map[string]any)["user_agent"] = "curl\x00" }, 400, "/context/user_agent"},
		{"TargetsNull", func(ev map[string]any) { ev["targets"] = nil }, 400, "/targets"},
		{"TargetsEmpty", func(ev map[string]any) { ev["targets"] = []any{} }, 400, "/targets"},
		{"TargetsTooMany", func(ev map[string]any) {
			var ts []any
			for i := 0; i < 51; i++ {
				ts = append(ts, map[string]any{"id": fmt.Sprint(i), "type": "x"})
			}
			ev["targets"] = ts
		}, 400, "/targets"},
		{"TargetNotObject", func(ev map[string]any) { ev["targets"] = []any{"route_1"} }, 400, "/targets/0"},
		{"TargetIDMissing", func(ev map[string]any) { ev["targets"] = []any{map[string]any{"type": "x"}} }, 400, "/targets/0/id"},
		{"TargetTypeMissing", func(ev map[string]any) {
			ev["targets"] = []any{map[string]any{"id": "a", "type": "x"}, map[string]any{"id": "b"}}
		}, 400, "/targets/1/type"},
		{"ContextMissing", func(ev map[string]any) { delete(ev, "context") }, 400, "/context"},
		{"LocationMissing", func(ev map[string]any) { ev["context"] = map[string]any{"user_agent": "x"} }, 400, "/context/location"},
		{"LocationTooLong", func(ev map[string]any) { ev["context"] = map[string]any{"location": strings.Repeat("l", 257)} }, 400, "/context/location"},
		{"UserAgentTooLong", func(ev map[string]any) {
			ev["context"] = map[string]any{"location": "x", "user_agent": strings.Repeat("u", 1025)}
		}, 400, "/context/user_agent"},
		{"MetadataTooManyKeys", func(ev map[string]any) {
			md := map[string]any{}
			for i := 0; i < 51; i++ {
				md[fmt.Sprint("k", i)] = i
			}
			ev["metadata"] = md
		}, 400, "/metadata"},
		{"MetadataBadKey", func(ev map[string]any) { ev["metadata"] = map[string]any{"bad key": 1} }, 400, "/metadata/bad key"},
		{"MetadataKeyTooLong", func(ev map[string]any) { ev["metadata"] = map[string]any{strings.Repeat("k", 41): 1} }, 400, "/metadata/" + strings.Repeat("k", 41)},
		{"MetadataValueTooLong", func(ev map[string]any) { ev["metadata"] = map[string]any{"v": strings.Repeat("v", 501)} }, 400, "/metadata/v"},
		{"MetadataNull", func(ev map[string]any) { ev["metadata"] = map[string]any{"v": nil} }, 400, "/metadata/v"},
		{"MetadataNested", func(ev map[string]any) { ev["metadata"] = map[string]any{"v": map[string]any{"a": 1}} }, 400, "/metadata/v"},
		{"MetadataArray", func(ev map[string]any) { ev["metadata"] = map[string]any{"v": []any{1}} }, 400, "/metadata/v"},
		{"MetadataNotObject", func(ev map[string]any) { ev["metadata"] = "x" }, 400, "/metadata"},
		{"ActorMetadataBad", func(ev map[string]any) { ev["actor"].(map[string]any)["metadata"] = map[string]any{"a/b": 1} }, 400, "/actor/metadata/a~1b"},
		{"TargetMetadataBad", func(ev map[string]any) {
			ev["targets"] = []any{map[string]any{"id": "a", "type": "x", "metadata": map[string]any{"n": []any{}}}}
		}, 400, "/targets/0/metadata/n"},
		{"EventTooLarge", func(ev map[string]any) {
			md := map[string]any{}
			for i := 0; i < 50; i++ {
				md[fmt.Sprint("k", i)] = strings.Repeat("x", 500)
			}
			ev["metadata"] = md
			var ts []any
			for i := 0; i < 50; i++ {
				ts = append(ts, map[string]any{"id": strings.Repeat("i", 256), "type": "x", "name": strings.Repeat("n", 256), "metadata": md})
			}
			ev["targets"] = ts
		}, 413, ""},
	}
	for _, tt := range rejections {
		t.Run("Err"+tt.name, func(t *testing.T) {
			before := ts.count(t, org)
			ev := validEvent()
			tt.mutate(ev)
			r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			body := r.JSON(t)
			if tt.status == 400 {
				if body["code"] != trail.EINVALIDEVENT || body["message"] != "Invalid Audit Log event." {
					t.Fatalf("body %s", r.Body)
				}
				if paths := problemPaths(t, body); !slices.Contains(paths, tt.path) {
					t.Fatalf("errors %v do not name %s", paths, tt.path)
				}
			} else if body["code"] != trail.ETOOLARGE {
				t.Fatalf("body %s", r.Body)
			}
			if after := ts.count(t, org); after != before {
				t.Fatalf("a rejected event was stored: %d → %d", before, after)
			}
		})
	}
}

func TestCreateEventBatch(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_batch")
		t.Run("EachEventOnItsOwn", func(t *testing.T) {
			bad := validEvent()
			delete(bad, "actor")
			keyed := validEvent()
			keyed["idempotency_key"] = "item-key"
			keyed["action"] = "schedule.updated"
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": []any{validEvent(), bad, keyed}})
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			data := r.JSON(t)["data"].([]any)
			if len(data) != 3 {
				t.Fatalf("data %v", data)
			}
			first, second, third := data[0].(map[string]any), data[1].(map[string]any), data[2].(map[string]any)
			if first["index"] != float64(1) || third["index"] != float64(2) || first["error"] != nil {
				t.Fatalf("accepted items %v %v", first, third)
			}
			e := second["error"].(map[string]any)
			if e["code"] != trail.EINVALIDEVENT || !slices.Contains(problemPaths(t, e), "/actor") || second["id"] != nil {
				t.Fatalf("rejected item %v", second)
			}
			if ts.count(t, org) != 3 { // organization.created + 2
				t.Fatalf("stored %d", ts.count(t, org))
			}
			again := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": []any{keyed}}).JSON(t)
			item := again["data"].([]any)[0].(map[string]any)
			if item["id"] != third["id"] || item["duplicate"] != true || ts.count(t, org) != 3 {
				t.Fatalf("per-item idempotency key: %v", item)
			}
		})
		t.Run("ErrTooManyEvents", func(t *testing.T) {
			evs := make([]any, 1001)
			for i := range evs {
				evs[i] = validEvent()
			}
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": evs})
			if r.Status != 400 || !slices.Contains(problemPaths(t, r.JSON(t)), "/events") {
				t.Fatalf("status %d: %.300s", r.Status, r.Body)
			}
		})
		t.Run("ErrOver5MiB", func(t *testing.T) {
			body := `{"organization_id":"` + org + `","events":[],"pad":"` + strings.Repeat("p", 5<<20) + `"}`
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, body)
			if r.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", r.Status)
			}
		})
		t.Run("ErrNoEvents", func(t *testing.T) {
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org})
			if r.Status != 422 {
				t.Fatalf("status %d", r.Status)
			}
		})
		t.Run("ItemOver64KiB", func(t *testing.T) {
			big := validEvent()
			md := map[string]any{}
			for i := 0; i < 50; i++ {
				md[fmt.Sprint("k", i)] = strings.Repeat("x", 500)
			}
			var tgts []any
			for i := 0; i < 50; i++ {
				tgts = append(tgts, map[string]any{"id": fmt.Sprint(i), "type": "x", "metadata": md})
			}
			big["targets"] = tgts
			before := ts.count(t, org)
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": []any{big}})
			item := r.JSON(t)["data"].([]any)[0].(map[string]any)
			if r.Status != 200 || item["error"].(map[string]any)["code"] != trail.ETOOLARGE || ts.count(t, org) != before {
				t.Fatalf("status %d item %v", r.Status, item)
			}
		})
	})
}

func TestListEvents(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_list")
		for i := 0; i < 30; i++ {
			ev := validEvent()
			ev["actor"].(map[string]any)["id"] = fmt.Sprint("user_", i%3)
			ev["metadata"] = map[string]any{"n": i}
			if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		}
		t.Run("PagesWithOpaqueCursors", func(t *testing.T) {
			var seen []float64
			path := "/audit_logs/events?organization_id=" + org + "&actor_ids=user_1&limit=4"
			for page := 0; ; page++ {
				body := ts.do(t, "GET", path, adminSecret, nil).JSON(t)
				for _, e := range body["data"].([]any) {
					seen = append(seen, e.(map[string]any)["index"].(float64))
				}
				after, _ := body["list_metadata"].(map[string]any)["after"].(string)
				if after == "" {
					break
				}
				if strings.Contains(after, "index") || after == fmt.Sprint(seen[len(seen)-1]) {
					t.Fatalf("cursor is not opaque: %q", after)
				}
				path = "/audit_logs/events?organization_id=" + org + "&actor_ids=user_1&limit=4&after=" + after
			}
			if len(seen) != 10 || !slices.IsSortedFunc(seen, func(a, b float64) int { return int(b - a) }) {
				t.Fatalf("seen %v", seen)
			}
		})
		bad := []struct{ query, param string }{
			{"", "organization_id"},
			{"organization_id=" + org + "&colour=red", "colour"},
			{"organization_id=" + org + "&limit=0", "limit"},
			{"organization_id=" + org + "&limit=1001", "limit"},
			{"organization_id=" + org + "&limit=ten", "limit"},
			{"organization_id=" + org + "&order=sideways", "order"},
			{"organization_id=" + org + "&range_start=yesterday", "range_start"},
			{"organization_id=" + org + "&range_end=2026-13-01T00:00:00Z", "range_end"},
			{"organization_id=" + org + "&range_start=2026-02-01T00:00:00Z&range_end=2026-01-01T00:00:00Z", "range_end"},
			{"organization_id=" + org + "&after=not-a-cursor", "after"},
			{"organization_id=" + org + "&before=ZTox&after=ZTox", "before"},
			{"organization_id=" + org + "&actions=bad%20action", "actions"},
			{"organization_id=" + org + "&q[]=x", "q[]"},
			{"organization_id=" + org + "&limit=5&limit=6", "limit"},
			{"organization_id=" + org + "&actor_ids=" + strings.Repeat("a,", 101), "actor_ids"},
			{"organization_id=" + org + "&after=ZTo5OTk5OTk", "after"}, // a well-formed cursor past the log's end
		}
		for _, tt := range bad {
			t.Run("Err"+tt.param, func(t *testing.T) {
				r := ts.do(t, "GET", "/audit_logs/events?"+tt.query, adminSecret, nil)
				if r.Status != 400 || !strings.Contains(r.JSON(t)["message"].(string), tt.param) || !slices.Contains(problemPaths(t, r.JSON(t)), tt.param) {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
			})
		}
		t.Run("Filters", func(t *testing.T) {
			start := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
			for q, want := range map[string]int{
				"actions=alert_route.*":                            30,
				"actions=alert_route.updated,organization.created": 31,
				"actor_names=Ada%20Lovelace":                       30,
				"actor_types=user":                                 30,
				"target_ids=route_1":                               30,
				"targets=alert_route":                              30,
				"range_start=" + start:                             31,
				"range_end=" + start:                               0,
				"q=Critical%20203.0.113.9":                         30,
				"q=nothing-like-this":                              0,
			} {
				body := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&limit=1000&"+q, adminSecret, nil).JSON(t)
				if n := len(body["data"].([]any)); n != want {
					t.Errorf("%s: %d events, want %d", q, n, want)
				}
			}
		})
		t.Run("AscendingTailKeepsCursor", func(t *testing.T) {
			b := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&order=asc&limit=1000", adminSecret, nil).JSON(t)
			after, _ := b["list_metadata"].(map[string]any)["after"].(string)
			if after == "" {
				t.Fatalf("the last ascending page must carry after: %v", b["list_metadata"])
			}
			if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": validEvent()}); r.Status != 200 {
				t.Fatal(r.Status)
			}
			next := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&order=asc&after="+after, adminSecret, nil).JSON(t)
			if n := len(next["data"].([]any)); n != 1 {
				t.Fatalf("tail poll found %d new events, want 1", n)
			}
		})
		t.Run("GetEventErrNotFound", func(t *testing.T) {
			if r := ts.do(t, "GET", "/audit_logs/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", adminSecret, nil); r.Status != 404 {
				t.Fatalf("status %d", r.Status)
			}
		})
	})
}

func TestListEvents_ValuesAndBounds(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_values")
		ev := validEvent()
		ev["actor"].(map[string]any)["name"] = "Doe, Jane"
		if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); r.Status != 200 {
			t.Fatal(r.Status)
		}
		for q, want := range map[string]int{
			"actor_names[]=Doe%2C+Jane":                  1, // name[] keeps the comma
			"actor_names=Doe%2C+Jane&actor_names=Nobody": 1, // so does a repeated parameter
			"actor_names=Doe%2C+Jane":                    0, // a single plain value is a comma list
			"range_end=9999-12-31T00:00:00Z":             2, // past 2262: no bound
			"range_start=1600-01-01T00:00:00Z":           2, // before 1970: no bound
			"range_start=9999-01-01T00:00:00Z":           0,
			"range_end=1600-01-01T00:00:00Z":             0,
		} {
			r := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&"+q, adminSecret, nil)
			if r.Status != 200 || len(r.JSON(t)["data"].([]any)) != want {
				t.Errorf("%s: status %d, %d events, want %d", q, r.Status, len(r.JSON(t)["data"].([]any)), want)
			}
		}
		// Nor an organization id in a body: no such organization.
		for path, body := range map[string]any{
			"/audit_logs/events":       map[string]any{"organization_id": org + "\x00", "event": validEvent()},
			"/audit_logs/events/batch": map[string]any{"organization_id": org + "\x00", "events": []any{validEvent()}},
			"/api_keys":                map[string]any{"name": "k", "organization_id": org + "\x00", "permissions": []string{"events:read"}},
		} {
			if r := ts.do(t, "POST", path, adminSecret, body); r.Status != 404 {
				t.Errorf("POST %s with a NUL in organization_id: status %d %s", path, r.Status, r.Body)
			}
		}
		// No stored value holds NUL: a parameter with one is a bad value.
		for _, q := range []string{"actor_names=a%00b", "organization_id=org%00x", "q=%00"} {
			r := ts.do(t, "GET", "/audit_logs/events?organization_id="+org+"&"+q, adminSecret, nil)
			if r.Status != 400 || !strings.Contains(string(r.Body), "NUL") {
				t.Errorf("%s: status %d %s", q, r.Status, r.Body)
			}
		}
	})
}
