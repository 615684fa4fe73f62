package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
)

// BenchmarkFindEvents: the first page (50, newest first) of one
// organization's 50,000 events under each filter of the query scenario,
// and an event by id, on the driver alone. Its allocations are
// deterministic; its times are the figure the query scenario of `trail
// bench` measures over HTTP, without the HTTP.
func BenchmarkFindEvents(b *testing.B) {
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(b.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { db.Close() }()
	if err := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_find", Name: "find"}); err != nil {
		b.Fatal(err)
	}
	events := sqlite.NewEventService(db)
	const n = 50000
	end := time.Now().UTC().Truncate(time.Hour)
	var someID string
	for i := 0; i < n; i += 1000 {
		in := make([]*trail.EventInput, 1000)
		for j := range in {
			k := i + j
			in[j] = &trail.EventInput{
				Action:     fmt.Sprintf("%s.%s", []string{"user", "team", "alert_route", "escalation_path", "log_stream"}[k%5], []string{"created", "updated", "deleted", "granted", "revoked", "viewed", "exported", "signed_in"}[k/5%8]),
				OccurredAt: end.Add(-time.Duration(n-k) * (60 * 24 * time.Hour / n)),
				Actor:      trail.Actor{ID: fmt.Sprintf("user_%d", k%500), Type: "user", Name: fmt.Sprintf("Person%d Surname%d", k%500, k%37)},
				Targets:    []trail.Target{{ID: fmt.Sprintf("team_%d", k%2000), Type: "team", Name: fmt.Sprintf("Team%d", k%2000)}},
				Context:    trail.EventContext{Location: "203.0.113.7", UserAgent: "bench"},
				Metadata:   trail.Metadata{"word": fmt.Sprintf("w%d", k%211), "other": fmt.Sprintf("o%d", k%13)},
			}
		}
		res, err := events.AppendEvents(ctx, "org_find", in)
		if err != nil {
			b.Fatal(err)
		}
		someID = res[len(res)/2].ID
	}
	// Reopen, so that the checkpoint of the load is done before the timed
	// queries and none runs beside them.
	path := db.Path
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	db = sqlite.NewDB(path)
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	events = sqlite.NewEventService(db)
	day := end.Add(-30 * 24 * time.Hour)
	dayEnd, weekEnd := day.Add(24*time.Hour), day.Add(7*24*time.Hour)
	filters := []struct {
		name string
		f    trail.EventFilter
	}{
		{"action", trail.EventFilter{Actions: []string{"team.revoked"}}},
		{"action_prefix", trail.EventFilter{Actions: []string{"alert_route.*"}}},
		{"actor", trail.EventFilter{ActorIDs: []string{"user_77"}}},
		{"target", trail.EventFilter{TargetIDs: []string{"team_1234"}}},
		{"day", trail.EventFilter{RangeStart: &day, RangeEnd: &dayEnd}},
		{"week", trail.EventFilter{RangeStart: &day, RangeEnd: &weekEnd}},
		{"q_one_word", trail.EventFilter{Query: "w17"}},
		{"q_two_words", trail.EventFilter{Query: "w17 o5"}},
	}
	for _, c := range filters {
		b.Run(c.name, func(b *testing.B) {
			f := c.f
			f.OrganizationID, f.Limit = "org_find", 50
			for b.Loop() {
				p, err := events.FindEvents(ctx, f)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Events) == 0 {
					b.Fatal("no event matches")
				}
			}
		})
	}
	b.Run("by_id", func(b *testing.B) {
		for b.Loop() {
			if _, err := events.FindEventByID(ctx, "org_find", someID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
