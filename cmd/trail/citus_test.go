package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail/internal/pgtest"
)

// TestMoveToCitus moves a plain PostgreSQL database to Citus as
// docs/SCALING.md tells an operator to: a database loaded on plain
// PostgreSQL (the demo) is dumped with pg_dump and restored on the Citus
// coordinator, where `trail fsck` (which migrates first) distributes every
// table and checks every organization's log against its checkpoints; then
// `trail serve` on Citus appends after the moved events.
func TestMoveToCitus(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the demo and moves it")
	}
	citusBase := pgtest.CitusURL(t) // skips without a Citus cluster
	plain := pgtest.URL(t)
	for _, tool := range []string{"pg_dump", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to move a database: %v", tool, err)
		}
	}
	ctx := context.Background()
	dataDir := t.TempDir()

	// 1. Plain PostgreSQL: the demo's 3,000 events, signed.
	s := &Server{stderr: io.Discard, stdout: io.Discard}
	s.dataDir, s.Addr, s.Demo, s.DemoEvents, s.LogLevel, s.LogFormat = dataDir, "127.0.0.1:0", true, 3000, "info", "text"
	s.databaseURL, s.AdminKey = plain, testAdminKey
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	before := readLog(t, s.HTTP.URL(), "org_demo")
	s.Close()
	if len(before) < 3000 {
		t.Fatalf("the demo has %d events", len(before))
	}

	// 2. pg_dump | psql into the coordinator, in a schema of the same name.
	schema := searchPath(t, plain)
	moved := withSearchPath(t, citusBase, schema)
	t.Cleanup(func() { execOn(t, citusBase, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`) })
	pu, _ := url.Parse(plain)
	dump := exec.Command("pg_dump", "--no-owner", "--schema="+schema, "--dbname="+dsn(pu))
	restore := exec.Command("psql", "-v", "ON_ERROR_STOP=1", "-q", "--dbname="+dsn(mustParse(t, citusBase)))
	var restoreErr bytes.Buffer
	restore.Stdin, _ = dump.StdoutPipe()
	restore.Stdout, restore.Stderr = io.Discard, &restoreErr
	var dumpErr bytes.Buffer
	dump.Stderr = &dumpErr
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	if err := dump.Run(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, dumpErr.String())
	}
	if err := restore.Wait(); err != nil {
		t.Fatalf("psql: %v\n%s", err, restoreErr.String())
	}

	// 3. trail fsck on Citus: migrates (distributes every table), then
	// checks every log.
	env := map[string]string{"TRAIL_DATA_DIR": dataDir, "TRAIL_DATABASE_URL": moved}
	out, errOut, err := runMain(t, env, "fsck")
	if err != nil {
		t.Fatalf("fsck on Citus: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "org_demo") || strings.Contains(out, "FAIL") {
		t.Fatalf("fsck on Citus:\n%s", out)
	}
	var local, nodes int
	conn, err := pgx.Connect(ctx, connURL(t, moved))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
		AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND NOT EXISTS (SELECT 1 FROM pg_dist_partition d WHERE d.logicalrelid = c.oid)`).Scan(&local); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'events'::regclass`).Scan(&nodes); err != nil {
		t.Fatal(err)
	}
	if local != 0 || nodes < 2 {
		t.Fatalf("after the move: %d tables not distributed, events on %d nodes", local, nodes)
	}

	// 4. trail serve on Citus: the moved log reads the same, and appends
	// go on after it.
	c := &Server{stderr: io.Discard, stdout: io.Discard}
	c.dataDir, c.Addr, c.LogLevel, c.LogFormat = dataDir, "127.0.0.1:0", "info", "text"
	c.databaseURL, c.AdminKey = moved, testAdminKey
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if after := readLog(t, c.HTTP.URL(), "org_demo"); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the moved log differs: %d events before, %d after", len(before), len(after))
	}
	ev := event(1)
	ev["action"], ev["metadata"] = "trail_test.moved", map[string]any{}
	if code, body := post(t, c.HTTP.URL()+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": "org_demo", "event": ev}); code != 200 {
		t.Fatalf("append after the move: %d %v", code, body)
	}
	if after := readLog(t, c.HTTP.URL(), "org_demo"); len(after) != len(before)+1 {
		t.Fatalf("after one more event: %d events, want %d", len(after), len(before)+1)
	}
}

// searchPath is the schema a pgtest URL uses.
func searchPath(t *testing.T, u string) string {
	return mustParse(t, u).Query().Get("search_path")
}

// withSearchPath is u using schema.
func withSearchPath(t *testing.T, u, schema string) string {
	p := mustParse(t, u)
	q := p.Query()
	q.Set("search_path", schema)
	p.RawQuery = q.Encode()
	return p.String()
}

// connURL is u without the pool's settings, for one connection.
func connURL(t *testing.T, u string) string {
	p := mustParse(t, u)
	q := p.Query()
	q.Del("pool_max_conns")
	p.RawQuery = q.Encode()
	return p.String()
}

func mustParse(t *testing.T, u string) *url.URL {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dsn is u with only what libpq's tools take (no pgx or Citus settings).
func dsn(u *url.URL) string {
	return fmt.Sprintf("postgres://%s@%s%s?sslmode=disable", u.User.Username(), u.Host, u.Path)
}

func execOn(t *testing.T, u, sql string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, connURL(t, u))
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Error(err)
	}
}
