package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workos/workos-go/v6/pkg/auditlogs"
	"github.com/workos/workos-go/v6/pkg/workos_errors"

	"github.com/trail-audit/trail"
)

// TestWorkOSSDK points the official WorkOS Go SDK (v6.5.0, pkg/auditlogs)
// at Trail, as a team switching to Trail would.
func TestWorkOSSDK(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_workos")
		key := ts.mustKey(t, org, trail.PermEventsWrite, trail.PermEventsRead)
		client := &auditlogs.Client{
			APIKey:          key,
			EventsEndpoint:  ts.URL() + "/audit_logs/events",
			ExportsEndpoint: ts.URL() + "/audit_logs/exports",
			HTTPClient:      &http.Client{Timeout: 10 * time.Second},
		}
		ctx := context.Background()
		occurred := time.Now().UTC().Add(-time.Minute).Truncate(time.Second).Add(123456789)
		event := auditlogs.Event{
			Action:     "escalation_path.updated",
			OccurredAt: occurred,
			Actor:      auditlogs.Actor{ID: "user_01", Type: "user"}, // Name "" is sent
			Targets:    []auditlogs.Target{{ID: "ep_01", Type: "escalation_path", Name: "Primary on-call"}},
			Context:    auditlogs.Context{Location: "198.51.100.4"}, // UserAgent "" is sent
			Metadata:   map[string]interface{}{"levels": 3, "paused": false, "note": "night rota"},
		}
		t.Run("CreateEvent", func(t *testing.T) {
			if err := client.CreateEvent(ctx, auditlogs.CreateEventOpts{OrganizationID: org, Event: event, IdempotencyKey: "sdk-1"}); err != nil {
				t.Fatalf("CreateEvent: %v", err)
			}
			page, err := ts.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org, Actions: []string{"escalation_path.updated"}})
			if err != nil || len(page.Events) != 1 {
				t.Fatalf("stored %v, %v", page, err)
			}
			got := page.Events[0]
			if !got.OccurredAt.Equal(occurred) || got.Actor.Name != "" || got.Context.UserAgent != "" || got.Targets[0].Name != "Primary on-call" ||
				fmt.Sprint(got.Metadata["levels"]) != "3" || got.Metadata["paused"] != false {
				t.Fatalf("stored %+v", got)
			}
		})
		t.Run("RetryIsIdempotent", func(t *testing.T) {
			if err := client.CreateEvent(ctx, auditlogs.CreateEventOpts{OrganizationID: org, Event: event, IdempotencyKey: "sdk-1"}); err != nil {
				t.Fatal(err)
			}
			if n := ts.count(t, org); n != 3 { // organization.created, api_key.created, the event
				t.Fatalf("%d events", n)
			}
		})
		t.Run("ErrTargetsNull", func(t *testing.T) {
			bad := event
			bad.Targets = nil // the SDK sends "targets": null
			err := client.CreateEvent(ctx, auditlogs.CreateEventOpts{OrganizationID: org, Event: bad})
			var herr workos_errors.HTTPError
			if !errors.As(err, &herr) {
				t.Fatalf("err %T %v", err, err)
			}
			if herr.Code != 400 || herr.ErrorCode != "invalid_audit_log_event" || herr.Message != "Invalid Audit Log event." || herr.RequestID == "" || len(herr.Errors) == 0 ||
				!strings.Contains(herr.RawBody, `"instancePath":"/targets"`) {
				t.Fatalf("SDK parsed %+v", herr)
			}
		})
		t.Run("ErrUnauthorized", func(t *testing.T) {
			c := &auditlogs.Client{
				APIKey:         "sk_wrong_wrong_wrong_wrong_wrong_wrong_wrong",
				EventsEndpoint: ts.URL() + "/audit_logs/events",
				HTTPClient:     &http.Client{Timeout: 10 * time.Second},
			}
			err := c.CreateEvent(ctx, auditlogs.CreateEventOpts{OrganizationID: org, Event: event})
			var herr workos_errors.HTTPError
			if !errors.As(err, &herr) || herr.Code != 401 || herr.Message != "Invalid API key." {
				t.Fatalf("err %#v", err)
			}
		})
		t.Run("ErrUnprocessable", func(t *testing.T) {
			err := client.CreateEvent(ctx, auditlogs.CreateEventOpts{Event: event})
			var herr workos_errors.HTTPError
			if !errors.As(err, &herr) || herr.Code != 422 || len(herr.FieldErrors) != 1 || herr.FieldErrors[0].Field != "organization_id" || herr.FieldErrors[0].Code != "required" {
				t.Fatalf("err %#v", err)
			}
		})
	})
}
