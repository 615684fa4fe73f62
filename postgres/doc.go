// Package postgres implements Trail's services on PostgreSQL (pgx v5).
// Several Trail processes may share one database: each organization's
// head row, locked inside the appending transaction, sequences its events,
// so indexes stay unique and gapless whichever node commits. Each node
// runs group committers that append the events of concurrent requests in
// shared transactions (binary COPY for events and targets). Events are
// range-partitioned by month of received_at; every node keeps the coming
// months' partitions ready.
//
//	db := postgres.NewDB("postgres://trail@db.internal/trail")
//	if err := db.Open(ctx); err != nil { ... }
//	defer db.Close()
//	events := postgres.NewEventService(db)
package postgres
