package httpapi_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workos/workos-go/v6/pkg/auditlogs"
	"github.com/workos/workos-go/v6/pkg/workos_errors"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
)

// TestWorkOSSDK points the official WorkOS Go SDK (v6.5.0, pkg/auditlogs)
// at Trail, as a team switching to Trail would.
func TestWorkOSSDK(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_workos")
		key := ts.mustKey(t, org, trail.PermEventsWrite, trail.PermEventsRead, trail.PermExports)
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
		workOSExport(t, ts, client, org, occurred)

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

// workOSExport: the SDK creates an export and downloads its file.
func workOSExport(t *testing.T, ts *testServer, client *auditlogs.Client, org string, occurred time.Time) {
	ctx := context.Background()
	t.Run("Export", func(t *testing.T) {
		// create → poll → download, as an application using the SDK
		// does; the CSV holds the event sent above.
		ex, err := client.CreateExport(ctx, auditlogs.CreateExportOpts{
			OrganizationID: org,
			RangeStart:     occurred.Add(-time.Hour).Format(time.RFC3339),
			RangeEnd:       time.Now().Add(time.Hour).Format(time.RFC3339),
			Actions:        []string{"escalation_path.updated"},
			ActorIds:       []string{"user_01"},
			Targets:        []string{"escalation_path"},
		})
		if err != nil || ex.Object != auditlogs.AuditLogExportObjectName || ex.State != "pending" || ex.ID == "" || ex.CreatedAt == "" {
			t.Fatalf("CreateExport: %+v %v", ex, err)
		}
		testwait.Poll(30*time.Second, func() error {
			if ex.State != "pending" {
				return nil
			}
			if ex, err = client.GetExport(ctx, auditlogs.GetExportOpts{ExportID: ex.ID}); err != nil {
				t.Fatalf("GetExport: %v", err)
			}
			return errors.New("pending")
		})
		if ex.State != "ready" || ex.URL == "" {
			t.Fatalf("export %+v", ex)
		}
		resp, err := http.Get(ex.URL) // the link needs no API key
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		recs, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil || resp.StatusCode != 200 || len(recs) != 2 {
			t.Fatalf("download: %d, %d records, %v", resp.StatusCode, len(recs), err)
		}
		page, err := ts.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org, Actions: []string{"escalation_path.updated"}})
		if err != nil || len(page.Events) != 1 {
			t.Fatal(page, err)
		}
		want := page.Events[0]
		row := recs[1]
		if row[0] != want.ID || row[1] != fmt.Sprint(want.Index) || row[2] != occurred.Format(time.RFC3339Nano) || row[4] != "escalation_path.updated" ||
			row[6] != "user" || row[7] != "user_01" || row[9] != "escalation_path" || row[10] != "ep_01" || row[11] != "Primary on-call" ||
			row[12] != "198.51.100.4" || row[14] != `{"levels":3,"note":"night rota","paused":false}` {
			t.Fatalf("row %q for %+v", row, want)
		}
		_, err = client.GetExport(ctx, auditlogs.GetExportOpts{ExportID: "audit_log_export_unknown"})
		var herr workos_errors.HTTPError
		if !errors.As(err, &herr) || herr.Code != 404 {
			t.Fatalf("unknown export: %v", err)
		}
	})
}
