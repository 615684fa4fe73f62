// Package sqlite implements Trail's services on an embedded SQLite
// database (the pure-Go modernc.org/sqlite driver). It keeps one writer
// connection, through which a group committer appends the events of
// concurrent requests in shared transactions, and a pool of readers.
// The database runs in WAL mode with synchronous=FULL, so a committed
// transaction survives power loss.
//
//	db := sqlite.NewDB("/var/lib/trail/trail.db")
//	if err := db.Open(ctx); err != nil { ... }
//	defer db.Close()
//	events := sqlite.NewEventService(db)
package sqlite
