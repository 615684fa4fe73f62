package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"testing"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/storetest"
)

// TestConformance_MovedToCitus runs the suite on databases made on plain
// PostgreSQL and moved to Citus as docs/SCALING.md says: pg_dump, psql on
// the coordinator, and Trail's migration, which distributes the tables it
// finds there.
func TestConformance_MovedToCitus(t *testing.T) {
	pgtest.CitusURL(t)
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to move a database: %v", tool, err)
		}
	}
	storetest.Run(t, func(t *testing.T) storetest.Services { return openAt(t, movedToCitus(t), nil) })
}

// movedToCitus migrates a new schema on plain PostgreSQL, copies it to the
// Citus coordinator with pg_dump and psql, and returns its URL there.
func movedToCitus(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	plain := pgtest.URL(t)
	db := postgres.NewDB(plain)
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	citus := pgtest.CitusURL(t)
	pu, cu := parse(t, plain), parse(t, citus)
	schema := pu.Query().Get("search_path")
	dump := exec.Command("pg_dump", "--no-owner", "--schema="+schema, "--dbname="+libpq(pu))
	restore := exec.Command("psql", "-v", "ON_ERROR_STOP=1", "-q", "--dbname="+libpq(cu))
	var dumpErr, restoreErr bytes.Buffer
	restore.Stdin, _ = dump.StdoutPipe()
	dump.Stderr, restore.Stderr = &dumpErr, &restoreErr
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dump.Run(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, dumpErr.String())
	}
	if err := restore.Wait(); err != nil {
		t.Fatalf("psql: %v\n%s", err, restoreErr.String())
	}
	t.Cleanup(func() { pgtest.DropSchema(t, libpq(cu), schema) })
	q := cu.Query()
	q.Set("search_path", schema)
	cu.RawQuery = q.Encode()
	return cu.String()
}

func parse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// libpq is u with only what libpq's tools take.
func libpq(u *url.URL) string {
	return fmt.Sprintf("postgres://%s@%s%s?sslmode=disable", u.User.Username(), u.Host, u.Path)
}
