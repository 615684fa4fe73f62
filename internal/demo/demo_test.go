package demo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/jsonschema"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
)

// TestLoad loads the full demo and checks it is what SPEC §1 promises:
// org_demo, every catalogue schema, and a realistic, schema-valid history
// of at least 50,000 events over the last 90 days.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orgs, schemas, events := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Schemas, sqlite.NewEventService(db)
	now := time.Now().UTC()
	res, err := demo.Load(ctx, orgs, schemas, events, jsonschema.NewValidator(schemas), demo.DefaultEvents, now)
	if err != nil {
		t.Fatal(err)
	}
	catalog, _ := demo.Catalog()
	if !res.Created || res.Events != demo.DefaultEvents || res.Events < 50000 || res.Schemas < len(catalog) {
		t.Fatalf("result %+v", res)
	}
	again, err := demo.Load(ctx, orgs, schemas, events, jsonschema.NewValidator(schemas), demo.DefaultEvents, now)
	if err != nil || again.Created {
		t.Fatalf("a second load must leave org_demo alone: %+v %v", again, err)
	}
	evs := demo.Events(catalog, demo.DefaultEvents, now)
	actors, types, actions := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, e := range evs {
		if e.OccurredAt.Before(now.Add(-90*24*time.Hour)) || e.OccurredAt.After(now) || (i > 0 && e.OccurredAt.Before(evs[i-1].OccurredAt)) {
			t.Fatalf("event %d at %v is outside the last 90 days or out of order", i, e.OccurredAt)
		}
		actors[e.Actor.ID], types[e.Actor.Type], actions[e.Action] = true, true, true
	}
	// Every *.updated event says what it changed: a before/after pair,
	// most of them with a value that differs; and the demo is the same
	// every time.
	updated, changed := 0, 0
	for _, e := range evs {
		if !strings.HasSuffix(e.Action, ".updated") {
			continue
		}
		updated++
		pair := false
		for k, v := range e.Metadata {
			for _, p := range [][2]string{{"before_", "after_"}, {"previous_", ""}} {
				if f, ok := strings.CutPrefix(k, p[0]); ok {
					if after, has := e.Metadata[p[1]+f]; has {
						pair = true
						if fmt.Sprint(after) != fmt.Sprint(v) {
							changed++
						}
					}
				}
			}
		}
		if !pair {
			t.Fatalf("%s says nothing of what it changed: %v", e.Action, e.Metadata)
		}
	}
	if updated < 1000 || changed < updated {
		t.Fatalf("%d updated events, %d changed values", updated, changed)
	}
	if again := demo.Events(catalog, 500, now); fmt.Sprint(again[499].Metadata) != fmt.Sprint(demo.Events(catalog, 500, now)[499].Metadata) {
		t.Fatal("the demo differs from one run to the next")
	}
	if len(actors) < 50 || len(types) < 4 || len(actions) < 150 {
		t.Fatalf("not varied: %d actors, %d actor types, %d actions", len(actors), len(types), len(actions))
	}
	page, err := events.FindEvents(ctx, trail.EventFilter{OrganizationID: trail.DemoOrganizationID, Limit: 1})
	if err != nil || page.Events[0].Index != int64(demo.DefaultEvents) {
		t.Fatalf("head %+v %v", page, err)
	}
}
