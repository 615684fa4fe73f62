// Package bench is the harness of trail bench (BENCHMARKS.md), as River's
// riverbench is River's: it starts trail serve as child processes on a
// fresh or pre-loaded database, SQLite or PostgreSQL, and measures it over
// HTTP from this process. Its scenarios are ingest (single, batch), the lag
// from acceptance to a signed checkpoint (lag), queries and proofs (query),
// exports (export), log stream delivery (streams), the web UI's pages (ui)
// and trail fsck (fsck).
//
// The caller wires the drivers: Config.Open opens the pre-loaded database,
// as trail serve would. The dialect work on a PostgreSQL server (a scratch
// schema for each run, statistics after a pre-load) goes through the
// postgres package.
//
//	c := bench.DefaultConfig()
//	c.Executable, c.Open = "/usr/local/bin/trail", open
//	c.Scenarios = []string{"batch"}
//	if err := bench.Run(ctx, c, os.Stdout); err != nil { ... }
package bench
