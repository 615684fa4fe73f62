package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
)

// Wire is the suite's Services of a driver: svc are the services over
// its store (service.New), events and logs its own; advance moves its
// clock on.
func Wire(svc *service.Services, events trail.EventService, logs trail.LogStore, advance func(time.Duration)) Services {
	return Services{Events: events, Logs: logs, Advance: advance, Organizations: svc.Organizations, Schemas: svc.Schemas,
		APIKeys: svc.APIKeys, Idempotency: svc.Idempotency, Exports: svc.Exports, Streams: svc.Streams, Portal: svc.Portal}
}

// BenchAppend measures a driver's appends alone: batches of 1000
// distinct events (no de-duplication), committed, into one organization.
func BenchAppend(b *testing.B, orgs trail.OrganizationService, events trail.EventService) {
	ctx := context.Background()
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_b", Name: "b"}); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	n := 0
	b.ResetTimer()
	for b.Loop() {
		evs := make([]*trail.EventInput, batch)
		for j := range evs {
			evs[j] = NewEvent(n)
			evs[j].Metadata["unique"] = n
			n++
		}
		if _, err := events.AppendEvents(ctx, "org_b", evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
