package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Citus (distributed PostgreSQL) is a dialect of this driver: a database
// with the citus extension is one whose tables are spread over workers by
// organization. What differs is kept here and behind DB.citus:
//
//   - the migrations distribute every table as they create it (layout);
//   - a group commit holds the events of one organization only, so that no
//     transaction locks head rows on two shards;
//   - the expiry of de-duplication keys deletes without a row lock;
//   - retention detaches a partition without CONCURRENTLY.
//
// The rest of the SQL is the same on both: every row lock names its
// organization (a routed query on Citus), and the work queues (exports,
// streams) are claimed with a guarded UPDATE of one row rather than a
// multi-row SKIP LOCKED.

// layout is how each table is laid out on Citus: distributed by column,
// co-located with organizations, or (column "") a reference table, which
// every node holds whole. A table not listed fails the migration that
// creates it: every table has a layout.
var layout = map[string]string{
	"organizations":        "id",
	"events":               "organization_id",
	"event_targets":        "organization_id",
	"event_counts":         "organization_id",
	"idempotency":          "organization_id",
	"idempotent_responses": "organization_id",
	"org_actions":          "organization_id",
	"log_trees":            "organization_id",
	"merkle_tiles":         "organization_id",
	"checkpoints":          "organization_id",
	"purged_events":        "organization_id",
	"exports":              "organization_id",
	"export_chunks":        "organization_id",
	"streams":              "organization_id",
	"saved_views":          "organization_id",
	// Instance-wide catalogues, read by every node and written rarely.
	"actions":           "",
	"schemas":           "",
	"settings":          "",
	"schema_migrations": "",
	// Read on every request (a key is authenticated by its secret's
	// prefix, a web session by its secret's hash) and written rarely:
	// as reference tables, each node reads them locally, with no lookup
	// on every shard and no organization in the secret.
	"api_keys":     "",
	"portal_links": "",
}

// distributeFrom is the migration from which on a table's keys allow its
// layout; before it, it stays on the coordinator. (idempotent_responses
// was keyed by the request's hash alone until 0011 added its
// organization.)
var distributeFrom = map[string]int{"idempotent_responses": 11}

// detectCitus reports whether the database has the citus extension.
func detectCitus(ctx context.Context, q querier) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&ok)
	return ok, err
}

// citusSequential makes a transaction's commands on distributed tables run
// over one connection per worker: the DDL of a migration on distributed
// tables fails in one transaction otherwise (Citus opens a connection per
// shard and refuses what could deadlock).
func citusSequential(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SET LOCAL citus.multi_shard_modify_mode = 'sequential'`)
	return err
}

// distribute gives every table of the current schema that has no layout on
// Citus yet its layout, in tx: the tables a migration (version) created,
// or, when a plain PostgreSQL database was moved to Citus, all of them
// (their rows are copied to the workers). organizations goes first: the
// other distributed tables are co-located with it.
func distribute(ctx context.Context, tx pgx.Tx, version int) error {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.oid)`)
	if err != nil {
		return fmt.Errorf("distribute: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("distribute: %w", err)
	}
	slices.SortFunc(tables, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "organizations":
			return -1
		case b == "organizations":
			return 1
		}
		return 0
	})
	for _, t := range tables {
		col, ok := layout[t]
		if !ok {
			return fmt.Errorf("distribute: table %s has no layout on Citus (postgres.layout)", t)
		}
		if version < distributeFrom[t] {
			continue
		}
		q := `SELECT create_reference_table($1)`
		args := []any{t}
		switch {
		case col == "":
		case t == "organizations":
			q, args = `SELECT create_distributed_table($1, $2)`, []any{t, col}
		default:
			q, args = `SELECT create_distributed_table($1, $2, colocate_with => 'organizations')`, []any{t, col}
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("distribute %s: %w", t, err)
		}
	}
	return nil
}
