package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
)

// ExampleClient appends an event and reads it back through the HTTP API.
func ExampleClient() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "trail-example")
	defer os.RemoveAll(dir)

	// A server on a temporary database (cmd/trail does this wiring).
	db := sqlite.NewDB(filepath.Join(dir, "trail.db"))
	if err := db.Open(ctx); err != nil {
		panic(err)
	}
	defer db.Close()
	keys := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).APIKeys
	admin := &trail.APIKey{Name: "admin", Permissions: []trail.Permission{trail.PermAdmin}}
	if err := keys.CreateAPIKey(ctx, admin); err != nil {
		panic(err)
	}
	s := httpapi.NewServer()
	s.Addr, s.Logger = "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Events, s.Organizations, s.Schemas, s.APIKeys = sqlite.NewEventService(db), service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Schemas, keys
	if err := s.Open(); err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	// The client implements the same services as the storage drivers.
	c := httpapi.NewClient(s.URL(), admin.Secret)
	org := &trail.Organization{ID: "org_example", Name: "Example"}
	if err := c.Organizations().CreateOrganization(ctx, org); err != nil {
		panic(err)
	}
	res, err := c.Events().AppendEvents(ctx, org.ID, []*trail.EventInput{{
		Action:     "escalation_path.updated",
		OccurredAt: time.Now().Add(-time.Minute),
		Actor:      trail.Actor{ID: "user_01", Type: "user", Name: "Ada"},
		Targets:    []trail.Target{{ID: "ep_01", Type: "escalation_path"}},
		Context:    trail.EventContext{Location: "203.0.113.7"},
	}})
	if err != nil || res[0].Err != nil {
		panic(fmt.Sprint(err, res))
	}
	ev, err := c.Events().FindEventByID(ctx, org.ID, res[0].ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Index, ev.Action, ev.Actor.Name)
	// Output: 1 escalation_path.updated Ada
}
