// Package trail is the vocabulary of Trail, a self-hosted, tamper-evident
// audit-log service: organizations, events, schemas, API keys, the service
// interfaces that storage drivers and the HTTP client implement, and the
// client-safe error codes. It imports only the standard library.
//
// A driver is opened in cmd/trail and handed to the HTTP server:
//
//	db := sqlite.NewDB("trail.db")
//	if err := db.Open(ctx); err != nil { ... }
//	events := sqlite.NewEventService(db)
//	res, err := events.AppendEvents(ctx, "org_…", []*trail.EventInput{in})
package trail
