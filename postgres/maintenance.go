package postgres

import (
	"context"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// schemaName is the schemas CreateSchema and DropSchema accept: plain
// lower-case identifiers, which need no quoting in a search_path.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateSchema creates schema in the database at dbURL, unless it exists,
// and returns a URL whose connections use it (search_path). Several Trail
// databases can so share one server: trail bench's scratch databases,
// for one.
func CreateSchema(ctx context.Context, dbURL, schema string) (string, error) {
	if !schemaName.MatchString(schema) {
		return "", fmt.Errorf("create schema %q: want lower-case letters, digits and _", schema)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("database url: %w", err)
	}
	if err := execURL(ctx, dbURL, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// DropSchema drops schema, and every table in it, from the database at
// dbURL.
func DropSchema(ctx context.Context, dbURL, schema string) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("drop schema %q: want lower-case letters, digits and _", schema)
	}
	if err := execURL(ctx, dbURL, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// Analyze vacuums and analyzes the event tables of the Trail database at
// dbURL (the schema of its search_path), as autovacuum does in time: a
// freshly loaded database then has the planner statistics and the
// visibility map of one in steady state.
func Analyze(ctx context.Context, dbURL string) error {
	if err := execURL(ctx, dbURL, `VACUUM (ANALYZE) events, event_targets, event_counts`); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// execURL runs one statement on a connection of its own: VACUUM cannot
// run in a transaction, and these run before and after a DB is open.
func execURL(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
